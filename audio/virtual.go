package audio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dialtone-dev/dialtone/media/pcm"
)

// VirtualConfig configures a [Virtual] device. The zero value is a duplex
// 10 ms device on the system clock that captures silence and discards what
// it plays.
type VirtualConfig struct {
	// ID identifies the device; default Name.
	ID string
	// Name is the display name; default "Virtual".
	Name string
	// Direction is Capture, Playback or Duplex; default Duplex.
	Direction Direction
	// Default marks the device as the default one in its Info.
	Default bool
	// Period is the callback period; default DefaultPeriod.
	Period time.Duration
	// Clock paces the device; default SystemClock().
	Clock Clock
	// Source feeds Capture. nil captures silence. A short read is padded
	// with silence; after io.EOF the device captures silence.
	Source pcm.Reader
	// Sink receives every played period. nil discards.
	Sink pcm.Writer
	// Logger; default discards.
	Logger *slog.Logger

	onClose func(*Virtual) // VirtualBackend bookkeeping
}

// Virtual is a pure-Go [Device] paced by a [Clock]: on every tick it reads
// one period from its source into Callbacks.Capture, then asks
// Callbacks.Playback for one period and writes it to its sink. Capture runs
// before Playback within a tick, both on the goroutine that paces the
// device: its own with a [ManualClock] or another clock, one it shares
// with other devices on [SystemClock]. Callbacks must not block.
type Virtual struct {
	cfg    VirtualConfig
	info   DeviceInfo
	n      int
	log    *slog.Logger
	stopFn func() // stops the ticks; set by Start

	stopState
	mu      sync.Mutex
	started bool
	closed  bool
	quit    chan struct{}
	exited  <-chan struct{} // closed after the last tick has run
	reason  error           // set by Interrupt before quit closes

	periods atomic.Uint64
	waitMu  sync.Mutex
	waiters []periodWaiter
	nwait   atomic.Int32
}

type periodWaiter struct {
	n  uint64
	ch chan struct{}
}

// NewVirtual makes a virtual device from cfg (see [VirtualConfig] for defaults).
func NewVirtual(cfg VirtualConfig) (*Virtual, error) {
	p, err := checkPeriod(cfg.Period)
	if err != nil {
		return nil, err
	}
	cfg.Period = p
	if cfg.Name == "" {
		cfg.Name = "Virtual"
	}
	if cfg.ID == "" {
		cfg.ID = cfg.Name
	}
	if cfg.Direction == 0 {
		cfg.Direction = Duplex
	}
	if cfg.Direction&^Duplex != 0 {
		return nil, fmt.Errorf("%w: direction %v", ErrFormat, cfg.Direction)
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock()
	}
	log := cfg.Logger
	if log == nil {
		log = discardLogger()
	}
	return &Virtual{
		cfg:       cfg,
		info:      DeviceInfo{ID: cfg.ID, Name: cfg.Name, Direction: cfg.Direction, Default: cfg.Default, Backend: "virtual"},
		n:         Samples(cfg.Period),
		log:       log,
		stopState: newStopState(),
		quit:      make(chan struct{}),
	}, nil
}

// Info implements [Device].
func (v *Virtual) Info() DeviceInfo { return v.info }

// Period implements [Device].
func (v *Virtual) Period() time.Duration { return v.cfg.Period }

// Start implements [Device]: it starts the device's ticks.
func (v *Virtual) Start(cb Callbacks) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return ErrClosed
	}
	if v.started {
		return ErrStarted
	}
	v.started = true
	step := v.stepper(cb)
	if s, ok := v.cfg.Clock.(scheduler); ok {
		v.stopFn, v.exited = s.schedule(v.cfg.Period, v.cfg.Direction&Capture != 0, step)
		return nil
	}
	t := v.cfg.Clock.NewTicker(v.cfg.Period)
	if a, ok := t.(tickAcker); ok {
		a.enableAck()
	}
	exited := make(chan struct{})
	v.exited = exited
	v.stopFn = t.Stop
	go func() {
		defer close(exited)
		v.run(t, step)
	}()
	return nil
}

func (v *Virtual) run(t Ticker, step func(time.Time)) {
	ack, _ := t.(tickAcker)
	for {
		select {
		case <-v.quit:
			return
		case now := <-t.C():
			step(now)
		}
		if ack != nil {
			ack.handled()
		}
	}
}

// stepper returns the function that runs what fell due at a tick.
//
// Like a sound card's crystal, the device keeps sample time: periods are
// counted from the first tick (with half a period of slack against tick
// jitter), and a tick that arrives late (a busy machine, a ticker that
// dropped ticks) catches up what fell due since, so the streams never lose
// or gain samples against the clock. The two directions catch up
// differently, as a sound card's buffers do:
//
//   - capture runs every period due at once: a card's capture buffer kept
//     the samples while the process was not reading, and hands them over
//     together;
//   - playback runs one period per tick, and once it has lagged the clock
//     for playbackCatchUpAfter, one more per tick until it is back on it.
//     A late tick means the whole process stalled, and with it the
//     goroutines that read packets off the network and file them in a
//     call's jitter buffer. Pulling every due period at the stall's end
//     would ask the buffer for audio whose packets are still waiting in
//     the socket: it would conceal their slots, then drop them as late
//     and raise its target delay by the stall's length, which it keeps
//     for ten seconds or more. Pulling at the clock's pace for a while
//     lets those packets arrive first; catching up afterwards (rather
//     than staying behind) keeps the stall from adding to the delay for
//     good.
//
// A lag beyond maxCatchUp periods (the process was stopped, a debugger) is
// an overrun: what cannot be caught up is skipped, not burst out.
func (v *Virtual) stepper(cb Callbacks) func(now time.Time) {
	var in, out []int16
	if v.cfg.Direction&Capture != 0 && cb.Capture != nil {
		in = make([]int16, v.n)
	}
	if v.cfg.Direction&Playback != 0 {
		out = make([]int16, v.n)
	}
	src := v.cfg.Source
	var base time.Time
	var captured, played int64 // periods run or skipped since base
	var ran [2]int64           // periods run: capture, playback
	var behind time.Time       // since when playback has lagged the clock; zero when it has not
	// overrun skips all but one period of a lag beyond maxCatchUp.
	overrun := func(lag int64, what string) int64 {
		if lag <= maxCatchUp {
			return 0
		}
		v.log.Debug("audio: virtual device overrun; skipping periods", "device", v.info.Name, "direction", what, "periods", lag-1)
		return lag - 1
	}
	return func(now time.Time) {
		if base.IsZero() {
			base = now.Add(-v.cfg.Period - v.cfg.Period/2)
		}
		due := int64(now.Sub(base) / v.cfg.Period)
		if in != nil {
			captured += overrun(due-captured, "capture")
			for ; captured < due; captured++ {
				src = v.read(src, in)
				cb.Capture(in)
				ran[0]++
			}
		}
		if out != nil {
			played += overrun(due-played, "playback")
			lag := due - played
			n := min(lag, 1)
			switch {
			case lag <= 1:
				behind = time.Time{}
			case behind.IsZero():
				behind = now
			case now.Sub(behind) >= playbackCatchUpAfter:
				n = 2
			}
			for range n {
				played++
				v.play(cb, out)
				ran[1]++
			}
		}
		// A period is complete once each direction in use has run it.
		done := due
		switch {
		case in != nil && out != nil:
			done = min(ran[0], ran[1])
		case in != nil:
			done = ran[0]
		case out != nil:
			done = ran[1]
		}
		if n := uint64(done); n > v.periods.Load() {
			v.periods.Store(n)
			if v.nwait.Load() > 0 {
				v.wake(n)
			}
		}
	}
}

// maxCatchUp bounds how many late periods a device catches up (200 ms at
// 10 ms).
const maxCatchUp = 20

// playbackCatchUpAfter is how long a playback device that fell behind the
// clock plays at the clock's pace before it catches up (see stepper): well
// over the time the packets a stall held back take to reach a jitter
// buffer once the process runs again, on a loaded machine where each
// goroutine of the receive path can wait a millisecond or more to run.
const playbackCatchUpAfter = 200 * time.Millisecond

// play asks Callbacks.Playback for one period and writes it to the sink.
func (v *Virtual) play(cb Callbacks, out []int16) {
	clear(out)
	if cb.Playback != nil {
		cb.Playback(out)
	}
	if v.cfg.Sink != nil {
		if _, err := v.cfg.Sink.WritePCM(out); err != nil {
			v.log.Warn("audio: virtual sink write failed; discarding from now on", "device", v.info.Name, "err", err)
			v.cfg.Sink = nil
		}
	}
}

// read fills p from src (silence when src is nil or exhausted) and returns
// the source to use next time.
func (v *Virtual) read(src pcm.Reader, p []int16) pcm.Reader {
	got := 0
	for src != nil && got < len(p) {
		n, err := src.ReadPCM(p[got:])
		got += n
		if err != nil {
			if !errors.Is(err, io.EOF) {
				v.log.Warn("audio: virtual source read failed; capturing silence from now on", "device", v.info.Name, "err", err)
			}
			src = nil
		} else if n == 0 {
			break // a source with nothing now: pad this period
		}
	}
	clear(p[got:])
	return src
}

func (v *Virtual) wake(n uint64) {
	v.waitMu.Lock()
	defer v.waitMu.Unlock()
	kept := v.waiters[:0]
	for _, w := range v.waiters {
		if n >= w.n {
			close(w.ch)
			v.nwait.Add(-1)
		} else {
			kept = append(kept, w)
		}
	}
	v.waiters = kept
}

// Periods returns how many periods the device has completed.
func (v *Virtual) Periods() uint64 { return v.periods.Load() }

// WaitPeriods blocks until the device has completed at least n periods,
// the device stops, or ctx ends.
func (v *Virtual) WaitPeriods(ctx context.Context, n uint64) error {
	v.waitMu.Lock()
	if v.periods.Load() >= n {
		v.waitMu.Unlock()
		return nil
	}
	w := periodWaiter{n: n, ch: make(chan struct{})}
	v.waiters = append(v.waiters, w)
	v.nwait.Add(1)
	v.waitMu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-v.Done():
		if v.periods.Load() >= n {
			return nil
		}
		return fmt.Errorf("audio: device stopped after %d of %d periods: %w", v.periods.Load(), n, ErrClosed)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Interrupt stops the device as if it had been unplugged: Done closes and
// Err returns err (ErrInterrupted when err is nil). It may be called from
// any goroutine, including the device's own callbacks.
func (v *Virtual) Interrupt(err error) {
	if err == nil {
		err = ErrInterrupted
	}
	v.mu.Lock()
	if v.closed || v.reason != nil {
		v.mu.Unlock()
		return
	}
	v.reason = err
	started := v.started
	stop := v.stopFn
	close(v.quit)
	v.mu.Unlock()
	if stop != nil {
		stop()
	}
	if !started {
		v.finish(err)
		return
	}
	// The pacing goroutine may be the caller; report from another one.
	go func() {
		<-v.exited
		v.finish(err)
	}()
}

// Close implements [Device].
func (v *Virtual) Close() error {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		<-v.Done()
		return nil
	}
	v.closed = true
	interrupted := v.reason != nil
	if !interrupted {
		close(v.quit)
	}
	started := v.started
	stop := v.stopFn
	v.mu.Unlock()
	if stop != nil {
		stop()
	}
	if started {
		<-v.exited
	}
	if !interrupted {
		v.finish(nil)
	} else {
		<-v.Done()
	}
	if v.cfg.onClose != nil {
		v.cfg.onClose(v)
	}
	return nil
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
