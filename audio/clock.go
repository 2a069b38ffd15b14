package audio

import (
	"context"
	"sync"
	"time"
)

// Clock makes tickers. A [Virtual] device is paced by one; inject a
// [ManualClock] to drive it deterministically in tests, or leave the
// default ([SystemClock]) for real time.
type Clock interface {
	NewTicker(period time.Duration) Ticker
}

// Ticker delivers ticks on C until Stop.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// SystemClock returns the real-time clock (time.Ticker). Like a sound card,
// it drops ticks rather than bursting when the consumer falls behind.
// [Virtual] devices on it do not get a goroutine and a ticker each: the
// process's devices with the same period share a pacer of eight slots,
// each a goroutine with its own ticker at its own phase, which keeps
// hundreds of devices (a process holding many calls) cheap and punctual.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) NewTicker(d time.Duration) Ticker { return systemTicker{time.NewTicker(d)} }

func (systemClock) schedule(period time.Duration, early bool, fn func(time.Time)) (func(), <-chan struct{}) {
	return sharedPacer.schedule(period, early, fn)
}

// scheduler is implemented by clocks that run tick functions themselves
// (the system clock, through the shared pacer) instead of handing out a
// ticker for a goroutine per device.
type scheduler interface {
	schedule(period time.Duration, early bool, fn func(now time.Time)) (stop func(), done <-chan struct{})
}

type systemTicker struct{ t *time.Ticker }

func (t systemTicker) C() <-chan time.Time { return t.t.C }
func (t systemTicker) Stop()               { t.t.Stop() }

// ManualClock is a [Clock] whose time moves only when Advance is called.
// Advance fires every tick that falls due, in time order, and returns only
// once each tick has been fully handled by a [Virtual] device (consumers
// other than Virtual count a tick as handled once received). Tests thus see
// exact callback counts with no sleeping. The zero value is not usable; use
// [NewManualClock].
type ManualClock struct {
	mu      sync.Mutex
	now     time.Time
	seq     uint64
	tickers []*manualTicker
}

// NewManualClock returns a manual clock reading start.
func NewManualClock(start time.Time) *ManualClock {
	return &ManualClock{now: start}
}

// Now returns the clock's current time. While a tick is being handled it is
// that tick's time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTicker implements [Clock]. The first tick falls one period after now.
func (c *ManualClock) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("audio: non-positive ticker period") // programming error, as in time.NewTicker
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &manualTicker{
		clock:  c,
		period: d,
		next:   c.now.Add(d),
		seq:    c.seq,
		c:      make(chan time.Time),
		ack:    make(chan struct{}),
		stop:   make(chan struct{}),
	}
	c.tickers = append(c.tickers, t)
	return t
}

// Advance moves the clock forward by d, firing due ticks one at a time
// (earliest first; ties in ticker creation order). It returns ctx's error
// if ctx ends while a tick is pending.
func (c *ManualClock) Advance(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var due *manualTicker
		for _, t := range c.tickers {
			if t.next.After(target) {
				continue
			}
			if due == nil || t.next.Before(due.next) || (t.next.Equal(due.next) && t.seq < due.seq) {
				due = t
			}
		}
		if due == nil {
			c.now = target
			c.mu.Unlock()
			return nil
		}
		at := due.next
		c.now = at
		due.next = at.Add(due.period)
		c.mu.Unlock()
		if err := due.fire(ctx, at); err != nil {
			return err
		}
	}
}

// Tickers returns how many tickers are live (created and not stopped).
// Tests use it to know a device has started.
func (c *ManualClock) Tickers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.tickers)
}

func (c *ManualClock) remove(t *manualTicker) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.tickers {
		if x == t {
			c.tickers = append(c.tickers[:i], c.tickers[i+1:]...)
			return
		}
	}
}

type manualTicker struct {
	clock    *ManualClock
	period   time.Duration
	next     time.Time // guarded by clock.mu
	seq      uint64
	c        chan time.Time
	ack      chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	acking   bool // set by a consumer that acknowledges ticks (Virtual)
	ackMu    sync.Mutex
}

func (t *manualTicker) C() <-chan time.Time { return t.c }

func (t *manualTicker) Stop() {
	t.stopOnce.Do(func() {
		close(t.stop)
		t.clock.remove(t)
	})
}

// enableAck is called by a consumer that promises to call handled after each tick.
func (t *manualTicker) enableAck() {
	t.ackMu.Lock()
	t.acking = true
	t.ackMu.Unlock()
}

func (t *manualTicker) handled() {
	select {
	case t.ack <- struct{}{}:
	case <-t.stop:
	}
}

func (t *manualTicker) fire(ctx context.Context, at time.Time) error {
	select {
	case t.c <- at:
	case <-t.stop:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	t.ackMu.Lock()
	acking := t.acking
	t.ackMu.Unlock()
	if !acking {
		return nil
	}
	select {
	case <-t.ack:
	case <-t.stop:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// tickAcker is implemented by tickers that want to know when a tick has
// been handled (ManualClock's), so Advance can be synchronous.
type tickAcker interface {
	enableAck()
	handled()
}
