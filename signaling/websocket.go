package signaling

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/dialtone-dev/dialtone/internal/wsdial"
)

// DialConfig configures the WebSocket client. Every zero field takes the
// default given beside it.
type DialConfig struct {
	// Token authenticates the client: sent as `Authorization: Bearer <Token>`
	// (and as the `token` query parameter with TokenInQuery).
	Token string
	// TokenFunc, when set, is called before every connection attempt and
	// its token used instead of Token, so reconnections carry a fresh one.
	TokenFunc func(ctx context.Context) (string, error)
	// TokenInQuery also sends the token as `?token=`, as browsers must.
	TokenInQuery bool
	// User signs in to a development server: when there is no token (Token
	// and TokenFunc unset or empty), it is sent as the `user` query
	// parameter, which a server in dev mode (server.Config.DevMode) takes as
	// the user name without credentials. Servers with real authentication
	// ignore it and answer ErrUnauthorized. Empty: not sent.
	User string
	// URLs are more addresses of the same service (other nodes of a
	// cluster sharing a Broker), tried in turn after the one given to Dial:
	// each reconnection attempt, and each failed first connection, moves to
	// the next, so a client whose node died reaches another one at its
	// first reconnection instead of retrying the dead one.
	URLs []string
	// Header is added to the handshake request.
	Header http.Header
	// Dialer makes the WebSocket connection. Default: a Dialer with
	// HandshakeTimeout 10 s and the environment's proxy.
	Dialer *websocket.Dialer
	// Logger receives the client's logs. Default: discard.
	Logger *slog.Logger
	// ReadyTimeout bounds the wait for `ready` after each connection.
	// Default 10 s.
	ReadyTimeout time.Duration
	// PingInterval is how often the client pings. Default 20 s.
	PingInterval time.Duration
	// ReadTimeout drops the connection (and reconnects) when nothing,
	// message or pong, arrived for this long. Default 45 s.
	ReadTimeout time.Duration
	// WriteTimeout bounds one write. Default 10 s.
	WriteTimeout time.Duration
	// Backoff schedules reconnection attempts.
	Backoff Backoff
	// NoReconnect makes a dropped connection terminal (StateClosed).
	NoReconnect bool
	// StopWhenReplaced makes a replacement by a newer connection of the
	// same user (close code 4001) terminal: ErrReplaced. By default the
	// client reconnects after it, waiting longer after each replacement
	// that follows soon after the last (two devices of one user then take
	// turns slowly instead of evicting each other in a loop).
	StopWhenReplaced bool
	// MaxMessageSize bounds the messages accepted from the server.
	// Default 4 × DefaultMaxMessageSize.
	MaxMessageSize int
	// IncomingBuffer is the capacity of Incoming. Default 64. A reader that
	// falls further behind stops the client reading, which eventually makes
	// the server cut the connection off as a slow consumer.
	IncomingBuffer int
}

func (c DialConfig) withDefaults() DialConfig {
	if c.Dialer == nil {
		c.Dialer = wsdial.DefaultDialer()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = 10 * time.Second
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 20 * time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 45 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	c.Backoff = c.Backoff.withDefaults()
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = 4 * DefaultMaxMessageSize
	}
	if c.IncomingBuffer <= 0 {
		c.IncomingBuffer = 64
	}
	return c
}

// Client is the WebSocket Transport made by Dial. After a dropped connection
// it reconnects with exponential backoff and jitter, reporting StateDown and
// StateUp on Status; it stops for good (StateClosed) on Close, when the
// server rejects its credentials (ErrUnauthorized), or, with
// StopWhenReplaced, when a newer connection of the same user replaces it
// (ErrReplaced). When the server closes the connection because its token
// expired or was revoked (4002, 4003) it reconnects at once, asking
// TokenFunc for a fresh token.
//
// The call-control messages written in the second before a drop (a
// `hangup`, an `accept`, ...; not an invite or a signal) are sent again
// after the reconnection: one written to a server that has just died is
// lost without an error.
//
// A message the server drops for its rate limit (an `error` rate-limited
// naming the frame) is sent again after the delay the server gives, up to
// a few times; the `error` is still delivered on Incoming.
type Client struct {
	urls     []string // the Dial URL, then DialConfig.URLs
	next     int      // index in urls of the next connection attempt; only run and Dial touch it
	cfg      DialConfig
	log      *slog.Logger
	incoming chan Message
	status   *StatusQueue
	ctx      context.Context // cancelled by Close
	cancel   context.CancelFunc
	done     chan struct{}
	wmu      sync.Mutex // one writer at a time (gorilla's rule)
	wbuf     []byte     // encoding buffer, under wmu
	sent     sentLog    // the frames written on the current socket, under wmu

	mu      sync.Mutex
	ws      *websocket.Conn // nil while down
	ready   Ready
	closed  bool
	err     error
	resends map[*time.Timer]struct{} // pending re-sends, stopped by Close
}

var _ Transport = (*Client)(nil)

// Dial connects to the signaling server at rawURL (ws:// or wss://) and
// returns once the server's `ready` arrived. ctx bounds only this first
// connection; the Client then lives until Close. The first connection is
// tried once at rawURL and at each of DialConfig.URLs, with no wait
// between them: errors wrap ErrUnauthorized (HTTP 401, not tried further),
// ErrConnect (network or handshake failure, with the cause) or
// ErrReadyTimeout, from the last address tried.
func Dial(ctx context.Context, rawURL string, cfg DialConfig) (*Client, error) {
	urls := append([]string{rawURL}, cfg.URLs...)
	for _, u := range urls {
		if _, err := url.Parse(u); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConnect, err)
		}
	}
	cfg = cfg.withDefaults()
	c := &Client{
		urls: urls, cfg: cfg, log: cfg.Logger,
		incoming: make(chan Message, cfg.IncomingBuffer),
		status:   NewStatusQueue(16),
		done:     make(chan struct{}),
	}
	var (
		ws    *websocket.Conn
		ready Message
		err   error
	)
	for range urls {
		ws, ready, err = c.connect(ctx)
		if err == nil || errors.Is(err, ErrUnauthorized) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.ws = ws
	c.setReady(ready)
	c.incoming <- ready
	go c.run(ws)
	return c, nil
}

// connect dials the next address once and waits for `ready`. Every
// attempt moves the rotation on: after a failure the next attempt tries
// the following address, and after a drop the reconnection starts with
// the address after the one that dropped.
func (c *Client) connect(ctx context.Context) (*websocket.Conn, Message, error) {
	raw := c.urls[c.next]
	c.next = (c.next + 1) % len(c.urls)
	u, err := url.Parse(raw)
	if err != nil {
		return nil, Message{}, fmt.Errorf("%w: %w", ErrConnect, err)
	}
	token := c.cfg.Token
	if c.cfg.TokenFunc != nil {
		if token, err = c.cfg.TokenFunc(ctx); err != nil {
			return nil, Message{}, fmt.Errorf("signaling: token: %w", err)
		}
	}
	h := http.Header{}
	for k, vs := range c.cfg.Header {
		h[k] = append([]string(nil), vs...)
	}
	switch {
	case token != "":
		h.Set("Authorization", "Bearer "+token)
		if c.cfg.TokenInQuery {
			q := u.Query()
			q.Set("token", token)
			u.RawQuery = q.Encode()
		}
	case c.cfg.User != "":
		q := u.Query()
		q.Set("user", c.cfg.User)
		u.RawQuery = q.Encode()
	}
	ws, status, err := wsdial.Dial(ctx, c.cfg.Dialer, u.String(), h, c.cfg.MaxMessageSize)
	if err != nil {
		if status == http.StatusUnauthorized {
			return nil, Message{}, ErrUnauthorized
		}
		return nil, Message{}, fmt.Errorf("%w: %w", ErrConnect, err)
	}
	ready, err := c.waitReady(ctx, ws)
	if err != nil {
		_ = ws.Close()
		return nil, Message{}, err
	}
	return ws, ready, nil
}

func (c *Client) waitReady(ctx context.Context, ws *websocket.Conn) (Message, error) {
	_ = ws.SetReadDeadline(time.Now().Add(c.cfg.ReadyTimeout))
	stop := context.AfterFunc(ctx, func() { _ = ws.NetConn().SetReadDeadline(time.Now()) })
	defer stop()
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			if ctx.Err() != nil {
				return Message{}, ctx.Err()
			}
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				return Message{}, ErrReadyTimeout
			}
			return Message{}, fmt.Errorf("%w: before ready: %w", ErrConnect, err)
		}
		m, err := Decode(b, c.cfg.MaxMessageSize)
		if err != nil {
			c.log.Warn("signaling: bad message before ready", "err", err)
			continue
		}
		if m.Type == TypeReady {
			return m, nil
		}
		if m.Type == TypeError {
			var e Error
			if m.Unmarshal(&e) == nil {
				return Message{}, fmt.Errorf("%w: before ready: %w", ErrConnect, e)
			}
		}
		c.log.Warn("signaling: message before ready ignored", "type", m.Type)
	}
}

func (c *Client) setReady(m Message) {
	var r Ready
	if err := m.Unmarshal(&r); err != nil {
		c.log.Warn("signaling: bad ready", "err", err)
		return
	}
	c.mu.Lock()
	c.ready = r
	c.mu.Unlock()
}

// run owns the connection life: read until it drops, then reconnect.
func (c *Client) run(ws *websocket.Conn) {
	defer close(c.done)
	defer func() {
		c.mu.Lock()
		err := c.err
		c.closed = true
		c.ws = nil
		c.mu.Unlock()
		c.status.Push(Status{State: StateClosed, Err: err, Time: time.Now()})
		close(c.incoming)
		c.status.Close()
	}()
	var (
		replaced     int // replacements in a row
		lastReplaced time.Time
	)
	for {
		err := c.serve(ws)
		c.mu.Lock()
		c.ws = nil
		c.mu.Unlock()
		_ = ws.Close()
		c.wmu.Lock()
		again := c.sent.since(ws, time.Now().Add(-dropResendWindow))
		c.wmu.Unlock()
		if c.ctx.Err() != nil {
			return
		}
		first := 1 // the reconnection attempt to start the backoff at
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			switch ce.Code {
			case CloseReplaced:
				if c.cfg.StopWhenReplaced {
					c.fail(ErrReplaced)
					return
				}
				// Replaced again soon after the last time: another device
				// of the user is active. Wait longer each time.
				if time.Since(lastReplaced) < c.cfg.Backoff.Max {
					replaced++
				} else {
					replaced = 1
				}
				lastReplaced = time.Now()
				first = 1 + replaced
				err = fmt.Errorf("%w: %w", ErrReplaced, err)
			case CloseTokenExpired, CloseRevoked:
				first = 0 // at once, with a fresh token
			}
		}
		if c.cfg.NoReconnect {
			c.fail(fmt.Errorf("%w: %w", ErrDisconnected, err))
			return
		}
		c.log.Info("signaling: connection lost", "err", err)
		c.status.Push(Status{State: StateDown, Err: err, Time: time.Now()})
		var ok bool
		if ws, ok = c.reconnect(first, again); !ok {
			return
		}
	}
}

func (c *Client) fail(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
}

// reconnect tries until it connects, the credentials are rejected, or
// Close. The first attempt waits as the first-th of the backoff (0: not
// at all). Once connected it sends again, before anything else, the
// messages again (written just before the drop).
func (c *Client) reconnect(first int, again []Message) (*websocket.Conn, bool) {
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for attempt := 1; ; attempt++ {
		var d time.Duration
		if n := first + attempt - 1; n > 0 {
			d = c.cfg.Backoff.Delay(n, jitter())
		}
		t.Reset(d)
		select {
		case <-c.ctx.Done():
			return nil, false
		case <-t.C:
		}
		ws, ready, err := c.connect(c.ctx)
		if err != nil {
			if c.ctx.Err() != nil {
				return nil, false
			}
			if errors.Is(err, ErrUnauthorized) {
				c.fail(err)
				return nil, false
			}
			c.log.Info("signaling: reconnect failed", "attempt", attempt, "err", err)
			continue
		}
		c.mu.Lock()
		c.ws = ws
		c.mu.Unlock()
		c.setReady(ready)
		if !c.deliver(ready) {
			_ = ws.Close()
			return nil, false
		}
		for _, m := range again {
			ctx, cancel := context.WithTimeout(c.ctx, c.cfg.WriteTimeout)
			if err := c.send(ctx, m, 0); err != nil {
				c.log.Info("signaling: re-send after reconnection failed", "type", m.Type, "call", m.Call, "err", err)
			}
			cancel()
		}
		c.status.Push(Status{State: StateUp, Attempt: attempt, Time: time.Now()})
		c.log.Info("signaling: reconnected", "attempt", attempt)
		return ws, true
	}
}

func (c *Client) deliver(m Message) bool {
	select {
	case c.incoming <- m:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// serve reads from ws until it fails, with a pinger beside it.
func (c *Client) serve(ws *websocket.Conn) error {
	// Close may have missed a socket connected while it ran.
	defer context.AfterFunc(c.ctx, func() { _ = ws.NetConn().Close() })()
	extend := func() { _ = ws.SetReadDeadline(time.Now().Add(c.cfg.ReadTimeout)) }
	extend()
	ws.SetPongHandler(func(string) error { extend(); return nil })
	stopPing := make(chan struct{})
	pingDone := make(chan struct{})
	go func() {
		defer close(pingDone)
		t := time.NewTicker(c.cfg.PingInterval)
		defer t.Stop()
		for {
			select {
			case <-stopPing:
				return
			case <-t.C:
				if err := ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.cfg.WriteTimeout)); err != nil {
					_ = ws.Close()
					return
				}
			}
		}
	}()
	defer func() { close(stopPing); <-pingDone }()
	var buf bytes.Buffer // reused: Decode copies what the message keeps
	for {
		_, r, err := ws.NextReader()
		if err != nil {
			return err
		}
		if buf.Cap() > 64<<10 {
			buf = bytes.Buffer{} // do not pin a rare huge buffer
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			return err
		}
		extend()
		m, err := Decode(buf.Bytes(), c.cfg.MaxMessageSize)
		if err != nil {
			c.log.Warn("signaling: bad message from server", "err", err)
			continue
		}
		switch m.Type {
		case TypeReady:
			c.setReady(m)
		case TypeError:
			c.rateLimited(ws, m)
		}
		if !c.deliver(m) {
			return ErrClosed
		}
	}
}

// Send implements Transport. It writes m to the socket (bounded by ctx and
// WriteTimeout); it fails with ErrDisconnected while the connection is down.
func (c *Client) Send(ctx context.Context, m Message) error {
	return c.send(ctx, m, 0)
}

// send is Send of a message sent tries times before.
func (c *Client) send(ctx context.Context, m Message, tries int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	closed, ws := c.closed, c.ws
	c.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if ws == nil {
		return ErrDisconnected
	}
	m.From = ""
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b, err := AppendEncode(c.wbuf[:0], m)
	if err != nil {
		return err
	}
	if cap(b) <= 64<<10 { // do not pin a rare huge buffer
		c.wbuf = b
	}
	deadline := time.Now().Add(c.cfg.WriteTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = ws.SetWriteDeadline(deadline)
	stop := func() bool { return false }
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { _ = ws.NetConn().SetWriteDeadline(time.Now()) })
	}
	err = ws.WriteMessage(websocket.TextMessage, b)
	stop()
	if err != nil {
		// A failed or interrupted write leaves the socket unusable: drop it
		// and let the reconnect loop take over.
		_ = ws.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %w", ErrDisconnected, err)
	}
	c.sent.add(ws, m, tries)
	return nil
}

// Incoming implements Transport.
func (c *Client) Incoming() <-chan Message { return c.incoming }

// Status implements Transport.
func (c *Client) Status() <-chan Status { return c.status.C() }

// Ready implements Transport.
func (c *Client) Ready() Ready {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ready
}

// Err returns why the client stopped for good, or nil.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close implements Transport: it closes the connection (with a normal
// close frame), stops reconnecting and every goroutine, and closes
// Incoming and Status.
func (c *Client) Close() error {
	c.mu.Lock()
	ws := c.ws
	c.mu.Unlock()
	c.cancel()
	c.mu.Lock()
	for t := range c.resends {
		t.Stop()
	}
	c.resends = nil
	c.mu.Unlock()
	if ws != nil {
		_ = ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		_ = ws.Close()
	}
	<-c.done
	return nil
}
