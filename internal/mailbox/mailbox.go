// Package mailbox is an unbounded FIFO between one producer side that must
// never block (pion callbacks, timers, an audio clock) and one consumer that
// reads at its own pace. It is how dialtone keeps its promise that events are
// never dropped and a slow reader never stalls an actor.
package mailbox

import "sync"

// Mailbox is an unbounded, ordered queue with a channel on the read side.
// Put never blocks. Out delivers every item put before Close, in order, and
// is closed once the queue is closed and drained. The zero value is not
// usable; call New.
type Mailbox[T any] struct {
	mu     sync.Mutex
	items  []T
	closed bool
	wake   chan struct{}
	out    chan T
	done   chan struct{}
	exited chan struct{}
	start  sync.Once
	stop   sync.Once

	running bool // guarded by mu: the goroutine was started
}

// New makes a mailbox. Its goroutine starts with the first call to Out (so a
// mailbox nobody reads costs no goroutine) and ends after Close once every
// queued item has been read, or at once after Abandon.
func New[T any]() *Mailbox[T] {
	return &Mailbox[T]{
		wake:   make(chan struct{}, 1),
		out:    make(chan T),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
}

// Drained reports that the mailbox has been closed and everything in it
// read (or abandoned): its goroutine, if it ever ran, has ended.
func (m *Mailbox[T]) Drained() bool {
	select {
	case <-m.exited:
		return true
	default:
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed && len(m.items) == 0 && !m.running
}

// Put appends v. It never blocks. Items put after Close are discarded and
// Put reports false.
func (m *Mailbox[T]) Put(v T) bool {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return false
	}
	m.items = append(m.items, v)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
	return true
}

// Out is the read side. It is closed after Close once drained, or after
// Abandon.
func (m *Mailbox[T]) Out() <-chan T {
	m.start.Do(m.launch)
	return m.out
}

func (m *Mailbox[T]) launch() {
	m.mu.Lock()
	m.running = true
	m.mu.Unlock()
	go m.run()
}

// Len is the number of items waiting (not counting one in hand).
func (m *Mailbox[T]) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.items)
}

// Close stops accepting items; Out is closed once the queued ones are read.
func (m *Mailbox[T]) Close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Abandon closes the mailbox and drops what nobody read. It returns once
// the goroutine has ended and Out is closed, so an owner's Close that
// abandons its mailboxes leaves no goroutine behind. Use it when no reader
// is left (the owner is shutting down).
func (m *Mailbox[T]) Abandon() {
	m.Close()
	m.stop.Do(func() { close(m.done) })
	// A mailbox never read has no goroutine to close out; start one so a
	// later reader of Out sees it closed rather than blocking forever.
	m.start.Do(m.launch)
	<-m.exited
}

func (m *Mailbox[T]) run() {
	defer m.exit()
	for {
		m.mu.Lock()
		if len(m.items) == 0 {
			closed := m.closed
			m.mu.Unlock()
			if closed {
				return
			}
			select {
			case <-m.wake:
			case <-m.done:
				return
			}
			continue
		}
		v := m.items[0]
		var zero T
		m.items[0] = zero
		m.items = m.items[1:]
		m.mu.Unlock()
		select {
		case m.out <- v:
		case <-m.done:
			return
		}
	}
}

// exit ends the goroutine. Drained must be true for anyone who has seen Out
// closed, so running is cleared and exited closed before out is.
func (m *Mailbox[T]) exit() {
	m.mu.Lock()
	m.running = false
	m.items = nil // abandoned items: nobody will read them
	m.mu.Unlock()
	close(m.exited)
	close(m.out)
}
