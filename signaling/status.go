package signaling

import "sync"

// statusQueue is a Status channel that never blocks its sender: when the
// reader is far behind, the oldest change is dropped.
type statusQueue struct {
	mu     sync.Mutex
	ch     chan Status
	closed bool
}

func newStatusQueue(n int) *statusQueue { return &statusQueue{ch: make(chan Status, n)} }

func (q *statusQueue) push(s Status) {
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

func (q *statusQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
}
