package signaling

import "sync"

// StatusQueue is the Status channel of a Transport implementation: Push
// never blocks the transport, and when the reader is far behind the oldest
// change is dropped (the latest state is what a reader needs). The zero
// value is not usable; call NewStatusQueue.
type StatusQueue struct {
	mu     sync.Mutex
	ch     chan Status
	closed bool
}

// NewStatusQueue returns a queue holding up to n unread changes.
func NewStatusQueue(n int) *StatusQueue { return &StatusQueue{ch: make(chan Status, max(1, n))} }

// C is the read side, for Transport.Status. It is closed by Close.
func (q *StatusQueue) C() <-chan Status { return q.ch }

// Push adds s, dropping the oldest unread change if the queue is full.
// Pushes after Close are ignored.
func (q *StatusQueue) Push(s Status) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	for {
		select {
		case q.ch <- s:
			return
		default:
		}
		select {
		case <-q.ch:
		default:
		}
	}
}

// Close closes the read side after the changes already queued.
func (q *StatusQueue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
}
