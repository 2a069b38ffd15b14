package server

import (
	"sync"

	"golang.org/x/time/rate"

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
	out  chan *signaling.Message
	done chan struct{} // closed when the conn ends, for whatever reason

	limiter *rate.Limiter // messages accepted
	strikes *rate.Limiter // rejected messages tolerated

	// kill forcibly tears down the carrier (e.g. closes the socket); used
	// by Shutdown past its deadline. Set before the conn is attached.
	kill func()

	mu    sync.Mutex
	ended bool
	code  string             // why the core ended it ("" when the carrier detached)
	final *signaling.Message // last message to write before closing
}

// enqueue queues m without blocking; false when the queue is full or the
// conn has ended.
func (c *conn) enqueue(m signaling.Message) bool {
	select {
	case <-c.done:
		return false
	default:
	}
	select {
	case c.out <- &m:
		return true
	default:
		return false
	}
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
