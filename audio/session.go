package audio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dialtone-dev/dialtone/internal/mailbox"
)

// Config configures a [Session]. The zero value opens the default capture
// and playback devices of the best backend available, at 10 ms periods.
type Config struct {
	// Callbacks are driven by the devices in use. A nil Capture discards
	// the microphone; a nil Playback plays silence. Notify is not called:
	// the devices' notices arrive as RouteChanged events.
	Callbacks Callbacks
	// Backend to use. nil: NewBackend(ctx, Kind, Logger), closed with the session.
	Backend Backend
	// Kind picks the backend when Backend is nil; default KindAuto.
	Kind Kind
	// Capture selects the input device by ID or name. Empty: the default
	// device, and the session follows the default when it changes.
	Capture string
	// Playback selects the output device, like Capture.
	Playback string
	// Direction says which devices to open: Capture, Playback or Duplex
	// (both, the default).
	Direction Direction
	// Period is the callback period; default DefaultPeriod (10 ms).
	Period time.Duration
	// PollInterval is how often the device list is scanned for changes;
	// default 1 s; negative disables polling (call Session.Poll instead).
	PollInterval time.Duration
	// RetryInterval is the pause between attempts to reopen a device after
	// an interruption when the first attempt failed; default 500 ms.
	RetryInterval time.Duration
	// Logger; default discards.
	Logger *slog.Logger
}

// Session owns the user's [Callbacks] and the devices currently driving
// them. The devices can change under it — by the user (SetCapture,
// SetPlayback), by the system (device removed, default changed) or after an
// interruption — without the callbacks noticing more than a period or two
// of discontinuity. The callbacks of one direction are never called
// concurrently, even while two devices overlap during a switch.
//
// Callbacks must not call Session methods (a switch waits for the old
// device's callback to return).
type Session struct {
	backend    Backend
	ownBackend bool
	log        *slog.Logger
	period     time.Duration
	poll       time.Duration
	retry      time.Duration

	taps   [2]*tap // [0] capture, [1] playback
	routes [2]*route
	known  []DeviceInfo

	snapMu  sync.Mutex
	snap    [2]DeviceInfo
	snapOK  [2]bool
	latency [2]time.Duration

	ctx     context.Context // cancelled by Close; bounds the actor's backend calls
	cancel  context.CancelFunc
	cmds    chan func()
	done    chan struct{}
	events  *mailbox.Mailbox[Event]
	notes   *mailbox.Mailbox[note] // devices' Notify calls, for the actor
	closeMu sync.Once
}

// note is a device's notice about its route, tagged with the route
// generation of the device that sent it.
type note struct {
	dir    Direction
	gen    uint64
	reason Reason
}

// route is the actor's state for one direction.
type route struct {
	dir    Direction
	want   string // user selection; "" follows the default
	dev    Device // nil while broken
	info   DeviceInfo
	gen    uint64
	broken bool
}

// tap connects device callbacks to the user's callback. Each started
// device gets a closure bound to a generation; only the current generation
// reaches the user. mu serialises the user's callback across the two
// devices that overlap during a switch (it is uncontended otherwise).
type tap struct {
	cur      atomic.Uint64
	mu       sync.Mutex
	capture  func([]int16)
	playback func([]int16)
}

func (t *tap) captureFn(gen uint64) func([]int16) {
	return func(p []int16) {
		t.mu.Lock()
		if t.cur.Load() == gen && t.capture != nil {
			t.capture(p)
		}
		t.mu.Unlock()
	}
}

func (t *tap) playbackFn(gen uint64) func([]int16) {
	return func(out []int16) {
		t.mu.Lock()
		if t.cur.Load() == gen && t.playback != nil {
			t.playback(out)
		}
		t.mu.Unlock()
	}
}

func slot(d Direction) int {
	if d == Playback {
		return 1
	}
	return 0
}

// Open opens a session: it picks the backend, opens and starts the
// selected devices and begins watching the device list.
func Open(ctx context.Context, cfg Config) (*Session, error) {
	period, err := checkPeriod(cfg.Period)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = discardLogger()
	}
	if cfg.Direction == 0 {
		cfg.Direction = Duplex
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 500 * time.Millisecond
	}
	s := &Session{
		backend: cfg.Backend,
		log:     log,
		period:  period,
		poll:    cfg.PollInterval,
		retry:   cfg.RetryInterval,
		cmds:    make(chan func()),
		done:    make(chan struct{}),
	}
	s.notes = mailbox.New[note]()
	s.taps[0] = &tap{capture: cfg.Callbacks.Capture}
	s.taps[1] = &tap{playback: cfg.Callbacks.Playback}
	if s.backend == nil {
		s.backend, err = NewBackend(ctx, cfg.Kind, log)
		if err != nil {
			return nil, err
		}
		s.ownBackend = true
	}
	fail := func(err error) (*Session, error) {
		for _, r := range s.routes {
			if r != nil && r.dev != nil {
				_ = r.dev.Close()
			}
		}
		if s.ownBackend {
			_ = s.backend.Close()
		}
		s.notes.Abandon()
		return nil, err
	}
	if s.known, err = s.backend.Devices(ctx); err != nil {
		return fail(fmt.Errorf("audio: list devices: %w", err))
	}
	for _, d := range []struct {
		dir Direction
		sel string
	}{{Capture, cfg.Capture}, {Playback, cfg.Playback}} {
		if cfg.Direction&d.dir == 0 {
			continue
		}
		r := &route{dir: d.dir, want: d.sel}
		s.routes[slot(d.dir)] = r
		if err := s.openRoute(ctx, r, d.sel); err != nil {
			return fail(err)
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.events = mailbox.New[Event]()
	go s.run()
	s.log.Info("audio: session open", "backend", s.backend.Name(), "period", period,
		"capture", s.snapshot(Capture), "playback", s.snapshot(Playback))
	return s, nil
}

// openRoute opens and starts a device for r, swaps it in, then closes the
// device it replaces: the order that keeps the gap to at most a period.
func (s *Session) openRoute(ctx context.Context, r *route, sel string) error {
	dev, err := s.backend.Open(ctx, DeviceConfig{Direction: r.dir, Device: sel, Period: s.period})
	if err != nil {
		return fmt.Errorf("audio: open %s device %q: %w", r.dir, sel, err)
	}
	t := s.taps[slot(r.dir)]
	gen := r.gen + 1
	dir := r.dir
	cb := Callbacks{Notify: func(reason Reason) { s.notes.Put(note{dir, gen, reason}) }}
	if r.dir == Capture {
		cb.Capture = t.captureFn(gen)
	} else {
		cb.Playback = t.playbackFn(gen)
	}
	if err := dev.Start(cb); err != nil {
		_ = dev.Close()
		return fmt.Errorf("audio: start %s device %q: %w", r.dir, sel, err)
	}
	t.cur.Store(gen)
	old := r.dev
	r.dev, r.gen, r.info, r.broken = dev, gen, dev.Info(), false
	s.snapMu.Lock()
	s.snap[slot(r.dir)], s.snapOK[slot(r.dir)] = r.info, true
	s.latency[slot(r.dir)] = deviceLatency(dev)
	s.snapMu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	return nil
}

func (s *Session) run() {
	defer close(s.done)
	var pollC <-chan time.Time
	if s.poll > 0 {
		t := time.NewTicker(s.poll)
		defer t.Stop()
		pollC = t.C
	}
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	armed := false
	for {
		var doneC [2]<-chan struct{}
		for i, r := range s.routes {
			if r != nil && r.dev != nil {
				doneC[i] = r.dev.Done()
			}
		}
		select {
		case <-s.ctx.Done():
			for _, r := range s.routes {
				if r != nil && r.dev != nil {
					_ = r.dev.Close()
					r.dev = nil
				}
			}
			return
		case fn := <-s.cmds:
			fn()
		case n := <-s.notes.Out():
			if r := s.routes[slot(n.dir)]; r != nil && r.dev != nil && r.gen == n.gen {
				s.emit(Event{Type: RouteChanged, Direction: n.dir, Device: r.info, Reason: n.reason})
			}
		case <-pollC:
			s.scan(s.ctx)
		case <-doneC[0]:
			s.interrupted(s.routes[0])
		case <-doneC[1]:
			s.interrupted(s.routes[1])
		case <-retry.C:
			armed = false
			for _, r := range s.routes {
				if r != nil && r.broken {
					s.recover(r, r.info)
				}
			}
		}
		if !armed && s.anyBroken() {
			retry.Reset(s.retry)
			armed = true
		}
	}
}

func (s *Session) anyBroken() bool {
	for _, r := range s.routes {
		if r != nil && r.broken {
			return true
		}
	}
	return false
}

func (s *Session) emit(ev Event) {
	ev.Time = time.Now()
	s.log.Info("audio: " + ev.String())
	s.events.Put(ev)
}

// refresh lists devices and reports what changed since the last list.
func (s *Session) refresh(ctx context.Context) ([]DeviceInfo, bool) {
	list, err := s.backend.Devices(ctx)
	if err != nil {
		s.log.Warn("audio: list devices failed", "err", err)
		return nil, false
	}
	key := func(d DeviceInfo) string { return d.Direction.String() + "\x00" + d.ID }
	old := make(map[string]DeviceInfo, len(s.known))
	for _, d := range s.known {
		old[key(d)] = d
	}
	now := make(map[string]bool, len(list))
	for _, d := range list {
		now[key(d)] = true
		if _, ok := old[key(d)]; !ok {
			s.emit(Event{Type: DeviceAdded, Direction: d.Direction, Device: d})
		}
	}
	for _, d := range s.known {
		if !now[key(d)] {
			s.emit(Event{Type: DeviceRemoved, Direction: d.Direction, Device: d})
		}
	}
	for _, dir := range []Direction{Capture, Playback} {
		was, errWas := Find(s.known, dir, "")
		is, errIs := Find(list, dir, "")
		if errIs == nil && (errWas != nil || was.ID != is.ID) {
			s.emit(Event{Type: DefaultChanged, Direction: dir, Device: is, Previous: was})
		}
	}
	s.known = list
	return list, true
}

// scan is one poll: report changes, then move routes whose device vanished
// (to the default) or whose followed default changed.
func (s *Session) scan(ctx context.Context) {
	list, ok := s.refresh(ctx)
	if !ok {
		return
	}
	for _, r := range s.routes {
		if r == nil || r.dev == nil {
			continue
		}
		prev := r.info
		reason := Reason("")
		if !listed(list, r.info) {
			r.want, reason = "", ReasonRemoved
		} else if def, err := Find(list, r.dir, ""); r.want == "" && err == nil && def.ID != r.info.ID {
			reason = ReasonDefaultChanged
		}
		if reason == "" {
			continue
		}
		if err := s.openRoute(ctx, r, r.want); err != nil {
			s.log.Warn("audio: could not move to the default device", "direction", r.dir, "err", err)
			continue
		}
		s.emit(Event{Type: DeviceSwitched, Direction: r.dir, Device: r.info, Previous: prev, Reason: reason})
	}
}

func listed(list []DeviceInfo, d DeviceInfo) bool {
	for _, x := range list {
		if x.Direction == d.Direction && x.ID == d.ID {
			return true
		}
	}
	return false
}

// interrupted handles a device in use that stopped by itself.
func (s *Session) interrupted(r *route) {
	err := r.dev.Err()
	if err == nil {
		err = ErrInterrupted
	}
	_ = r.dev.Close()
	r.dev, r.broken = nil, true
	s.emit(Event{Type: DeviceInterrupted, Direction: r.dir, Device: r.info, Err: err})
	s.recover(r, r.info)
}

// recover reopens a broken route: the selected device if still listed,
// else the default.
func (s *Session) recover(r *route, prev DeviceInfo) {
	list, ok := s.refresh(s.ctx)
	if !ok {
		return
	}
	reason := ReasonRecovered
	if r.want != "" {
		if _, err := Find(list, r.dir, r.want); err != nil {
			r.want, reason = "", ReasonRemoved
		}
	} else if !listed(list, prev) {
		reason = ReasonRemoved
	}
	if err := s.openRoute(s.ctx, r, r.want); err != nil {
		s.log.Warn("audio: reopen after interruption failed; will retry", "direction", r.dir, "retry", s.retry, "err", err)
		return
	}
	s.emit(Event{Type: DeviceRecovered, Direction: r.dir, Device: r.info, Previous: prev, Reason: reason})
}

// do runs fn on the actor and waits for it.
func (s *Session) do(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	select {
	case s.cmds <- func() { fn(); close(done) }:
	case <-s.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-s.done:
		return ErrClosed
	}
}

// SetCapture switches the input to the device with the given ID or name
// ("" = the default, followed from then on). The media layer sees no
// renegotiation: the capture callback simply continues from the new device.
func (s *Session) SetCapture(ctx context.Context, device string) error {
	return s.set(ctx, Capture, device)
}

// SetPlayback switches the output like [Session.SetCapture].
func (s *Session) SetPlayback(ctx context.Context, device string) error {
	return s.set(ctx, Playback, device)
}

func (s *Session) set(ctx context.Context, dir Direction, sel string) error {
	var err error
	derr := s.do(ctx, func() {
		r := s.routes[slot(dir)]
		if r == nil {
			r = &route{dir: dir}
			s.routes[slot(dir)] = r
		}
		prev := r.info
		if err = s.openRoute(ctx, r, sel); err != nil {
			return
		}
		r.want = sel
		s.emit(Event{Type: DeviceSwitched, Direction: dir, Device: r.info, Previous: prev, Reason: ReasonUser})
	})
	return errors.Join(derr, err)
}

// Poll scans the device list now (as the poll timer does), reporting
// changes and moving routes as needed.
func (s *Session) Poll(ctx context.Context) error {
	return s.do(ctx, func() { s.scan(ctx) })
}

// Current returns the device in use for dir; false when none (direction
// not opened, or broken and being retried).
func (s *Session) Current(dir Direction) (DeviceInfo, bool) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	return s.snap[slot(dir)], s.snapOK[slot(dir)]
}

// Latencier is implemented by devices that know their latency: for
// playback, from the callback filling a period to the period leaving the
// speaker; for capture, from the sound reaching the microphone to the
// callback receiving it.
type Latencier interface {
	Latency() time.Duration
}

// deviceLatency is d's reported latency, or its period when it reports
// none (a period is the least any device buffers).
func deviceLatency(d Device) time.Duration {
	if l, ok := d.(Latencier); ok {
		return l.Latency()
	}
	return d.Period()
}

// Latency returns how long a sample takes from the playback callback to
// the capture callback through the devices in use: the playback device's
// latency plus the capture device's ([Latencier], or a period for a
// device that reports none). An echo canceller aligns its reference by it.
func (s *Session) Latency() time.Duration {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	var d time.Duration
	for i, ok := range s.snapOK {
		if ok {
			d += s.latency[i]
		}
	}
	return d
}

func (s *Session) snapshot(dir Direction) string {
	if d, ok := s.Current(dir); ok {
		return d.String()
	}
	return "none"
}

// Devices lists the backend's devices now.
func (s *Session) Devices(ctx context.Context) ([]DeviceInfo, error) {
	return s.backend.Devices(ctx)
}

// Backend returns the backend the session uses.
func (s *Session) Backend() Backend { return s.backend }

// Period returns the callback period.
func (s *Session) Period() time.Duration { return s.period }

// Events returns the session's events. Every event is delivered, in order;
// the queue is unbounded so a slow reader never stalls the session (let
// alone the audio clock). The channel is closed by Close; events not yet
// read by then are discarded.
func (s *Session) Events() <-chan Event { return s.events.Out() }

// Close stops and closes the devices, stops the event queue and, when the
// session created it, closes the backend. No callback runs after Close
// returns.
func (s *Session) Close() error {
	var err error
	s.closeMu.Do(func() {
		s.cancel()
		<-s.done
		s.events.Abandon()
		s.notes.Abandon()
		s.snapMu.Lock()
		s.snapOK = [2]bool{}
		s.snapMu.Unlock()
		if s.ownBackend {
			err = s.backend.Close()
		}
	})
	return err
}
