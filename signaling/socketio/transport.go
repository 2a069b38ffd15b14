package socketio

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/dialtone-dev/dialtone/internal/mailbox"
	"github.com/dialtone-dev/dialtone/signaling"
)

// DefaultEvent is the Socket.IO event that carries dialtone envelopes.
const DefaultEvent = "dialtone"

// Config configures the Transport made by Dial. Every zero field takes the
// default given beside it.
type Config struct {
	// Conn configures the Socket.IO connection. Its Auth is how the
	// client signs in: the server reads it as socket.handshake.auth (the
	// forwarder in testdata/server.js takes {"user": "<name>"}, the way a
	// development server does; a real one checks a token there).
	Conn ConnConfig
	// Event is the name of the event that carries one dialtone envelope
	// (a JSON object, as in signaling/PROTOCOL.md) both ways. Default
	// DefaultEvent.
	Event string
	// ReadyTimeout bounds the wait for the server's `ready` envelope.
	// Default 10 s.
	ReadyTimeout time.Duration
	// MaxMessageSize bounds one envelope. Default
	// signaling.DefaultMaxMessageSize.
	MaxMessageSize int
}

func (c Config) withDefaults() Config {
	c.Conn = c.Conn.withDefaults()
	if c.Event == "" {
		c.Event = DefaultEvent
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = 10 * time.Second
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = signaling.DefaultMaxMessageSize
	}
	return c
}

// Transport carries dialtone's own signaling protocol over Socket.IO: each
// envelope is one event (Config.Event) whose single argument is the
// envelope as a JSON object. The server plays the part of
// signaling/server: it sends `ready` first, sets `from` and forwards each
// routed envelope to the sockets of user `to` (testdata/server.js is such
// a server, in a few dozen lines of Node). call.Phone uses it unchanged.
//
// It does not reconnect: when the connection drops it reports StateClosed
// with the cause, and the calls that were not yet connected end.
type Transport struct {
	cfg      Config
	conn     *Conn
	incoming *mailbox.Mailbox[signaling.Message]
	status   *signaling.StatusQueue
	done     chan struct{}

	mu    sync.Mutex
	ready signaling.Ready
}

var _ signaling.Transport = (*Transport)(nil)

// Dial connects to the Socket.IO server at rawURL and returns once the
// server's `ready` envelope arrived. ctx bounds only the connection.
// Errors wrap signaling.ErrConnect or signaling.ErrReadyTimeout.
func Dial(ctx context.Context, rawURL string, cfg Config) (*Transport, error) {
	cfg = cfg.withDefaults()
	conn, err := DialConn(ctx, rawURL, cfg.Conn)
	if err != nil {
		return nil, err
	}
	t := &Transport{
		cfg: cfg, conn: conn,
		incoming: mailbox.New[signaling.Message](),
		status:   signaling.NewStatusQueue(16),
		done:     make(chan struct{}),
	}
	ready, err := t.waitReady(ctx)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	t.incoming.Put(ready)
	go t.run()
	return t, nil
}

func (t *Transport) waitReady(ctx context.Context) (signaling.Message, error) {
	timer := time.NewTimer(t.cfg.ReadyTimeout)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return signaling.Message{}, ctx.Err()
		case <-timer.C:
			return signaling.Message{}, signaling.ErrReadyTimeout
		case e, ok := <-t.conn.Events():
			if !ok {
				return signaling.Message{}, fmt.Errorf("%w: before ready: %w", signaling.ErrConnect, t.conn.Err())
			}
			m, err := t.decode(e)
			if err != nil {
				t.cfg.Conn.Logger.Warn("socketio: bad event before ready", "err", err)
				continue
			}
			switch m.Type {
			case signaling.TypeReady:
				var r signaling.Ready
				if err := m.Unmarshal(&r); err != nil {
					return signaling.Message{}, fmt.Errorf("%w: bad ready: %w", signaling.ErrConnect, err)
				}
				t.ready = r
				return m, nil
			case signaling.TypeError:
				var se signaling.Error
				if m.Unmarshal(&se) == nil {
					return signaling.Message{}, fmt.Errorf("%w: before ready: %w", signaling.ErrConnect, se)
				}
			}
		}
	}
}

// decode reads one envelope out of an event.
func (t *Transport) decode(e Event) (signaling.Message, error) {
	if e.Name != t.cfg.Event {
		return signaling.Message{}, fmt.Errorf("%w: event %.64q is not %q", ErrBadPayload, e.Name, t.cfg.Event)
	}
	if len(e.Args) != 1 {
		return signaling.Message{}, fmt.Errorf("%w: %q with %d arguments, want 1 envelope", ErrBadPayload, e.Name, len(e.Args))
	}
	m, err := signaling.Decode(e.Args[0], t.cfg.MaxMessageSize)
	if err != nil {
		return signaling.Message{}, fmt.Errorf("%w: %w", ErrBadPayload, err)
	}
	return m, nil
}

// run forwards the server's envelopes until the connection ends.
func (t *Transport) run() {
	defer close(t.done)
	for e := range t.conn.Events() {
		m, err := t.decode(e)
		if err != nil {
			t.cfg.Conn.Logger.Warn("socketio: event ignored", "err", err)
			continue
		}
		if m.Type == signaling.TypeReady {
			var r signaling.Ready
			if m.Unmarshal(&r) == nil {
				t.mu.Lock()
				t.ready = r
				t.mu.Unlock()
			}
		}
		t.incoming.Put(m)
	}
	<-t.conn.Done()
	err := t.conn.Err()
	if err != nil {
		err = fmt.Errorf("%w: %w", signaling.ErrDisconnected, err)
	}
	t.status.Push(signaling.Status{State: signaling.StateClosed, Err: err, Time: time.Now()})
	t.status.Close()
	t.incoming.Close()
}

// Send implements signaling.Transport: it emits m as one event.
func (t *Transport) Send(ctx context.Context, m signaling.Message) error {
	m.From = ""
	b, err := signaling.Encode(m)
	if err != nil {
		return err
	}
	return t.conn.Emit(ctx, t.cfg.Event, json.RawMessage(b))
}

// Incoming implements signaling.Transport.
func (t *Transport) Incoming() <-chan signaling.Message { return t.incoming.Out() }

// Status implements signaling.Transport. The only change it reports is
// StateClosed: the transport does not reconnect.
func (t *Transport) Status() <-chan signaling.Status { return t.status.C() }

// Ready implements signaling.Transport.
func (t *Transport) Ready() signaling.Ready {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ready
}

// Conn returns the underlying Socket.IO connection (for its ID).
func (t *Transport) Conn() *Conn { return t.conn }

// Close implements signaling.Transport.
func (t *Transport) Close() error {
	err := t.conn.Close()
	<-t.done
	t.incoming.Abandon()
	return err
}
