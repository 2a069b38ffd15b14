//go:build cgo

package audio

// #include <stdlib.h>
import "C"

import (
	"context"
	"fmt"
	"log/slog"
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

// malgoBackend is a Backend on one miniaudio context.
type malgoBackend struct {
	name string
	ctx  *malgo.AllocatedContext
	log  *slog.Logger

	mu     sync.Mutex
	open   int
	closed bool
}

func newMalgoBackend(ctx context.Context, kind Kind, log *slog.Logger) (Backend, error) {
	switch kind {
	case KindNull:
		return initMalgo("null", []malgo.Backend{maBackendNull}, log)
	case KindMalgo:
		return initMalgo("malgo", nil, log)
	}
	// KindAuto: the system backends, but only if a default device of each
	// direction really opens; a headless machine has ALSA with no card,
	// where init succeeds and every open fails.
	b, err := initMalgo("malgo", nil, log)
	if err == nil {
		if err = b.probe(); err == nil {
			log.Info("audio: using miniaudio system backend")
			return b, nil
		}
		_ = b.Close()
	}
	log.Warn("audio: no usable sound device; using miniaudio's null backend (real-time clock, silent capture, discarded playback)", "err", err)
	return initMalgo("null", []malgo.Backend{maBackendNull}, log)
}

func initMalgo(name string, backends []malgo.Backend, log *slog.Logger) (*malgoBackend, error) {
	b := &malgoBackend{name: name, log: log}
	c, err := malgo.InitContext(backends, malgo.ContextConfig{}, func(msg string) {
		b.log.Debug("audio: miniaudio", "msg", msg)
	})
	if err != nil {
		return nil, fmt.Errorf("%w: miniaudio %s context: %w", ErrUnavailable, name, err)
	}
	b.ctx = c
	return b, nil
}

// probe opens (without starting) the default capture and playback device.
func (b *malgoBackend) probe() error {
	for _, k := range []struct {
		t    malgo.DeviceType
		name string
	}{{malgo.Capture, "capture"}, {malgo.Playback, "playback"}} {
		t := k.t
		cfg := b.deviceConfig(t, nil, DefaultPeriod)
		d, err := malgo.InitDevice(b.ctx.Context, cfg, malgo.DeviceCallbacks{})
		if err != nil {
			return fmt.Errorf("open default %s device: %w", k.name, err)
		}
		d.Uninit()
	}
	return nil
}

func (b *malgoBackend) Name() string { return b.name }

func (b *malgoBackend) devices() ([]DeviceInfo, map[string]malgo.DeviceID, error) {
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
		list, err := b.ctx.Devices(k.t)
		if err != nil {
			return nil, nil, fmt.Errorf("audio: enumerate %s devices: %w", k.dir, err)
		}
		for i := range list {
			d := &list[i]
			id := d.ID.String()
			ids[k.dir.String()+id] = d.ID
			out = append(out, DeviceInfo{ID: id, Name: d.Name(), Direction: k.dir, Default: d.IsDefault != 0, Backend: b.name})
		}
	}
	return out, ids, nil
}

func (b *malgoBackend) Devices(ctx context.Context) ([]DeviceInfo, error) {
	list, _, err := b.devices()
	return list, err
}

func (b *malgoBackend) deviceConfig(t malgo.DeviceType, id unsafe.Pointer, period time.Duration) malgo.DeviceConfig {
	cfg := malgo.DefaultDeviceConfig(t)
	cfg.SampleRate = SampleRate
	cfg.PeriodSizeInFrames = uint32(Samples(period))
	cfg.Periods = 2
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
	list, ids, err := b.devices()
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
	d := &malgoDevice{b: b, info: info, period: period, n: Samples(period), idPtr: idPtr, stopState: newStopState()}
	dev, err := malgo.InitDevice(b.ctx.Context, b.deviceConfig(t, idPtr, period), malgo.DeviceCallbacks{
		Data: d.data,
		Stop: d.stopped,
	})
	if err != nil {
		if idPtr != nil {
			C.free(idPtr)
		}
		return nil, fmt.Errorf("audio: open %s: %w", info, err)
	}
	d.dev = dev
	b.mu.Lock()
	b.open++
	b.mu.Unlock()
	return d, nil
}

func (b *malgoBackend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	open := b.open
	b.mu.Unlock()
	if open > 0 {
		b.log.Warn("audio: closing miniaudio backend with devices still open", "open", open)
	}
	err := b.ctx.Uninit()
	b.ctx.Free()
	return err
}

// malgoDevice is one miniaudio device (capture or playback). miniaudio is
// configured for fixed-size callbacks of exactly one period, but the data
// callback reframes anyway, so a backend that ignores the request still
// yields whole periods.
type malgoDevice struct {
	b      *malgoBackend
	dev    *malgo.Device
	info   DeviceInfo
	period time.Duration
	n      int
	idPtr  unsafe.Pointer

	stopState
	cb      Callbacks
	mu      sync.Mutex
	started bool
	closed  bool
	closing atomic.Bool

	// Touched only by miniaudio's audio thread.
	buf  []int16
	fill int // capture: samples gathered in buf; playback: samples of buf already played
}

func (d *malgoDevice) Info() DeviceInfo      { return d.info }
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
	if err := d.dev.Start(); err != nil {
		return fmt.Errorf("audio: start %s: %w", d.info, err)
	}
	return nil
}

// data runs on miniaudio's thread. The byte slices are views of C memory,
// valid only during the call: samples are copied in and out of d.buf.
func (d *malgoDevice) data(out, in []byte, frames uint32) {
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

// stopped runs when miniaudio stops the device; unless we asked for it,
// that is an interruption (device lost, driver error).
func (d *malgoDevice) stopped() {
	if d.closing.Load() {
		return
	}
	d.finish(fmt.Errorf("%w: %s stopped", ErrInterrupted, d.info))
}

func (d *malgoDevice) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.closing.Store(true)
	d.dev.Uninit() // stops the device and waits for its thread
	if d.idPtr != nil {
		C.free(d.idPtr)
	}
	d.finish(nil)
	d.b.mu.Lock()
	d.b.open--
	d.b.mu.Unlock()
	return nil
}
