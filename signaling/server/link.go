package server

import "github.com/dialtone-dev/dialtone/internal/mailbox"

// link carries a LocalConn's items one way, in order, on its own
// goroutine, and hands each to deliver (which may block until stop).
type link struct {
	q    *mailbox.Mailbox[linkItem]
	done chan struct{}
}

type linkItem struct {
	// payload: exactly one of these is used by the owner's deliver.
	raw  []byte
	msg  any
	ctrl func()
	slot bool // holds a flight slot of the owner until delivered
}

// newLink starts a link that runs until stop is closed, then calls onExit
// (if set) on its goroutine.
func newLink(stop <-chan struct{}, deliver func(linkItem), onExit func()) *link {
	l := &link{q: mailbox.New[linkItem](), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		if onExit != nil {
			defer onExit()
		}
		defer l.q.Abandon()
		out := l.q.Out()
		for {
			select {
			case <-stop:
				return
			case it := <-out:
				select {
				case <-stop:
					return
				default:
				}
				deliver(it)
			}
		}
	}()
	return l
}

// push queues it.
func (l *link) push(it linkItem) { l.q.Put(it) }

// wait returns once the link's goroutine has exited (after stop).
func (l *link) wait() { <-l.done }
