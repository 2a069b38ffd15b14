package server

import (
	"context"
	"sync"
	"time"

	"github.com/dialtone-dev/dialtone/signaling"
)

// LocalOptions configures an in-process connection.
type LocalOptions struct {
	// ReadyTimeout bounds the wait for `ready`. Default 10 s.
	ReadyTimeout time.Duration
	// IncomingBuffer is the capacity of the Incoming channel. Default 64.
	// A reader slower than that backs up into the server's send queue and,
	// past it, is cut off like any slow consumer.
	IncomingBuffer int
}

// LocalConn is an in-process signaling.Transport attached to the server's
// core: the same authentication-free identity, routing, push, pending-TTL
// and limits as a WebSocket client, without a socket. Messages are encoded
// to JSON and decoded by the server like frames, so they meet the same
// checks. Disconnect and Reconnect drop and restore the connection;
// package servertest makes the link lossy, slow or reordering.
type LocalConn struct {
	srv      *Server
	user     string
	opts     LocalOptions
	incoming chan signaling.Message
	status   *signaling.StatusQueue
	stop     chan struct{}
	stopOnce sync.Once
	up, down *link
	slots    chan struct{} // messages in flight on the down link
	pumps    sync.WaitGroup

	mu      sync.Mutex
	c       *conn // current attachment; nil while down
	ready   signaling.Ready
	readyCh chan struct{} // closed by the next `ready`
	closed  bool
	err     error // why it stopped for good
}

var _ signaling.Transport = (*LocalConn)(nil)

// ConnectLocal attaches an in-process client for user to the server and
// returns once the server's `ready` has been received (waiting, within
// ReadyTimeout, for a server still joining its cluster). user is trusted (no
// Authenticator runs); it must satisfy ValidateUser. A newer connection of
// the same user, local or WebSocket, replaces it like any other.
func (s *Server) ConnectLocal(ctx context.Context, user string, opts LocalOptions) (*LocalConn, error) {
	if err := ValidateUser(user); err != nil {
		return nil, err
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 10 * time.Second
	}
	if opts.IncomingBuffer <= 0 {
		opts.IncomingBuffer = 64
	}
	lc := &LocalConn{
		srv: s, user: user, opts: opts,
		incoming: make(chan signaling.Message, opts.IncomingBuffer),
		status:   signaling.NewStatusQueue(16),
		stop:     make(chan struct{}),
		slots:    make(chan struct{}, opts.IncomingBuffer),
	}
	lc.up = newLink(lc.stop, lc.deliverUp, nil)
	lc.down = newLink(lc.stop, lc.deliverDown, func() {
		close(lc.incoming)
		lc.status.Close()
	})
	wctx, cancel := context.WithTimeout(ctx, opts.ReadyTimeout)
	err := s.hub.waitJoined(wctx)
	cancel()
	if err == nil {
		err = lc.attach(ctx)
	}
	if err != nil {
		_ = lc.Close()
		return nil, err
	}
	return lc, nil
}

// attach connects a new core conn and waits for its `ready`.
func (lc *LocalConn) attach(ctx context.Context) error {
	c := lc.srv.hub.newConn(lc.user, nil)
	readyCh := make(chan struct{})
	lc.mu.Lock()
	if lc.closed {
		lc.mu.Unlock()
		return signaling.ErrClosed
	}
	lc.readyCh = readyCh
	lc.mu.Unlock()
	if err := lc.srv.hub.attach(c); err != nil {
		return err
	}
	lc.mu.Lock()
	lc.c = c
	lc.mu.Unlock()
	lc.pumps.Add(1)
	go lc.pump(c)

	t := time.NewTimer(lc.opts.ReadyTimeout)
	defer t.Stop()
	select {
	case <-readyCh:
		return nil
	case <-ctx.Done():
		lc.drop(c)
		return ctx.Err()
	case <-t.C:
		lc.drop(c)
		return signaling.ErrReadyTimeout
	case <-lc.stop:
		return signaling.ErrClosed
	}
}

// pump moves the conn's queue into the down link until the conn ends. At
// most IncomingBuffer messages are in flight on the link, so a reader that
// does not keep up backs up into the server's send queue, as a socket would.
func (lc *LocalConn) pump(c *conn) {
	defer lc.pumps.Done()
	defer lc.srv.hub.release(c)
	for {
		select {
		case o := <-c.out:
			m := o.msg
			c.taken(o, false) // m goes to the user: its data stays with it
			if m.Type == signaling.TypeReady {
				lc.down.push(linkItem{msg: m})
				continue
			}
			select {
			case lc.slots <- struct{}{}:
				lc.down.push(linkItem{msg: m, slot: true})
			case <-c.done:
				lc.ended(c)
				return
			case <-lc.stop:
				return
			}
		case <-c.done:
			lc.ended(c)
			return
		case <-lc.stop:
			return
		}
	}
}

// ended passes on the end of a conn the core ended: what was queued before
// the end (unless it was cut off for not reading), the final word, then the
// state change.
func (lc *LocalConn) ended(c *conn) {
	code, final := c.endState()
	if code == "" {
		return // Disconnect or Close: already reported
	}
	if code != signaling.CodeSlowConsumer {
		for drained := false; !drained; {
			select {
			case o := <-c.out:
				c.taken(o, false)
				lc.down.push(linkItem{msg: o.msg})
			default:
				drained = true
			}
		}
	}
	if final != nil {
		lc.down.push(linkItem{msg: *final})
	}
	lc.down.push(linkItem{ctrl: func() { lc.coreEnded(c, code) }})
}

// coreEnded runs on the down link after the conn's last message was delivered.
func (lc *LocalConn) coreEnded(c *conn, code string) {
	lc.mu.Lock()
	if lc.c != c {
		lc.mu.Unlock()
		return
	}
	lc.c = nil
	lc.mu.Unlock()
	switch code {
	case signaling.CodeReplaced:
		lc.terminate(signaling.ErrReplaced)
	case signaling.CodeShutdown:
		lc.terminate(signaling.ErrServerShutdown)
	default:
		lc.status.Push(signaling.Status{State: signaling.StateDown, Err: signaling.Error{Code: code}, Time: time.Now()})
	}
}

// terminate stops the transport for good with err.
func (lc *LocalConn) terminate(err error) {
	lc.mu.Lock()
	if lc.closed {
		lc.mu.Unlock()
		return
	}
	lc.closed = true
	lc.err = err
	c := lc.c
	lc.c = nil
	lc.mu.Unlock()
	if c != nil {
		lc.srv.hub.detach(c)
	}
	lc.status.Push(signaling.Status{State: signaling.StateClosed, Err: err, Time: time.Now()})
	lc.stopOnce.Do(func() { close(lc.stop) })
}

func (lc *LocalConn) deliverUp(it linkItem) {
	lc.srv.hub.handle(it.msg.(*conn), it.raw)
}

func (lc *LocalConn) deliverDown(it linkItem) {
	if it.ctrl != nil {
		it.ctrl()
		return
	}
	if it.slot {
		defer func() { <-lc.slots }()
	}
	m := it.msg.(signaling.Message)
	if m.Type == signaling.TypeReady {
		var r signaling.Ready
		if m.Unmarshal(&r) == nil {
			lc.mu.Lock()
			lc.ready = r
			if lc.readyCh != nil {
				close(lc.readyCh)
				lc.readyCh = nil
			}
			lc.mu.Unlock()
		}
	}
	select {
	case lc.incoming <- m:
	case <-lc.stop:
	}
}

// drop detaches c (if current) without reporting.
func (lc *LocalConn) drop(c *conn) {
	lc.mu.Lock()
	if lc.c == c {
		lc.c = nil
	}
	lc.mu.Unlock()
	lc.srv.hub.detach(c)
}

// Send implements signaling.Transport. The message is encoded to JSON and
// handed to the server core through the link (with its faults).
func (lc *LocalConn) Send(ctx context.Context, m signaling.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	lc.mu.Lock()
	closed, c := lc.closed, lc.c
	lc.mu.Unlock()
	if closed {
		return signaling.ErrClosed
	}
	if c == nil || c.isDone() {
		return signaling.ErrDisconnected
	}
	raw, err := signaling.AppendEncode(nil, m)
	if err != nil {
		return err
	}
	lc.up.push(linkItem{raw: raw, msg: c})
	return nil
}

// Incoming implements signaling.Transport.
func (lc *LocalConn) Incoming() <-chan signaling.Message { return lc.incoming }

// Status implements signaling.Transport.
func (lc *LocalConn) Status() <-chan signaling.Status { return lc.status.C() }

// Ready implements signaling.Transport.
func (lc *LocalConn) Ready() signaling.Ready {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.ready
}

// User returns the connection's user ID.
func (lc *LocalConn) User() string { return lc.user }

// Err returns why the transport stopped for good (nil while it runs or
// after a plain Close).
func (lc *LocalConn) Err() error {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.err
}

// Disconnect simulates a lost connection: the server sees the user go away
// (later messages to it are `offline` or pending), messages in flight are
// lost, Status reports StateDown and Send fails with ErrDisconnected until
// Reconnect.
func (lc *LocalConn) Disconnect() {
	lc.mu.Lock()
	c := lc.c
	lc.c = nil
	closed := lc.closed
	lc.mu.Unlock()
	if c == nil || closed {
		return
	}
	lc.srv.hub.detach(c)
	lc.status.Push(signaling.Status{State: signaling.StateDown, Err: signaling.ErrDisconnected, Time: time.Now()})
}

// Reconnect attaches again after Disconnect (or after the server cut the
// connection) and returns once the new `ready` arrived; Status reports
// StateUp. It is a no-op while connected.
func (lc *LocalConn) Reconnect(ctx context.Context) error {
	lc.mu.Lock()
	closed, c := lc.closed, lc.c
	lc.mu.Unlock()
	if closed {
		return signaling.ErrClosed
	}
	if c != nil && !c.isDone() {
		return nil
	}
	if err := lc.attach(ctx); err != nil {
		return err
	}
	lc.status.Push(signaling.Status{State: signaling.StateUp, Attempt: 1, Time: time.Now()})
	return nil
}

// Close implements signaling.Transport: it leaves the server and stops
// every goroutine; Incoming and Status are closed.
func (lc *LocalConn) Close() error {
	lc.mu.Lock()
	wasClosed := lc.closed
	lc.closed = true
	c := lc.c
	lc.c = nil
	lc.mu.Unlock()
	if c != nil {
		lc.srv.hub.detach(c)
	}
	if !wasClosed {
		lc.status.Push(signaling.Status{State: signaling.StateClosed, Time: time.Now()})
	}
	lc.stopOnce.Do(func() { close(lc.stop) })
	lc.up.wait()
	lc.down.wait()
	lc.pumps.Wait()
	return nil
}

// current returns the current core conn (nil while down).
func (lc *LocalConn) current() *conn {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.c
}
