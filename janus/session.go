package janus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/dialtone-dev/dialtone/internal/mailbox"
	"github.com/gorilla/websocket"
)

// Defaults applied by Connect to zero Config fields.
const (
	// DefaultKeepaliveInterval is how often an idle session is kept alive:
	// well inside Janus's default session_timeout of 60 s.
	DefaultKeepaliveInterval = 25 * time.Second
	// DefaultReconnectTimeout is how long the client tries to reconnect
	// and claim its session after the API connection drops.
	DefaultReconnectTimeout = 15 * time.Second
	// writeTimeout bounds one write to the API connection.
	writeTimeout = 5 * time.Second
	// Subprotocol is the WebSocket subprotocol of Janus's API.
	Subprotocol = "janus-protocol"
)

// Config configures a Session. Every field but URL has a usable zero value.
type Config struct {
	// URL is the WebSocket API's address, such as ws://janus.example:8188/.
	URL string
	// Dialer dials the API connection; its Subprotocols are set to
	// "janus-protocol". Default: websocket.DefaultDialer's settings.
	Dialer *websocket.Dialer
	// Header is sent with the WebSocket handshake.
	Header http.Header
	// KeepaliveInterval is how often the session sends a keepalive. It must
	// be shorter than the server's session_timeout. Default
	// DefaultKeepaliveInterval (25 s).
	KeepaliveInterval time.Duration
	// ReconnectTimeout is how long the client keeps trying to reconnect
	// and claim the session after the API connection drops; the server's
	// reclaim_session_timeout bounds it too. Default DefaultReconnectTimeout
	// (15 s); negative disables reconnection (a drop ends the session).
	ReconnectTimeout time.Duration
	// Logger receives debug and warning logs. Default: discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Dialer == nil {
		d := *websocket.DefaultDialer
		c.Dialer = &d
	} else {
		d := *c.Dialer
		c.Dialer = &d
	}
	c.Dialer.Subprotocols = []string{Subprotocol}
	if c.KeepaliveInterval <= 0 {
		c.KeepaliveInterval = DefaultKeepaliveInterval
	}
	if c.ReconnectTimeout == 0 {
		c.ReconnectTimeout = DefaultReconnectTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Session is one Janus session over a WebSocket API connection. Connect
// creates it; Close destroys it on the server and stops its goroutines.
type Session struct {
	cfg    Config
	log    *slog.Logger
	inbox  *mailbox.Mailbox[func()]
	ctx    context.Context // canceled when the session ends
	cancel context.CancelFunc
	done   chan struct{} // closed when the session has ended
	exited chan struct{} // run has returned
	wg     sync.WaitGroup
	id     uint64 // set once by Connect before any other use

	mu  sync.Mutex
	err error // why the session ended

	// Owned by run.
	conn     *websocket.Conn
	gen      int // generation of conn: readers of older ones are ignored
	claiming bool
	nextTxn  uint64
	txns     map[string]*pending
	queued   []*pending // requests waiting for a (re)connection
	handles  map[uint64]*Handle
	ended    bool
}

// pending is a request waiting for its reply.
type pending struct {
	msg map[string]any
	// async: the request is a plugin message, which Janus may answer with
	// "ack" first and the reply as an "event" later.
	async bool
	// done is called once, on the session's goroutine, with the reply or
	// the error; it must not block.
	done func(*message, error)
}

// Connect dials Janus's WebSocket API and creates a session.
func Connect(ctx context.Context, cfg Config) (*Session, error) {
	cfg = cfg.withDefaults()
	sctx, cancel := context.WithCancel(context.Background())
	s := &Session{
		cfg:     cfg,
		log:     cfg.Logger,
		inbox:   mailbox.New[func()](),
		ctx:     sctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		exited:  make(chan struct{}),
		txns:    make(map[string]*pending),
		handles: make(map[uint64]*Handle),
	}
	conn, err := s.dial(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	s.conn = conn
	s.startReader(conn, 0)
	go s.run()
	reply, err := s.call(ctx, map[string]any{"janus": "create"}, false)
	if err != nil {
		s.shutdown()
		return nil, fmt.Errorf("janus: create session: %w", err)
	}
	if reply.Data.ID == 0 {
		s.shutdown()
		return nil, fmt.Errorf("%w: create without a session ID", ErrProtocol)
	}
	idSet := make(chan struct{})
	s.post(func() { s.id = reply.Data.ID; close(idSet) })
	<-idSet
	return s, nil
}

// ID is the session's ID on the server.
func (s *Session) ID() uint64 { return s.id }

// Done is closed when the session has ended: closed, timed out on the
// server, or lost with its API connection. Err says why.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns why the session ended (ErrClosed after Close), or nil.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close destroys the session on the server (its handles are detached and
// leave their rooms) and stops the session's goroutines. It waits for the
// server's reply until ctx is done. Events not yet read are dropped.
func (s *Session) Close(ctx context.Context) error {
	var err error
	select {
	case <-s.done:
	default:
		_, err = s.call(ctx, map[string]any{"janus": "destroy"}, false)
	}
	s.shutdown()
	if errors.Is(err, ErrClosed) {
		err = nil
	}
	return err
}

// shutdown ends the session (ErrClosed if it had not ended) and waits for
// its goroutines.
func (s *Session) shutdown() {
	s.post(func() { s.end(ErrClosed) })
	s.inbox.Close()
	<-s.exited
	s.cancel()
	s.wg.Wait()
	for _, h := range s.allHandles() {
		h.sink.abandon()
	}
}

// allHandles is read after run has exited.
func (s *Session) allHandles() []*Handle {
	hs := make([]*Handle, 0, len(s.handles))
	for _, h := range s.handles {
		hs = append(hs, h)
	}
	return hs
}

func (s *Session) dial(ctx context.Context) (*websocket.Conn, error) {
	conn, resp, err := s.cfg.Dialer.DialContext(ctx, s.cfg.URL, s.cfg.Header)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("janus: dial %s: %w", s.cfg.URL, err)
	}
	if conn.Subprotocol() != Subprotocol {
		conn.Close()
		return nil, fmt.Errorf("%w: %s did not accept the %q subprotocol", ErrProtocol, s.cfg.URL, Subprotocol)
	}
	return conn, nil
}

func (s *Session) post(f func()) bool { return s.inbox.Put(f) }

// call sends msg and waits for its reply.
func (s *Session) call(ctx context.Context, msg map[string]any, async bool) (*message, error) {
	type result struct {
		m   *message
		err error
	}
	ch := make(chan result, 1)
	p := &pending{msg: msg, async: async, done: func(m *message, err error) { ch <- result{m, err} }}
	if !s.post(func() { s.send(p) }) {
		return nil, s.endErr()
	}
	select {
	case r := <-ch:
		return r.m, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.exited:
		return nil, s.endErr()
	}
}

// endErr is the error for a request made after the session ended.
func (s *Session) endErr() error {
	if err := s.Err(); err != nil {
		return err
	}
	return ErrClosed
}

func (s *Session) run() {
	defer close(s.exited)
	keepalive := time.NewTicker(s.cfg.KeepaliveInterval)
	defer keepalive.Stop()
	for {
		select {
		case f, ok := <-s.inbox.Out():
			if !ok {
				return
			}
			f()
		case <-keepalive.C:
			if s.conn != nil && !s.claiming && !s.ended && s.id != 0 {
				s.send(&pending{msg: map[string]any{"janus": "keepalive"}, done: func(_ *message, err error) {
					if err != nil {
						s.log.Debug("janus: keepalive", "err", err)
					}
				}})
			}
		}
	}
}

// send writes p now, or queues it while the session reconnects.
func (s *Session) send(p *pending) {
	if s.ended {
		p.done(nil, s.err)
		return
	}
	if s.conn == nil || s.claiming {
		s.queued = append(s.queued, p)
		return
	}
	s.write(p)
}

// write assigns p a transaction and writes it on the current connection.
func (s *Session) write(p *pending) {
	s.nextTxn++
	txn := strconv.FormatUint(s.nextTxn, 36)
	p.msg["transaction"] = txn
	if _, ok := p.msg["session_id"]; !ok && s.id != 0 {
		p.msg["session_id"] = s.id
	}
	data, err := json.Marshal(p.msg)
	if err != nil {
		p.done(nil, fmt.Errorf("janus: encoding a request: %w", err))
		return
	}
	s.txns[txn] = p
	// One WriteMessage of the bare JSON: Janus 1.1 rejects (454) what
	// gorilla's WriteJSON sends, a streamed frame ending in a newline.
	_ = s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := s.conn.WriteMessage(websocket.TextMessage, data); err != nil {
		// The reader sees the closed connection and fails p with the
		// others in flight.
		s.log.Debug("janus: write", "err", err)
		s.conn.Close()
	}
}

// startReader reads conn until it fails and hands every message to run.
func (s *Session) startReader(conn *websocket.Conn, gen int) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				s.post(func() { s.connLost(gen, err) })
				return
			}
			s.post(func() { s.receive(gen, data) })
		}
	}()
}

// receive dispatches one message from Janus.
func (s *Session) receive(gen int, data []byte) {
	if gen != s.gen || s.ended {
		return
	}
	var m message
	if err := json.Unmarshal(data, &m); err != nil {
		s.log.Warn("janus: bad message", "err", err)
		// A reply that does not parse still ends its request.
		var t struct {
			Transaction string `json:"transaction"`
		}
		if json.Unmarshal(data, &t) == nil {
			if p, ok := s.txns[t.Transaction]; ok {
				delete(s.txns, t.Transaction)
				p.done(nil, fmt.Errorf("%w: %v", ErrProtocol, err))
			}
		}
		return
	}
	if p, ok := s.txns[m.Transaction]; ok && m.Transaction != "" {
		if m.Janus == "ack" && p.async {
			return // the reply comes as an event
		}
		delete(s.txns, m.Transaction)
		p.done(&m, m.err())
		return
	}
	switch m.Janus {
	case "timeout":
		s.end(ErrSessionTimeout)
		return
	case "ack", "success", "error", "keepalive", "server_info":
		return // a reply nobody waits for any more
	}
	h, ok := s.handles[m.Sender]
	if !ok {
		s.log.Debug("janus: event for no handle", "janus", m.Janus, "sender", m.Sender)
		return
	}
	h.receive(&m)
}

// connLost handles the end of connection gen: requests in flight fail, and
// the session reconnects and claims itself back.
func (s *Session) connLost(gen int, err error) {
	if gen != s.gen || s.ended {
		return
	}
	s.log.Debug("janus: API connection lost", "err", err)
	s.conn.Close()
	s.conn = nil
	s.claiming = false
	s.failInFlight(fmt.Errorf("%w: %v", ErrDisconnected, err))
	if s.id == 0 || s.cfg.ReconnectTimeout < 0 {
		s.end(fmt.Errorf("%w: %v", ErrSessionLost, err))
		return
	}
	for _, h := range s.handles {
		h.disconnected()
	}
	s.wg.Add(1)
	go s.reconnect()
}

func (s *Session) failInFlight(err error) {
	txns := s.txns
	s.txns = make(map[string]*pending)
	for _, p := range txns {
		p.done(nil, err)
	}
}

// reconnect dials until it succeeds or ReconnectTimeout passes.
func (s *Session) reconnect() {
	defer s.wg.Done()
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ReconnectTimeout)
	defer cancel()
	backoff := 50 * time.Millisecond
	for {
		conn, err := s.dial(ctx)
		if err == nil {
			if !s.post(func() { s.reconnected(conn) }) {
				conn.Close()
			}
			return
		}
		select {
		case <-ctx.Done():
			s.post(func() { s.end(fmt.Errorf("%w: no reconnection: %v", ErrSessionLost, err)) })
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// reconnected claims the session on the new connection conn, then sends the
// requests queued meanwhile and tells the handles.
func (s *Session) reconnected(conn *websocket.Conn) {
	if s.ended {
		conn.Close()
		return
	}
	s.gen++
	s.conn = conn
	s.claiming = true
	s.startReader(conn, s.gen)
	s.write(&pending{msg: map[string]any{"janus": "claim"}, done: func(_ *message, err error) {
		s.claiming = false
		if err != nil {
			if s.conn != nil {
				s.end(fmt.Errorf("%w: claim: %w", ErrSessionLost, err))
			}
			return // the connection dropped again: the next one claims
		}
		s.log.Debug("janus: session claimed back", "session", s.id)
		queued := s.queued
		s.queued = nil
		for _, p := range queued {
			s.send(p)
		}
		for _, h := range s.handles {
			h.reclaimed()
		}
	}})
}

// end ends the session with err: requests fail, handles end, the
// connection closes. Close still has to be called to stop the goroutines.
func (s *Session) end(err error) {
	if s.ended {
		return
	}
	s.ended = true
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	s.failInFlight(err)
	for _, p := range s.queued {
		p.done(nil, err)
	}
	s.queued = nil
	for _, h := range s.handles {
		h.end(err)
	}
	if s.conn != nil {
		s.conn.Close()
	}
	s.cancel()
	close(s.done)
}
