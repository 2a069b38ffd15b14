package servertest

import (
	"container/heap"
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/dialtone-dev/dialtone/signaling"
)

// Faults makes a Link behave like a bad network. The zero value is a
// perfect link: messages arrive at once, in order.
type Faults struct {
	// Delay is added to every message.
	Delay time.Duration
	// Jitter adds a uniformly random extra delay in [0, Jitter); with Jitter
	// larger than the gap between messages they arrive out of order.
	Jitter time.Duration
	// Drop is the probability (0..1) that a message is lost.
	Drop float64
	// Reorder is the probability (0..1) that a message is held back by
	// ReorderDelay, so the messages sent right after it overtake it.
	Reorder float64
	// ReorderDelay is how long a reordered message is held. Default 20 ms.
	ReorderDelay time.Duration
	// Seed makes the randomness reproducible. Default 1.
	Seed uint64
}

func (f Faults) perfect() bool {
	return f.Delay <= 0 && f.Jitter <= 0 && f.Drop <= 0 && f.Reorder <= 0
}

// link carries items one way with Faults applied, on its own goroutine, and
// hands each due item to deliver (which may block until stop).
type link struct {
	deliver func(item linkItem)
	onExit  func()
	wake    chan struct{}
	stop    <-chan struct{}
	done    chan struct{}

	mu     sync.Mutex
	faults Faults
	rng    *rand.Rand
	seq    uint64
	q      linkQueue
}

type linkItem struct {
	at  time.Time
	seq uint64
	// payload: a message, or ctrl to run in its place.
	msg  signaling.Message
	ctrl func()
}

// newLink starts a link that runs until stop is closed, then calls onExit
// (if set) on its goroutine.
func newLink(stop <-chan struct{}, f Faults, seed uint64, deliver func(linkItem), onExit func()) *link {
	if seed == 0 {
		seed = 1
	}
	l := &link{
		deliver: deliver,
		onExit:  onExit,
		wake:    make(chan struct{}, 1),
		stop:    stop,
		done:    make(chan struct{}),
		faults:  f,
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
	go l.run()
	return l
}

func (l *link) setFaults(f Faults) {
	l.mu.Lock()
	l.faults = f
	l.mu.Unlock()
}

// push schedules it. Faults apply unless reliable is set (control items and
// the messages that must not be lost, like the final word of a conn).
func (l *link) push(it linkItem, reliable bool) {
	now := time.Now()
	l.mu.Lock()
	f := l.faults
	at := now
	if !reliable && !f.perfect() {
		if f.Drop > 0 && l.rng.Float64() < f.Drop {
			l.mu.Unlock()
			return
		}
		at = at.Add(f.Delay)
		if f.Jitter > 0 {
			at = at.Add(time.Duration(l.rng.Int64N(int64(f.Jitter))))
		}
		if f.Reorder > 0 && l.rng.Float64() < f.Reorder {
			d := f.ReorderDelay
			if d <= 0 {
				d = 20 * time.Millisecond
			}
			at = at.Add(d)
		}
	}
	if reliable && len(l.q) > 0 {
		// Control items keep their place after everything already queued.
		if last := l.q.latest(); at.Before(last) {
			at = last
		}
	}
	l.seq++
	it.at, it.seq = at, l.seq
	heap.Push(&l.q, it)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// wait returns once the link's goroutine has exited (after stop).
func (l *link) wait() { <-l.done }

func (l *link) run() {
	defer close(l.done)
	if l.onExit != nil {
		defer l.onExit()
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		l.mu.Lock()
		var due []linkItem
		now := time.Now()
		for len(l.q) > 0 && !l.q[0].at.After(now) {
			due = append(due, heap.Pop(&l.q).(linkItem))
		}
		var next time.Duration = -1
		if len(l.q) > 0 {
			next = l.q[0].at.Sub(now)
		}
		l.mu.Unlock()
		for _, it := range due {
			select {
			case <-l.stop:
				return
			default:
			}
			l.deliver(it)
		}
		if len(due) > 0 {
			continue
		}
		var tc <-chan time.Time
		if next >= 0 {
			timer.Reset(next)
			tc = timer.C
		}
		select {
		case <-l.stop:
			return
		case <-l.wake:
		case <-tc:
		}
		if tc != nil && !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

type linkQueue []linkItem

func (q linkQueue) Len() int { return len(q) }
func (q linkQueue) Less(i, j int) bool {
	if q[i].at.Equal(q[j].at) {
		return q[i].seq < q[j].seq
	}
	return q[i].at.Before(q[j].at)
}
func (q linkQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *linkQueue) Push(x any)   { *q = append(*q, x.(linkItem)) }
func (q *linkQueue) Pop() any {
	old := *q
	it := old[len(old)-1]
	*q = old[:len(old)-1]
	return it
}
func (q linkQueue) latest() time.Time {
	var t time.Time
	for _, it := range q {
		if it.at.After(t) {
			t = it.at
		}
	}
	return t
}

// Link is a signaling.Transport in front of another one (typically a
// *server.LocalConn) whose messages it carries with Faults applied, both
// ways: a lossy, slow or reordering signaling link for tests. `ready` and
// `error` messages and status changes are never dropped or delayed (they
// keep their place after what is queued). Messages lost on the way up are
// lost silently, as on a network; Send fails at once only while the
// transport behind reports it is down or closed.
type Link struct {
	tr       signaling.Transport
	up, down *link
	incoming chan signaling.Message
	status   *signaling.StatusQueue
	stop     chan struct{}
	stopOnce sync.Once
	fwd      sync.WaitGroup

	mu     sync.Mutex
	isDown bool
	closed bool
}

var _ signaling.Transport = (*Link)(nil)

// NewLink puts a link with faults f in front of tr. The Link owns tr:
// Close closes it.
func NewLink(tr signaling.Transport, f Faults) *Link {
	l := &Link{
		tr:       tr,
		incoming: make(chan signaling.Message, cap(tr.Incoming())+1),
		status:   signaling.NewStatusQueue(16),
		stop:     make(chan struct{}),
	}
	l.up = newLink(l.stop, f, f.Seed, l.deliverUp, nil)
	l.down = newLink(l.stop, f, f.Seed+1, l.deliverDown, func() {
		close(l.incoming)
		l.status.Close()
	})
	l.fwd.Add(2)
	go func() {
		defer l.fwd.Done()
		for {
			select {
			case m, ok := <-tr.Incoming():
				if !ok {
					// tr stopped for good: the link ends after what it holds.
					l.down.push(linkItem{ctrl: l.halt}, true)
					return
				}
				l.down.push(linkItem{msg: m}, m.Type == signaling.TypeReady || m.Type == signaling.TypeError)
			case <-l.stop:
				return
			}
		}
	}()
	go func() {
		defer l.fwd.Done()
		for {
			select {
			case st, ok := <-tr.Status():
				if !ok {
					return
				}
				l.down.push(linkItem{ctrl: func() { l.setStatus(st) }}, true)
			case <-l.stop:
				return
			}
		}
	}()
	return l
}

func (l *Link) halt() { l.stopOnce.Do(func() { close(l.stop) }) }

func (l *Link) setStatus(st signaling.Status) {
	l.mu.Lock()
	l.isDown = st.State != signaling.StateUp
	l.mu.Unlock()
	l.status.Push(st)
}

func (l *Link) deliverUp(it linkItem) {
	_ = l.tr.Send(context.Background(), it.msg) // lost on the way, like on a network
}

func (l *Link) deliverDown(it linkItem) {
	if it.ctrl != nil {
		it.ctrl()
		return
	}
	select {
	case l.incoming <- it.msg:
	case <-l.stop:
	}
}

// SetFaults changes the faults from now on, both ways.
func (l *Link) SetFaults(f Faults) {
	l.up.setFaults(f)
	l.down.setFaults(f)
}

// Send implements signaling.Transport: m goes up the link, with its faults.
func (l *Link) Send(ctx context.Context, m signaling.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	closed, down := l.closed, l.isDown
	l.mu.Unlock()
	switch {
	case closed:
		return signaling.ErrClosed
	case down:
		return signaling.ErrDisconnected
	}
	l.up.push(linkItem{msg: m}, false)
	return nil
}

// Incoming implements signaling.Transport.
func (l *Link) Incoming() <-chan signaling.Message { return l.incoming }

// Status implements signaling.Transport.
func (l *Link) Status() <-chan signaling.Status { return l.status.C() }

// Ready implements signaling.Transport.
func (l *Link) Ready() signaling.Ready { return l.tr.Ready() }

// Close implements signaling.Transport: it closes the transport behind and
// stops the link; Incoming and Status are closed.
func (l *Link) Close() error {
	l.mu.Lock()
	wasClosed := l.closed
	l.closed = true
	l.mu.Unlock()
	err := l.tr.Close()
	if !wasClosed {
		l.status.Push(signaling.Status{State: signaling.StateClosed, Time: time.Now()})
	}
	l.halt()
	l.fwd.Wait()
	l.up.wait()
	l.down.wait()
	return err
}
