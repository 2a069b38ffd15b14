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
	// Backoff schedules reconnection attempts.
	Backoff signaling.Backoff
	// NoReconnect makes a dropped connection terminal (StateClosed).
	NoReconnect bool
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
// After a dropped connection it reconnects with backoff, reporting
// StateDown and StateUp and delivering the new `ready`, as the WebSocket
// client does; it stops for good (StateClosed) on Close, with
// NoReconnect, or when the server's middleware refuses it
// (ErrConnectRefused).
type Transport struct {
	cfg      Config
	link     link
	incoming *mailbox.Mailbox[signaling.Message]

	mu    sync.Mutex
	ready signaling.Ready
}

var _ signaling.Transport = (*Transport)(nil)

// Dial connects to the Socket.IO server at rawURL and returns once the
// server's `ready` envelope arrived. ctx bounds only this first
// connection, which is not retried. Errors wrap signaling.ErrConnect or
// signaling.ErrReadyTimeout.
func Dial(ctx context.Context, rawURL string, cfg Config) (*Transport, error) {
	cfg = cfg.withDefaults()
	t := &Transport{cfg: cfg, incoming: mailbox.New[signaling.Message]()}
	t.link = link{
		url: rawURL, cfg: cfg.Conn, backoff: cfg.Backoff, noReconnect: cfg.NoReconnect,
		setup:  t.waitReady,
		handle: t.handle,
		down:   func() {},
	}
	if err := t.link.start(ctx, t.incoming.Close); err != nil {
		return nil, err
	}
	return t, nil
}

// waitReady waits on a new connection for `ready` and delivers it.
func (t *Transport) waitReady(ctx context.Context, c *Conn) error {
	timer := time.NewTimer(t.cfg.ReadyTimeout)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return signaling.ErrReadyTimeout
		case e, ok := <-c.Events():
			if !ok {
				<-c.Done()
				return fmt.Errorf("%w: before ready: %w", signaling.ErrConnect, c.Err())
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
					return fmt.Errorf("%w: bad ready: %w", signaling.ErrConnect, err)
				}
				t.mu.Lock()
				t.ready = r
				t.mu.Unlock()
				t.incoming.Put(m)
				return nil
			case signaling.TypeError:
				var se signaling.Error
				if m.Unmarshal(&se) == nil {
					return fmt.Errorf("%w: before ready: %w", signaling.ErrConnect, se)
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

// handle delivers one event's envelope.
func (t *Transport) handle(e Event) {
	if e.Name != t.cfg.Event {
		// The namespace may carry an app's other events.
		t.cfg.Conn.Logger.Debug("socketio: other event ignored", "event", e.Name)
		return
	}
	m, err := t.decode(e)
	if err != nil {
		t.cfg.Conn.Logger.Warn("socketio: event ignored", "err", err)
		return
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

// Send implements signaling.Transport: it emits m as one event.
func (t *Transport) Send(ctx context.Context, m signaling.Message) error {
	m.From = ""
	b, err := signaling.Encode(m)
	if err != nil {
		return err
	}
	return t.link.emit(ctx, t.cfg.Event, json.RawMessage(b))
}

// Incoming implements signaling.Transport.
func (t *Transport) Incoming() <-chan signaling.Message { return t.incoming.Out() }

// Status implements signaling.Transport.
func (t *Transport) Status() <-chan signaling.Status { return t.link.status.C() }

// Ready implements signaling.Transport.
func (t *Transport) Ready() signaling.Ready {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ready
}

// Close implements signaling.Transport.
func (t *Transport) Close() error {
	t.link.close()
	t.incoming.Abandon()
	return nil
}
