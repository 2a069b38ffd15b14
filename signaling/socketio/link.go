package socketio

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/dialtone-dev/dialtone/signaling"
)

// link keeps a transport's Socket.IO connection up: it hands every event
// to the transport, and after a drop reports StateDown, dials again with
// backoff, runs the transport's set-up on the new connection and reports
// StateUp. It stops for good on close, with NoReconnect after a drop, or
// when the server's middleware refuses a reconnection.
type link struct {
	url         string
	cfg         ConnConfig
	backoff     signaling.Backoff
	noReconnect bool
	// setup readies a new connection (waits for `ready`, joins the room)
	// before the transport uses it.
	setup func(ctx context.Context, c *Conn) error
	// handle takes every event, on the link's goroutine.
	handle func(Event)
	// down runs on the link's goroutine when the connection dropped,
	// before StateDown is reported.
	down func()

	status *signaling.StatusQueue
	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	conn *Conn // nil while down
}

// connect dials once and runs setup.
func (l *link) connect(ctx context.Context) (*Conn, error) {
	c, err := DialConn(ctx, l.url, l.cfg)
	if err != nil {
		return nil, err
	}
	if err := l.setup(ctx, c); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// start makes the first connection (bounded by ctx) and starts the link's
// goroutine; onClosed runs on it when the link stops for good.
func (l *link) start(ctx context.Context, onClosed func()) error {
	l.cfg = l.cfg.withDefaults()
	c, err := l.connect(ctx)
	if err != nil {
		return err
	}
	l.status = signaling.NewStatusQueue(16)
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.done = make(chan struct{})
	l.conn = c
	go l.run(c, onClosed)
	return nil
}

func (l *link) run(c *Conn, onClosed func()) {
	defer close(l.done)
	var err error
	for {
		l.serve(c)
		err = c.Err()
		l.mu.Lock()
		l.conn = nil
		l.mu.Unlock()
		_ = c.Close()
		if l.ctx.Err() != nil {
			err = nil
			break
		}
		if err == nil {
			err = ErrServerDisconnect
		}
		err = fmt.Errorf("%w: %w", signaling.ErrDisconnected, err)
		if l.noReconnect {
			break
		}
		l.down()
		l.cfg.Logger.Info("socketio: connection lost", "err", err)
		l.status.Push(signaling.Status{State: signaling.StateDown, Err: err, Time: time.Now()})
		var attempt int
		if c, attempt, err = l.reconnect(); c == nil {
			break
		}
		l.status.Push(signaling.Status{State: signaling.StateUp, Attempt: attempt, Time: time.Now()})
		l.cfg.Logger.Info("socketio: reconnected", "attempt", attempt)
	}
	l.status.Push(signaling.Status{State: signaling.StateClosed, Err: err, Time: time.Now()})
	l.status.Close()
	onClosed()
}

// serve hands c's events to the transport until c ends (or close).
func (l *link) serve(c *Conn) {
	stop := context.AfterFunc(l.ctx, func() { _ = c.Close() })
	defer stop()
	for e := range c.Events() {
		l.handle(e)
	}
	<-c.Done()
}

// reconnect dials until it connects (the new connection and the attempt
// that made it), close (nil, nil error), or the server refuses the client
// (nil and why).
func (l *link) reconnect() (*Conn, int, error) {
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for attempt := 1; ; attempt++ {
		t.Reset(l.backoff.Delay(attempt, rand.Float64()))
		select {
		case <-l.ctx.Done():
			return nil, 0, nil
		case <-t.C:
		}
		c, err := l.connect(l.ctx)
		if err != nil {
			if l.ctx.Err() != nil {
				return nil, 0, nil
			}
			if errors.Is(err, ErrConnectRefused) {
				return nil, 0, err
			}
			l.cfg.Logger.Info("socketio: reconnect failed", "attempt", attempt, "err", err)
			continue
		}
		l.mu.Lock()
		l.conn = c
		l.mu.Unlock()
		return c, attempt, nil
	}
}

// current returns the connection, or why there is none.
func (l *link) current() (*Conn, error) {
	if l.ctx.Err() != nil {
		return nil, signaling.ErrClosed
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return nil, signaling.ErrDisconnected
	}
	return l.conn, nil
}

// emit sends an event on the current connection.
func (l *link) emit(ctx context.Context, name string, args ...any) error {
	c, err := l.current()
	if err != nil {
		return err
	}
	return c.Emit(ctx, name, args...)
}

// close stops the link and waits for its goroutine.
func (l *link) close() {
	l.cancel()
	<-l.done
}
