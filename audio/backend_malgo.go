//go:build cgo

package audio

// #include <stdint.h>
// #include <stdlib.h>
// void dialtone_ma_notification(const void* p);
// void dialtone_alsa_quiet(void);
// int dialtone_thread_realtime(int prio);
import "C"

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gen2brain/malgo"
)

const malgoAvailable = true

// maBackendNull is miniaudio's ma_backend_null. malgo's own BackendNull
// constant (13) predates ma_backend_custom, which miniaudio inserted just
// before ma_backend_null: passing 13 selects the custom backend and
// ma_context_init fails with "No backend". The null backend is the next
// value, 14 (TestMalgoNullBackendConstant checks both facts).
const maBackendNull = malgo.Backend(malgo.BackendNull + 1)

// callLimit bounds every call into miniaudio that can block: opening a
// device or a context, starting, stopping and closing a device, listing
// devices. Each can wait on the sound server, and a server that died or
// hangs, or a stream it killed, would otherwise block the caller for ever.
const callLimit = 3 * time.Second

// stallLimit is how long a started device may go without a callback,
// while the sound server has not suspended it, before it counts as
// interrupted: miniaudio reports no error when the server kills a stream
// (its sink unloaded) or goes away, the callbacks just stop.
const stallLimit = 1500 * time.Millisecond

// malgoPeriods is the number of periods miniaudio is asked to buffer.
const malgoPeriods = 2

// watchEvery is the period of a device's watchdog.
const watchEvery = 100 * time.Millisecond

// miniaudio's ma_device_notification_type values.
const (
	maNotifyStarted = iota
	maNotifyStopped
	maNotifyRerouted
	maNotifyInterruptionBegan
	maNotifyInterruptionEnded
)

// malgoBackend is a Backend on a miniaudio context of one miniaudio
// backend. When listing devices fails (the sound server restarted, say)
// it opens a new context on the same backend and retires the old one,
// which is released with the backend.
//
// A context is freed only once nothing uses it: every device opened on it
// and every miniaudio call on it (an abandoned one too) holds the backend
// (hold, drop), and a Close while something holds it leaves the freeing
// to the last drop. miniaudio's devices read their context until their
// uninit returns.
type malgoBackend struct {
	name    string // the miniaudio backend's: "pulseaudio", "alsa", "null", ...
	backend malgo.Backend
	log     *slog.Logger

	mu      sync.Mutex
	ctx     *malgo.AllocatedContext
	retired []*malgo.AllocatedContext
	holds   int  // devices open and miniaudio calls under way on the contexts
	devs    int  // of which devices
	closed  bool // Close was called
	freed   bool // the contexts are freed
}

// hold marks a use of the backend's contexts, and reports false (no use
// marked) once the backend is closed; drop ends a use, and frees the
// contexts when the backend is closed and this was the last use.
func (b *malgoBackend) hold() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.holds++
	return true
}

func (b *malgoBackend) drop() {
	b.mu.Lock()
	b.holds--
	free := b.closed && b.holds == 0 && !b.freed
	if free {
		b.freed = true
	}
	b.mu.Unlock()
	if free {
		if err := b.freeContexts(); err != nil {
			b.log.Warn("audio: miniaudio context release", "err", err)
		}
	}
}

// held runs fn, a miniaudio call on the backend's contexts, holding the
// backend for as long as fn runs (past an abandoned bounded call).
func held[T any](b *malgoBackend, fn func() (T, error)) func() (T, error) {
	if !b.hold() {
		return func() (T, error) {
			var zero T
			return zero, ErrClosed
		}
	}
	return func() (T, error) {
		defer b.drop()
		return fn()
	}
}

// systemBackends are miniaudio's system backends in miniaudio's own order
// of preference; those not built for this platform fail at once.
var systemBackends = []struct {
	b    malgo.Backend
	name string
}{
	{malgo.BackendWasapi, "wasapi"}, {malgo.BackendDsound, "dsound"}, {malgo.BackendWinmm, "winmm"},
	{malgo.BackendCoreaudio, "coreaudio"}, {malgo.BackendSndio, "sndio"}, {malgo.BackendAudio4, "audio4"},
	{malgo.BackendOss, "oss"}, {malgo.BackendPulseaudio, "pulseaudio"}, {malgo.BackendAlsa, "alsa"},
	{malgo.BackendJack, "jack"}, {malgo.BackendAaudio, "aaudio"}, {malgo.BackendOpensl, "opensl"},
}

func newMalgoBackend(ctx context.Context, kind Kind, log *slog.Logger) (Backend, error) {
	if kind == KindNull {
		return initMalgo("null", maBackendNull, log)
	}
	b, err := initSystem(log)
	if kind == KindMalgo {
		if err != nil {
			return nil, err
		}
		return b, nil
	}
	// KindAuto: the system backend, but only if a default device of each
	// direction really opens; a headless machine has ALSA with no card,
	// where init succeeds and every open fails.
	if err == nil {
		if err = b.probe(); err == nil {
			log.Info("audio: using miniaudio system backend", "backend", b.name)
			return b, nil
		}
		_ = b.Close()
	}
	log.Warn("audio: no usable sound device; using miniaudio's null backend (real-time clock, silent capture, discarded playback)", "err", err)
	return initMalgo("null", maBackendNull, log)
}

// initSystem opens the first system backend whose context initialises.
// Each is tried alone, so the backend knows which one it runs on, and
// reopens that one after its sound server restarts.
func initSystem(log *slog.Logger) (*malgoBackend, error) {
	var errs []error
	for _, sb := range systemBackends {
		b, err := initMalgo(sb.name, sb.b, log)
		if err == nil {
			return b, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("%w: no miniaudio system backend: %w", ErrUnavailable, errors.Join(errs...))
}

func initMalgo(name string, backend malgo.Backend, log *slog.Logger) (*malgoBackend, error) {
	b := &malgoBackend{name: name, backend: backend, log: log}
	c, err := b.newContext(context.Background())
	if err != nil {
		return nil, err
	}
	b.ctx = c
	return b, nil
}

// newContext opens a miniaudio context on b's backends. libasound's own
// error messages are silenced first: without a sound card, ALSA writes
// some twenty lines to stderr while miniaudio probes it, and miniaudio
// reports the same failures through its log, which goes to b.log. The
// handler is libasound's, process-wide: it stays silent for every user of
// ALSA in the process.
func (b *malgoBackend) newContext(ctx context.Context) (*malgo.AllocatedContext, error) {
	C.dialtone_alsa_quiet()
	log := b.log
	c, err := bounded(ctx, "open context", func() (*malgo.AllocatedContext, error) {
		return malgo.InitContext([]malgo.Backend{b.backend}, malgo.ContextConfig{}, func(msg string) {
			log.Debug("audio: miniaudio", "msg", msg)
		})
	}, func(c *malgo.AllocatedContext, err error) {
		if err == nil {
			_ = c.Uninit()
			c.Free()
		}
	})
	if err != nil {
		return nil, fmt.Errorf("%w: miniaudio %s context: %w", ErrUnavailable, b.name, err)
	}
	return c, nil
}

// bounded runs fn, a call into miniaudio that may block on the sound
// server, and waits for it at most callLimit or until ctx ends. A call
// that does not return in time is abandoned to its goroutine, which hands
// the result to release if the call ever returns (to free what it
// opened); the caller gets ErrTimeout, or ctx's error.
func bounded[T any](ctx context.Context, what string, fn func() (T, error), release func(T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	// Whoever flips taken first owns the result: the caller if it gives
	// up before the call returns, else the caller reads it from done.
	var taken atomic.Bool
	done := make(chan result, 1)
	go func() {
		v, err := fn()
		done <- result{v, err}
		if !taken.CompareAndSwap(false, true) && release != nil {
			release(v, err)
		}
	}()
	timer := time.NewTimer(callLimit)
	defer timer.Stop()
	var zero T
	var gaveUp error
	select {
	case r := <-done:
		return r.v, r.err
	case <-timer.C:
		gaveUp = fmt.Errorf("%w: %s took over %v", ErrTimeout, what, callLimit)
	case <-ctx.Done():
		gaveUp = fmt.Errorf("audio: %s: %w", what, ctx.Err())
	}
	if taken.CompareAndSwap(false, true) {
		return zero, gaveUp
	}
	r := <-done // returned meanwhile
	return r.v, r.err
}

// deviceID is the ID a device is listed and selected by: the backend's
// own name for it when that is text (PulseAudio's "spk.monitor", ALSA's
// "hw:0,0"), else malgo's hex rendering of miniaudio's ID bytes (the null
// backend's numeric IDs).
func deviceID(id malgo.DeviceID) string {
	n := bytes.IndexByte(id[:], 0)
	if n <= 0 {
		return id.String()
	}
	for _, c := range id[:n] {
		if c < 0x20 || c > 0x7e {
			return id.String()
		}
	}
	return string(id[:n])
}

// probe opens (without starting) the default capture and playback device.
func (b *malgoBackend) probe() error {
	ctx := b.context()
	for _, k := range []struct {
		t    malgo.DeviceType
		name string
	}{{malgo.Capture, "capture"}, {malgo.Playback, "playback"}} {
		cfg := b.deviceConfig(k.t, nil, DefaultPeriod)
		_, err := bounded(context.Background(), "probe "+k.name, held(b, func() (struct{}, error) {
			d, err := malgo.InitDevice(ctx.Context, cfg, malgo.DeviceCallbacks{})
			if err != nil {
				return struct{}{}, err
			}
			d.Uninit()
			return struct{}{}, nil
		}), nil)
		if err != nil {
			return fmt.Errorf("open default %s device: %w", k.name, err)
		}
	}
	return nil
}

func (b *malgoBackend) Name() string { return b.name }

// context returns the current miniaudio context.
func (b *malgoBackend) context() *malgo.AllocatedContext {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ctx
}

// devices lists the devices; when that fails on the current context, it
// opens a new one (the sound server may have restarted) and lists again.
func (b *malgoBackend) devices(ctx context.Context) ([]DeviceInfo, map[string]malgo.DeviceID, error) {
	out, ids, err := b.list(ctx, b.context())
	if err == nil || errors.Is(err, ErrClosed) || ctx.Err() != nil {
		return out, ids, err
	}
	c, cerr := b.newContext(ctx)
	if cerr != nil {
		return nil, nil, errors.Join(err, cerr)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		_ = c.Uninit()
		c.Free()
		return nil, nil, ErrClosed
	}
	// Devices opened on the old context may still be closing: it is
	// released with the backend.
	b.retired = append(b.retired, b.ctx)
	b.ctx = c
	b.mu.Unlock()
	b.log.Info("audio: reopened the miniaudio context after a failed device list", "err", err)
	return b.list(ctx, c)
}

func (b *malgoBackend) list(ctx context.Context, c *malgo.AllocatedContext) ([]DeviceInfo, map[string]malgo.DeviceID, error) {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return nil, nil, ErrClosed
	}
	var out []DeviceInfo
	ids := map[string]malgo.DeviceID{}
	for _, k := range []struct {
		t   malgo.DeviceType
		dir Direction
	}{{malgo.Capture, Capture}, {malgo.Playback, Playback}} {
		list, err := bounded(ctx, "list devices", held(b, func() ([]malgo.DeviceInfo, error) { return c.Devices(k.t) }), nil)
		if err != nil {
			return nil, nil, fmt.Errorf("audio: enumerate %s devices: %w", k.dir, err)
		}
		for i := range list {
			d := &list[i]
			id := deviceID(d.ID)
			ids[k.dir.String()+id] = d.ID
			out = append(out, DeviceInfo{ID: id, Name: d.Name(), Direction: k.dir, Default: d.IsDefault != 0, Backend: b.name})
		}
	}
	return out, ids, nil
}

func (b *malgoBackend) Devices(ctx context.Context) ([]DeviceInfo, error) {
	list, _, err := b.devices(ctx)
	return list, err
}

func (b *malgoBackend) deviceConfig(t malgo.DeviceType, id unsafe.Pointer, period time.Duration) malgo.DeviceConfig {
	cfg := malgo.DefaultDeviceConfig(t)
	cfg.SampleRate = SampleRate
	cfg.PeriodSizeInFrames = uint32(Samples(period))
	cfg.Periods = malgoPeriods
	cfg.PerformanceProfile = malgo.LowLatency
	cfg.Capture.Format, cfg.Capture.Channels = malgo.FormatS16, Channels
	cfg.Playback.Format, cfg.Playback.Channels = malgo.FormatS16, Channels
	if t == malgo.Capture {
		cfg.Capture.DeviceID = id
	} else {
		cfg.Playback.DeviceID = id
	}
	return cfg
}

func (b *malgoBackend) Open(ctx context.Context, cfg DeviceConfig) (Device, error) {
	period, err := checkPeriod(cfg.Period)
	if err != nil {
		return nil, err
	}
	var t malgo.DeviceType
	switch cfg.Direction {
	case Capture:
		t = malgo.Capture
	case Playback:
		t = malgo.Playback
	default:
		return nil, fmt.Errorf("%w: malgo devices open one direction, not %v", ErrFormat, cfg.Direction)
	}
	list, ids, err := b.devices(ctx)
	if err != nil {
		return nil, err
	}
	info, ferr := Find(list, cfg.Direction, cfg.Device)
	var idPtr unsafe.Pointer // C memory; nil = system default
	if cfg.Device != "" {
		if ferr != nil {
			return nil, ferr
		}
		id := ids[cfg.Direction.String()+info.ID]
		idPtr = id.Pointer()
	} else if ferr != nil {
		// Nothing listed (some backends enumerate nothing): let miniaudio pick.
		info = DeviceInfo{ID: "default", Name: "default", Direction: cfg.Direction, Default: true, Backend: b.name}
	}
	d := &malgoDevice{b: b, info: info, period: period, n: Samples(period), idPtr: idPtr,
		stopState: newStopState(), epoch: time.Now(), unwatch: make(chan struct{}), watching: make(chan struct{})}
	// miniaudio hands the notification callback the device; its user data
	// leads back here through a handle, in C memory.
	d.handle = cgo.NewHandle(d)
	d.user = (*C.uintptr_t)(C.malloc(C.size_t(unsafe.Sizeof(C.uintptr_t(0)))))
	*d.user = C.uintptr_t(d.handle)
	dcfg := b.deviceConfig(t, idPtr, period)
	dcfg.NotificationCallback = (*[0]byte)(C.dialtone_ma_notification)
	dcfg.PUserData = (*byte)(unsafe.Pointer(d.user))
	mctx := b.context()
	// The device holds the backend from here until it is uninitialised.
	if !b.hold() {
		d.release()
		return nil, fmt.Errorf("audio: open %s: %w", info, ErrClosed)
	}
	dev, err := bounded(ctx, "open "+info.String(), func() (*malgo.Device, error) {
		return malgo.InitDevice(mctx.Context, dcfg, malgo.DeviceCallbacks{Data: d.data})
	}, func(dev *malgo.Device, err error) {
		if err == nil {
			dev.Uninit()
		}
		d.release()
		b.drop()
	})
	if err != nil {
		if !d.abandoned(err) {
			d.release()
			b.drop()
		}
		return nil, fmt.Errorf("audio: open %s: %w", info, err)
	}
	d.dev = dev
	b.mu.Lock()
	b.devs++
	b.mu.Unlock()
	return d, nil
}

// Close releases the backend's contexts, or, while devices are still
// open or miniaudio calls under way on them, leaves that to the last of
// them to end.
func (b *malgoBackend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	devs, holds := b.devs, b.holds
	free := holds == 0
	b.freed = free
	b.mu.Unlock()
	if devs > 0 {
		b.log.Warn("audio: miniaudio backend closed with devices still open: its context is released when they are closed", "open", devs)
	}
	if !free {
		return nil
	}
	return b.freeContexts()
}

// freeContexts uninitialises and frees every context of the backend.
func (b *malgoBackend) freeContexts() error {
	var errs []error
	for _, c := range append(b.retired, b.ctx) {
		_, err := bounded(context.Background(), "close context", func() (struct{}, error) {
			err := c.Uninit()
			c.Free()
			return struct{}{}, err
		}, nil)
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// malgoDevice is one miniaudio device (capture or playback). miniaudio is
// configured for fixed-size callbacks of exactly one period, but the data
// callback reframes anyway, so a backend that ignores the request still
// yields whole periods.
//
// Its watchdog goroutine (from Start to Close) turns what miniaudio does
// not report as an error into an interruption: the device's thread
// stopped (a "stopped" notification while miniaudio no longer counts the
// device as started), or no callback for stallLimit while the server has
// not suspended the device. A "stopped" notification while the device
// still counts as started is the server suspending it.
type malgoDevice struct {
	b      *malgoBackend
	dev    *malgo.Device
	info   DeviceInfo
	period time.Duration
	n      int
	idPtr  unsafe.Pointer
	handle cgo.Handle
	user   *C.uintptr_t // C memory holding handle: the device's pUserData
	epoch  time.Time

	stopState
	cb       Callbacks
	mu       sync.Mutex
	started  bool
	closed   bool
	closing  atomic.Bool
	unwatch  chan struct{} // closed by Close to stop the watchdog
	watching chan struct{} // closed when the watchdog has returned

	last      atomic.Int64 // time of the last data callback, ns since epoch
	lead      atomic.Int64 // playback: how far ahead of the clock the device asks, ns (see Latency)
	stopNote  atomic.Bool  // a "stopped" notification the watchdog has not judged yet
	suspended atomic.Bool

	// Touched only by miniaudio's audio thread.
	buf     []int16
	fill    int      // capture: samples gathered in buf; playback: samples of buf already played
	line    timeline // playback
	rtTried bool
}

//export dialtoneMalgoNotify
func dialtoneMalgoNotify(h C.uintptr_t, typ C.int) {
	if d, ok := cgo.Handle(h).Value().(*malgoDevice); ok {
		d.notified(int(typ))
	}
}

// abandoned reports whether err is a bounded call given up on: its
// goroutine then releases the device's C memory when the call returns.
func (d *malgoDevice) abandoned(err error) bool {
	return errors.Is(err, ErrTimeout) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// release frees the device's C memory and handle, once miniaudio is done
// with the device.
func (d *malgoDevice) release() {
	if d.idPtr != nil {
		C.free(d.idPtr)
	}
	C.free(unsafe.Pointer(d.user))
	d.handle.Delete()
}

func (d *malgoDevice) Info() DeviceInfo { return d.info }

// Latency implements [Latencier]. A playback device asks for audio ahead
// of playing it, by as much as its buffer holds: the most it has asked
// ahead of the wall clock (its timeline's least lag) is how long a
// callback's audio waits before it is heard; PulseAudio's first request,
// made while Start prefills the stream, already asks for the whole buffer
// (its tlength), so the figure is there when Start returns. Before any
// request it is the buffer miniaudio was asked for, the period times
// periods. A capture device hands over a period once the period's last
// sample has arrived: its first sample is a period old (miniaudio asks
// PulseAudio for fragments of a period).
func (d *malgoDevice) Latency() time.Duration {
	if d.info.Direction == Capture {
		return d.period
	}
	lead := time.Duration(d.lead.Load())
	if lead <= 0 {
		return d.period * malgoPeriods
	}
	return max(lead, d.period)
}

func (d *malgoDevice) Period() time.Duration { return d.period }

func (d *malgoDevice) Start(cb Callbacks) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	if d.started {
		return ErrStarted
	}
	d.started = true
	d.cb = cb
	d.buf = make([]int16, d.n)
	if d.info.Direction == Playback {
		d.fill = d.n // empty: the first callback asks for a period
	}
	d.last.Store(int64(time.Since(d.epoch)))
	if _, err := bounded(context.Background(), "start "+d.info.String(), func() (struct{}, error) {
		return struct{}{}, d.dev.Start()
	}, nil); err != nil {
		return fmt.Errorf("audio: start %s: %w", d.info, err)
	}
	go d.watch()
	return nil
}

// notified runs on a sound-server thread for each miniaudio notification.
func (d *malgoDevice) notified(typ int) {
	if d.closing.Load() {
		return
	}
	switch typ {
	case maNotifyStopped, maNotifyInterruptionBegan:
		d.stopNote.Store(true) // suspended or dead: the watchdog tells which
	case maNotifyStarted, maNotifyInterruptionEnded:
		d.stopNote.Store(false)
		d.last.Store(int64(time.Since(d.epoch)))
		if d.suspended.Swap(false) {
			d.notify(ReasonResumed)
		}
	case maNotifyRerouted:
		d.notify(ReasonRerouted)
	}
}

func (d *malgoDevice) notify(r Reason) {
	if d.cb.Notify != nil {
		d.cb.Notify(r)
	}
}

// watch is the device's watchdog (see malgoDevice).
func (d *malgoDevice) watch() {
	defer close(d.watching)
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		select {
		case <-d.unwatch:
			return
		case <-t.C:
		}
		if !d.dev.IsStarted() {
			d.finish(fmt.Errorf("%w: %s stopped", ErrInterrupted, d.info))
			return
		}
		if d.stopNote.Swap(false) && !d.suspended.Swap(true) {
			d.notify(ReasonSuspended)
		}
		idle := time.Since(d.epoch) - time.Duration(d.last.Load())
		if !d.suspended.Load() && idle > stallLimit {
			d.finish(fmt.Errorf("%w: %s: no audio for %v", ErrInterrupted, d.info, idle.Round(time.Millisecond)))
			return
		}
	}
}

// data runs on miniaudio's thread. The byte slices are views of C memory,
// valid only during the call: samples are copied in and out of d.buf.
func (d *malgoDevice) data(out, in []byte, frames uint32) {
	if !d.rtTried {
		d.rtTried = true
		d.realtime()
	}
	d.last.Store(int64(time.Since(d.epoch)))
	if in != nil && frames > 0 {
		src := unsafe.Slice((*int16)(unsafe.Pointer(unsafe.SliceData(in))), frames)
		for len(src) > 0 {
			k := copy(d.buf[d.fill:], src)
			d.fill += k
			src = src[k:]
			if d.fill == d.n {
				if d.cb.Capture != nil {
					d.cb.Capture(d.buf)
				}
				d.fill = 0
			}
		}
	}
	if out != nil && frames > 0 {
		// Periods the device lost in a stall are handed to the callback and
		// dropped, so its source stays on the device's clock (see timeline).
		if d.line.skip(time.Now(), int(frames), d.n) {
			clear(d.buf)
			if d.cb.Playback != nil {
				d.cb.Playback(d.buf)
			}
		}
		d.lead.Store(int64(-d.line.floor))
		dst := unsafe.Slice((*int16)(unsafe.Pointer(unsafe.SliceData(out))), frames)
		for len(dst) > 0 {
			if d.fill == d.n {
				clear(d.buf)
				if d.cb.Playback != nil {
					d.cb.Playback(d.buf)
				}
				d.fill = 0
			}
			k := copy(dst, d.buf[d.fill:])
			d.fill += k
			dst = dst[k:]
		}
	}
}

// realtimeBackend reports whether backend runs the data callbacks on
// miniaudio's own device thread, which takes a real-time priority; the
// others call back on the system's audio threads (already real-time) or,
// for the null backend, on a timer thread that must not compete with a
// loaded machine's work.
func realtimeBackend(backend string) bool { return backend == "pulseaudio" || backend == "alsa" }

// rtPriority is the device thread's SCHED_RR priority: just under
// PulseAudio's own threads (5), which must win when both are due.
const rtPriority = 4

// realtime puts the device's thread, on its first callback, in the
// real-time scheduling class, as desktop audio programs do (the sound
// server's own threads are there): on a loaded machine an ordinary thread
// waits tens of milliseconds for a core, longer than the sound server
// buffers, and every such stall is an underrun, a gap the far side hears,
// and a jump in the echo path that the echo canceller must find again.
// Without the right to (RLIMIT_RTPRIO, which distributions grant to the
// audio group, or root) the thread stays as it is.
func (d *malgoDevice) realtime() {
	if !realtimeBackend(d.b.name) {
		return
	}
	if e := C.dialtone_thread_realtime(rtPriority); e != 0 {
		d.b.log.Debug("audio: device thread stays in the normal scheduling class", "device", d.info, "errno", int(e))
	}
}

// Close stops the watchdog, then stops and releases the device, each
// miniaudio call bounded: a device whose stream the server killed, or
// whose server hangs, is abandoned after callLimit (its C memory is
// released if the calls ever return) and Close reports ErrTimeout.
//
// The explicit stop comes first because ma_device_uninit only flags the
// device's thread, which the PulseAudio backend parks in its main loop
// until the next server event: with a killed stream none comes, and
// uninit alone would wait for ever; stopping wakes the loop.
func (d *malgoDevice) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	started := d.started
	d.mu.Unlock()
	d.closing.Store(true)
	if started {
		close(d.unwatch)
		<-d.watching
	}
	_, err := bounded(context.Background(), "close "+d.info.String(), func() (struct{}, error) {
		if started {
			_ = d.dev.Stop()
		}
		d.dev.Uninit() // waits for the device's thread
		return struct{}{}, nil
	}, func(struct{}, error) { d.release(); d.b.drop() })
	if err == nil {
		d.release()
		d.b.drop()
	} else {
		d.b.log.Warn("audio: abandoned a device that would not close", "device", d.info, "err", err)
	}
	d.finish(nil)
	d.b.mu.Lock()
	d.b.devs--
	d.b.mu.Unlock()
	return err
}
