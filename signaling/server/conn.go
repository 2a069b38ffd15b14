package server

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/dialtone-dev/dialtone/signaling"
)

// conn is one attached client as the core sees it, whatever carries it
// (WebSocket or in-process). The core only ever enqueues without blocking;
// the carrier drains out and watches done.
type conn struct {
	id   uint64
	user string
	// out holds pointers: a queue of SendQueue (256) Messages by value
	// would cost ~22 KB per connection, idle or not.
	out  chan *outMsg
	done chan struct{} // closed when the conn ends, for whatever reason
	// queued counts messages enqueued and not yet written; the carrier
	// decrements it after each write. While it is zero the router may
	// write to the carrier directly (direct), keeping the order.
	queued atomic.Int64
	// direct, when set (before attach), lets the router write a message
	// itself instead of waking the carrier's writer.
	direct directWriter
	bufs   *bufPool

	// lim is the user's limits, shared with its other connections (set
	// by attach).
	lim *userLimits
	// seq numbers the frames read from the client (1 for the first); only
	// the carrier's reading goroutine touches it.
	seq uint64
	// addr is the client address counted by the per-address limits ("":
	// not counted, e.g. an in-process conn).
	addr string
	// expires is when the conn's credentials expire (zero: never); expiry
	// ends it then.
	expires time.Time
	expiry  *time.Timer

	// kill forcibly tears down the carrier (e.g. closes the socket); used
	// by Shutdown past its deadline. Set before the conn is attached.
	kill func()

	mu    sync.Mutex
	ended bool
	code  string             // why the core ended it ("" when the carrier detached)
	final *signaling.Message // last message to write before closing
}

// outMsg is a message queued for a conn. When buf is set, msg.Data points
// into it: the pooled buffer the frame was read into, which the carrier
// gives back (taken) once the message is written, so that relaying a
// message does not copy and allocate its data on the way.
type outMsg struct {
	msg signaling.Message
	buf *[]byte
}

// directWriter is a carrier that can take a message from the routing
// goroutine without blocking it: a socket write that does not wait (what
// the socket does not take at once is left to the carrier's writer).
// Writing there saves waking the writer goroutine for every message.
type directWriter interface {
	// claim reserves the carrier's writes; false when it is busy writing
	// or cannot take messages this way now.
	claim() bool
	// write writes m and ends the claim. It never blocks.
	write(m signaling.Message)
}

// enqueue queues m without blocking; false when the queue is full or the
// conn has ended.
func (c *conn) enqueue(m signaling.Message) bool {
	return c.enqueueBuf(m, nil)
}

// enqueueBuf is enqueue for a message whose data points into buf (see
// outMsg); on success buf belongs to the conn's carrier.
func (c *conn) enqueueBuf(m signaling.Message, buf *[]byte) bool {
	select {
	case <-c.done:
		return false
	default:
	}
	c.queued.Add(1)
	select {
	case c.out <- &outMsg{msg: m, buf: buf}:
		return true
	default:
		c.queued.Add(-1)
		return false
	}
}

// taken is called by the carrier for each message it took from out, once
// written (or given up on). With reuse, o's buffer goes back to the pool;
// without, it stays with the message (a carrier that hands the Message on).
func (c *conn) taken(o *outMsg, reuse bool) {
	c.queued.Add(-1)
	if reuse && o.buf != nil {
		c.bufs.put(o.buf)
	}
	o.buf = nil
}

// end ends the conn once. code "" means a quiet end (the carrier went
// away); otherwise an `error` message with code and text is left as the
// final word for the carrier to deliver before closing.
func (c *conn) end(code, text string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return false
	}
	c.ended = true
	c.code = code
	if code != "" {
		m, _ := signaling.NewMessage(signaling.TypeError, c.user, "", signaling.Error{Code: code, Message: text})
		c.final = &m
	}
	close(c.done)
	return true
}

// endState returns why the conn ended and the final message, if any.
func (c *conn) endState() (string, *signaling.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.code, c.final
}

func (c *conn) isDone() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// bufPool recycles frame buffers: the buffer a frame is read into travels
// with its message to the recipient's writer, which gives it back.
type bufPool struct {
	p sync.Pool
}

// Buffers above this are left to the garbage collector: a rare large
// message must not pin its buffer in the pool.
const (
	bufInitial = 4 << 10
	bufMaxKept = 16 << 10
)

func (p *bufPool) get() *[]byte {
	if b, ok := p.p.Get().(*[]byte); ok {
		*b = (*b)[:0]
		return b
	}
	b := make([]byte, 0, bufInitial)
	return &b
}

func (p *bufPool) put(b *[]byte) {
	if b != nil && cap(*b) <= bufMaxKept {
		p.p.Put(b)
	}
}
