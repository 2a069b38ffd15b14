package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/dialtone-dev/dialtone/internal/mailbox"
	"github.com/dialtone-dev/dialtone/internal/wsdial"
	"github.com/dialtone-dev/dialtone/signaling"
)

// ConnConfig configures a Socket.IO connection. Every zero field takes the
// default given beside it.
type ConnConfig struct {
	// Path is the server's Engine.IO path. Default "/socket.io/", the
	// reference server's.
	Path string
	// Namespace is the Socket.IO namespace to connect to. Default "/".
	Namespace string
	// Auth is the CONNECT packet's payload, which the server reads as
	// socket.handshake.auth; it must encode as a JSON object. nil: none.
	Auth any
	// Header is added to the WebSocket handshake request (cookies,
	// Authorization for servers that read it).
	Header http.Header
	// Dialer makes the WebSocket connection. Default: a Dialer with
	// HandshakeTimeout 10 s and the environment's proxy.
	Dialer *websocket.Dialer
	// Logger receives the connection's logs. Default: discard.
	Logger *slog.Logger
	// ConnectTimeout bounds the wait for the Engine.IO open packet and the
	// namespace's CONNECT answer. Default 10 s.
	ConnectTimeout time.Duration
	// WriteTimeout bounds one write. Default 10 s.
	WriteTimeout time.Duration
	// MaxMessageSize bounds the frames accepted from the server. Default
	// 1 MB, the reference server's maxHttpBufferSize.
	MaxMessageSize int
}

func (c ConnConfig) withDefaults() ConnConfig {
	if c.Path == "" {
		c.Path = "/socket.io/"
	}
	if c.Namespace == "" {
		c.Namespace = "/"
	}
	if c.Dialer == nil {
		c.Dialer = wsdial.DefaultDialer()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = 1_000_000
	}
	return c
}

// open is the Engine.IO open packet's payload.
type open struct {
	SID          string `json:"sid"`
	PingInterval int    `json:"pingInterval"` // ms
	PingTimeout  int    `json:"pingTimeout"`  // ms
}

// Conn is one Socket.IO client socket on one namespace, over a WebSocket
// (Engine.IO v4, Socket.IO protocol v5, as Socket.IO 3 and 4 servers
// speak). It answers the server's pings, delivers the server's events in
// order on Events and sends events with Emit. A lost connection ends it
// (Done, Err); the transports built on it dial a new one. Acknowledgements
// are not used: events the server sends with an ack ID are delivered like
// the others and not acknowledged.
type Conn struct {
	cfg    ConnConfig
	log    *slog.Logger
	ws     *websocket.Conn
	sid    string
	events *mailbox.Mailbox[Event]
	done   chan struct{}

	wmu sync.Mutex // one writer at a time (gorilla's rule)

	mu     sync.Mutex
	err    error
	closed bool
}

// DialConn connects to the Socket.IO server at rawURL (http, https, ws or
// wss) and to a namespace: the URL's path when it is not empty or "/", as
// in the JavaScript client (io("https://host/admin")), else
// ConnConfig.Namespace. ctx bounds only the connection; the Conn then
// lives until Close or until the connection drops. Errors wrap
// signaling.ErrConnect, and also ErrConnectRefused when the server's
// middleware refused the namespace CONNECT.
func DialConn(ctx context.Context, rawURL string, cfg ConnConfig) (*Conn, error) {
	u, ns, err := engineURL(rawURL, cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", signaling.ErrConnect, err)
	}
	if ns != "" {
		if cfg.Namespace != "" && cfg.Namespace != ns {
			return nil, fmt.Errorf("%w: namespace %q in the URL and %q in ConnConfig", signaling.ErrConnect, ns, cfg.Namespace)
		}
		cfg.Namespace = ns
	}
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	ws, _, err := wsdial.Dial(ctx, cfg.Dialer, u, cfg.Header, cfg.MaxMessageSize)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", signaling.ErrConnect, err)
	}
	c := &Conn{cfg: cfg, log: cfg.Logger, ws: ws, events: mailbox.New[Event](), done: make(chan struct{})}
	op, err := c.handshake(ctx)
	if err != nil {
		_ = ws.Close()
		return nil, fmt.Errorf("%w: %w", signaling.ErrConnect, err)
	}
	go c.read(time.Duration(op.PingInterval+op.PingTimeout) * time.Millisecond)
	return c, nil
}

// engineURL returns the WebSocket URL of the Engine.IO endpoint at path,
// and the namespace rawURL's path names ("" for none).
func engineURL(rawURL, path string) (string, string, error) {
	if path == "" {
		path = "/socket.io/"
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", "", err
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", "", fmt.Errorf("socketio: URL scheme %q: want http, https, ws or wss", u.Scheme)
	}
	var ns string
	if u.Path != "" && u.Path != "/" {
		ns = strings.TrimSuffix(u.Path, "/")
	}
	u.Path, u.RawPath = path, ""
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	q := u.Query()
	q.Set("EIO", "4")
	q.Set("transport", "websocket")
	u.RawQuery = q.Encode()
	return u.String(), ns, nil
}

// handshake reads the open packet, connects to the namespace and waits for
// the server's CONNECT answer.
func (c *Conn) handshake(ctx context.Context) (open, error) {
	stop := context.AfterFunc(ctx, func() { _ = c.ws.NetConn().SetReadDeadline(time.Now()) })
	defer stop()
	fail := func(err error) (open, error) {
		if ctx.Err() != nil {
			return open{}, fmt.Errorf("socketio handshake: %w", ctx.Err())
		}
		return open{}, err
	}
	b, err := c.readFrame()
	if err != nil {
		return fail(err)
	}
	var op open
	if len(b) == 0 || b[0] != engineOpen || json.Unmarshal(b[1:], &op) != nil || op.SID == "" {
		return fail(fmt.Errorf("%w: want an Engine.IO open packet, got %.64q", ErrBadPacket, b))
	}
	if op.PingInterval <= 0 || op.PingTimeout <= 0 {
		return fail(fmt.Errorf("%w: open packet without ping interval and timeout", ErrBadPacket))
	}
	var auth json.RawMessage
	if c.cfg.Auth != nil {
		if auth, err = json.Marshal(c.cfg.Auth); err != nil || len(auth) == 0 || auth[0] != '{' {
			return fail(fmt.Errorf("socketio: Auth must encode as a JSON object (%v)", err))
		}
	}
	if err := c.write(ctx, Packet{Type: PacketConnect, Namespace: c.cfg.Namespace, Data: auth}); err != nil {
		return fail(err)
	}
	for {
		b, err := c.readFrame()
		if err != nil {
			return fail(err)
		}
		if len(b) == 0 {
			return fail(fmt.Errorf("%w: empty frame", ErrBadPacket))
		}
		switch b[0] {
		case enginePing:
			if err := c.writeRaw(ctx, []byte{enginePong}); err != nil {
				return fail(err)
			}
			continue
		case engineNoop:
			continue
		case engineClose:
			return fail(ErrServerDisconnect)
		case engineMessage:
		default:
			return fail(fmt.Errorf("%w: Engine.IO packet type %q before CONNECT", ErrBadPacket, b[0]))
		}
		p, err := ParsePacket(b[1:])
		if err != nil {
			return fail(err)
		}
		if p.Namespace != c.cfg.Namespace {
			continue
		}
		switch p.Type {
		case PacketConnect:
			var ok struct {
				SID string `json:"sid"`
			}
			if json.Unmarshal(p.Data, &ok) != nil || ok.SID == "" {
				return fail(fmt.Errorf("%w: CONNECT answer without sid", ErrBadPacket))
			}
			c.sid = ok.SID
			return op, nil
		case PacketConnectError:
			return fail(fmt.Errorf("%w: %s", ErrConnectRefused, connectErrorMessage(p.Data)))
		default:
			return fail(fmt.Errorf("%w: %s before CONNECT", ErrBadPacket, p.Type))
		}
	}
}

func connectErrorMessage(data json.RawMessage) string {
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(data, &e) == nil && e.Message != "" {
		return fmt.Sprintf("%.200q", e.Message)
	}
	return fmt.Sprintf("%.200s", data)
}

func (c *Conn) readFrame() ([]byte, error) {
	t, b, err := c.ws.ReadMessage()
	if err != nil {
		return nil, err
	}
	if t != websocket.TextMessage {
		return nil, ErrBinary
	}
	return b, nil
}

// read owns the socket's read side until it fails.
func (c *Conn) read(idle time.Duration) {
	defer close(c.done)
	defer c.events.Close()
	err := c.serve(idle)
	c.mu.Lock()
	if c.closed {
		err = nil
	}
	c.err = err
	c.mu.Unlock()
	_ = c.ws.Close()
	if err != nil {
		c.log.Info("socketio: connection ended", "err", err)
	}
}

func (c *Conn) serve(idle time.Duration) error {
	for {
		_ = c.ws.SetReadDeadline(time.Now().Add(idle))
		b, err := c.readFrame()
		if err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				return ErrPingTimeout
			}
			if errors.Is(err, ErrBinary) {
				// Attachments of a binary event: never asked for here.
				c.log.Warn("socketio: binary frame ignored")
				continue
			}
			return fmt.Errorf("%w: %w", signaling.ErrDisconnected, err)
		}
		if len(b) == 0 {
			c.log.Warn("socketio: empty frame ignored")
			continue
		}
		switch b[0] {
		case enginePing:
			if err := c.writeRaw(context.Background(), []byte{enginePong}); err != nil {
				return err
			}
		case engineClose:
			return ErrServerDisconnect
		case enginePong, engineNoop, engineUpgrade, engineOpen:
		case engineMessage:
			if err := c.packet(b[1:]); err != nil {
				return err
			}
		default:
			c.log.Warn("socketio: unknown Engine.IO packet ignored", "type", string(b[0]))
		}
	}
}

// packet handles one Socket.IO packet; an error ends the connection.
func (c *Conn) packet(b []byte) error {
	p, err := ParsePacket(b)
	if err != nil {
		c.log.Warn("socketio: bad packet ignored", "err", err)
		return nil
	}
	if p.Namespace != c.cfg.Namespace {
		return nil
	}
	switch p.Type {
	case PacketEvent:
		e, err := ParseEvent(p.Data)
		if err != nil {
			c.log.Warn("socketio: bad event ignored", "err", err)
			return nil
		}
		c.events.Put(e)
	case PacketDisconnect:
		return ErrServerDisconnect
	case PacketConnectError:
		return fmt.Errorf("%w: %s", ErrConnectRefused, connectErrorMessage(p.Data))
	}
	return nil
}

// ID returns the socket's ID on its namespace (socket.id on the server).
func (c *Conn) ID() string { return c.sid }

// Events delivers the server's events in order. It is closed when the
// connection ends; a reader that falls behind never blocks the connection
// (the queue is unbounded, as the server's pings must be answered).
func (c *Conn) Events() <-chan Event { return c.events.Out() }

// Done is closed when the connection has ended and its goroutine stopped.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended: nil after Close, ErrPingTimeout,
// ErrServerDisconnect, or a network error wrapping
// signaling.ErrDisconnected.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Emit sends event name with args, each encoded as JSON, bounded by ctx
// and ConnConfig.WriteTimeout. A failed write ends the connection.
func (c *Conn) Emit(ctx context.Context, name string, args ...any) error {
	data, err := encodeEvent(name, args)
	if err != nil {
		return err
	}
	select {
	case <-c.done:
		if err := c.Err(); err != nil {
			return fmt.Errorf("%w: %w", signaling.ErrDisconnected, err)
		}
		return signaling.ErrClosed
	default:
	}
	return c.write(ctx, Packet{Type: PacketEvent, Namespace: c.cfg.Namespace, Data: data})
}

func (c *Conn) write(ctx context.Context, p Packet) error {
	return c.writeRaw(ctx, AppendPacket([]byte{engineMessage}, p))
}

func (c *Conn) writeRaw(ctx context.Context, b []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	deadline := time.Now().Add(c.cfg.WriteTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.ws.SetWriteDeadline(deadline)
	stop := func() bool { return false }
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { _ = c.ws.NetConn().SetWriteDeadline(time.Now()) })
	}
	err := c.ws.WriteMessage(websocket.TextMessage, b)
	stop()
	if err != nil {
		// A failed or interrupted write leaves the socket unusable.
		_ = c.ws.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %w", signaling.ErrDisconnected, err)
	}
	return nil
}

// Close disconnects from the namespace, closes the connection and stops
// its goroutine. Events still queued are dropped.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	select {
	case <-c.done:
	default:
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = c.write(ctx, Packet{Type: PacketDisconnect, Namespace: c.cfg.Namespace})
		cancel()
		_ = c.ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		_ = c.ws.Close()
	}
	<-c.done
	c.events.Abandon()
	return nil
}
