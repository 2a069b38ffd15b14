package audio

import (
	"runtime"
	"slices"
	"sync"
	"time"
)

// pacer runs the periods of many virtual devices on the real-time clock
// with a few shared goroutines, the way an audio server drives its channels
// from a handful of timers. A goroutine and a timer per device would wake
// the scheduler 100 times a second per device; with hundreds of devices (a
// process holding many calls) the wake-ups keep the run queues full, and Go
// polls the network only when a run queue empties (or every 10 ms from
// sysmon), which can hold received packets back by up to 10 ms. At 100
// calls the pacer saves about a tenth of the process's CPU.
//
// Devices with the same period are spread over paceSlots slots, each a
// goroutine with its own ticker (so its own phase) running its devices one
// after the other. Slots do not wait for each other: a slow one delays only
// its devices, and the work of one period is spread over it rather than
// done in one burst.
type pacer struct {
	mu    sync.Mutex
	slots map[time.Duration]*paceSet
}

// paceSet is the slots of one period length. Slot k ticks k/paceSlots of
// a period after epoch (modulo the period), so the slots' work is spread
// evenly over the period instead of starting at the same instant.
type paceSet struct {
	epoch time.Time
	slots [paceSlots]*paceSlot
}

// paceSlots is how many slots (goroutines) share the devices of one period.
const paceSlots = 8

// paceYield is how long a slot works before it lets other goroutines run
// (runtime.Gosched between two devices; capture devices, which come first,
// yield after paceYieldCapture). A slot's devices can take a few
// milliseconds together (encoding and decoding for dozens of calls); the
// goroutines that read packets off the network and file them in jitter
// buffers are short, and without the yield they would queue behind that
// whole burst and reach their buffers late. Shorter or longer intervals
// do no better than 300 µs.
const paceYield = 300 * time.Microsecond

// paceYieldCapture is paceYield among a slot's capture devices. Under
// heavy load each Gosched waits about 1 ms in the global run queue, so
// with frequent yields the last microphones of a full slot would send
// their packets well over a period after their tick was due, and the far
// ends' buffers run dry when several slots are that late at once. Not
// yielding at all among them hurts too: one slot then holds a P for
// milliseconds. 1 ms balances the two: a little more scheduling wait for
// the receive path, fewer late microphones.
const paceYieldCapture = time.Millisecond

var sharedPacer = &pacer{slots: map[time.Duration]*paceSet{}}

// paceSlot is one goroutine and ticker and the devices it runs. It runs
// while it has entries and exits when the last one leaves.
type paceSlot struct {
	period  time.Duration
	phase   time.Time    // a tick falls on phase + n·period
	entries []*paceEntry // guarded by pacer.mu
	quit    chan struct{}
}

// paceEntry is one device's tick function.
type paceEntry struct {
	fn    func(now time.Time)
	early bool // runs before the slot's other entries (capture devices)

	mu      sync.Mutex
	running bool
	removed bool
	done    chan struct{} // closed once removed and not running
}

// schedule calls fn once per period from the shared goroutines until the
// returned stop is called. stop does not wait: the returned channel closes
// once fn has returned for the last time, so a device may stop itself from
// inside fn and still be waited for by someone else. Early entries
// (capture devices) run before the others of their slot: a capture tick
// starts the send path, whose delay the far end's jitter buffer has to
// cover, while a playback tick that runs late only pulls later from a
// local buffer. Under heavy load a slot's tick can take longer than a
// period from its first device to its last (its yields wait in the run
// queue), so the order decides which delay grows.
func (p *pacer) schedule(period time.Duration, early bool, fn func(now time.Time)) (stop func(), done <-chan struct{}) {
	e := &paceEntry{fn: fn, early: early, done: make(chan struct{})}
	p.mu.Lock()
	set := p.slots[period]
	if set == nil {
		set = &paceSet{epoch: time.Now()}
		p.slots[period] = set
	}
	// The emptiest slot, starting one if there is a free place.
	k := -1
	for i, s := range set.slots {
		if s == nil {
			k = i
			break
		}
		if k < 0 || len(s.entries) < len(set.slots[k].entries) {
			k = i
		}
	}
	s := set.slots[k]
	if s == nil {
		s = &paceSlot{period: period, phase: set.epoch.Add(period * time.Duration(k) / paceSlots), quit: make(chan struct{})}
		set.slots[k] = s
		go p.run(s)
	}
	i := len(s.entries)
	if early {
		for i > 0 && !s.entries[i-1].early {
			i--
		}
	}
	s.entries = slices.Insert(s.entries, i, e)
	p.mu.Unlock()
	stop = func() {
		p.mu.Lock()
		for i, x := range s.entries {
			if x == e {
				s.entries = append(s.entries[:i:i], s.entries[i+1:]...)
				if len(s.entries) == 0 && set.slots[k] == s {
					set.slots[k] = nil
					close(s.quit)
				}
				break
			}
		}
		p.mu.Unlock()
		e.mu.Lock()
		if !e.removed {
			e.removed = true
			if !e.running {
				close(e.done)
			}
		}
		e.mu.Unlock()
	}
	return stop, e.done
}

func (e *paceEntry) tick(now time.Time) {
	e.mu.Lock()
	if e.removed {
		e.mu.Unlock()
		return
	}
	e.running = true
	e.mu.Unlock()
	e.fn(now)
	e.mu.Lock()
	e.running = false
	if e.removed {
		close(e.done)
	}
	e.mu.Unlock()
}

// run is a slot's timer loop. Ticks that fall due while the slot is busy
// are dropped by the ticker; each device catches up by its own sample
// time.
func (p *pacer) run(s *paceSlot) {
	// Start on the slot's phase.
	wait := time.NewTimer(s.period - time.Since(s.phase)%s.period)
	select {
	case <-s.quit:
		wait.Stop()
		return
	case <-wait.C:
	}
	t := time.NewTicker(s.period)
	defer t.Stop()
	var batch []*paceEntry
	for {
		var now time.Time
		select {
		case <-s.quit:
			return
		case now = <-t.C:
		}
		p.mu.Lock()
		batch = append(batch[:0], s.entries...)
		p.mu.Unlock()
		mark := time.Now()
		for _, e := range batch {
			e.tick(now)
			limit := paceYield
			if e.early {
				limit = paceYieldCapture
			}
			if time.Since(mark) > limit {
				runtime.Gosched()
				mark = time.Now()
			}
		}
	}
}
