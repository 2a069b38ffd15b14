package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/dialtone-dev/dialtone/audio"
	"github.com/dialtone-dev/dialtone/media"
	"github.com/dialtone-dev/dialtone/media/pcm"
)

// sound is the dialer's sound system: virtual devices for files and tones,
// the system's devices for the rest, and level meters on both directions.
type sound struct {
	backend audio.Backend // what the phone opens devices on
	meter   *meter
	parts   []audio.Backend
	sink    *media.WAVSink // -out, closed last so its header is right

	mu    sync.Mutex
	input string // ID of the input device chosen with nextInput
}

// openAudio builds the sound system the options ask for. A file or tone
// replaces the system default of its direction but the system's devices
// stay listed (and reachable with the d key).
func openAudio(ctx context.Context, o audioOptions, log *slog.Logger) (*sound, error) {
	s := &sound{meter: &meter{}}
	s.meter.mic.Store(math.Float64bits(media.SilenceDBov))
	s.meter.speaker.Store(math.Float64bits(media.SilenceDBov))
	var virtual []audio.VirtualDevice
	switch {
	case o.in != "":
		w, err := media.OpenWAV(o.in)
		if err != nil {
			return nil, fmt.Errorf("-in: %w", err)
		}
		src := pcm.NewPlayer(w.Samples)
		src.SetLoop(o.loop)
		virtual = append(virtual, audio.VirtualDevice{ID: "file-in", Name: "file " + o.in, Direction: audio.Capture, Default: true, Source: src})
	case o.tone != 0:
		tone := media.NewTone(media.ToneSpec{Frequencies: []float64{o.tone}, Level: -12})
		virtual = append(virtual, audio.VirtualDevice{ID: "tone", Name: fmt.Sprintf("%g Hz tone", o.tone), Direction: audio.Capture, Default: true, Source: tone})
	}
	if o.out != "" {
		sink, err := media.CreateWAV(o.out)
		if err != nil {
			return nil, fmt.Errorf("-out: %w", err)
		}
		s.sink = sink
		virtual = append(virtual, audio.VirtualDevice{ID: "file-out", Name: "file " + o.out, Direction: audio.Playback, Default: true, Sink: sink})
	}
	if len(virtual) > 0 {
		s.parts = append(s.parts, audio.NewVirtualBackend(audio.VirtualBackendConfig{Devices: virtual, Logger: log}))
	}
	if len(virtual) < 2 {
		sys, err := audio.NewBackend(ctx, audio.Kind(o.kind), log)
		if err != nil {
			_ = s.Close()
			return nil, err
		}
		s.parts = append(s.parts, sys)
	}
	s.backend = &meteredBackend{Backend: &mergedBackend{parts: s.parts}, meter: s.meter}
	return s, nil
}

// nextInput returns the capture device after the one in use, in the order
// Devices lists them, wrapping around.
func (s *sound) nextInput(ctx context.Context) (audio.DeviceInfo, error) {
	list, err := s.backend.Devices(ctx)
	if err != nil {
		return audio.DeviceInfo{}, err
	}
	var inputs []audio.DeviceInfo
	for _, d := range list {
		if d.Direction&audio.Capture != 0 {
			inputs = append(inputs, d)
		}
	}
	if len(inputs) == 0 {
		return audio.DeviceInfo{}, audio.ErrNoDevice
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := slices.IndexFunc(inputs, func(d audio.DeviceInfo) bool { return d.ID == s.input })
	if cur < 0 {
		cur = slices.IndexFunc(inputs, func(d audio.DeviceInfo) bool { return d.Default })
	}
	next := inputs[(cur+1)%len(inputs)]
	s.input = next.ID
	return next, nil
}

// Close closes the backends, then the output file. The phone must be
// closed first (its calls release their devices in Close).
func (s *sound) Close() error {
	var errs []error
	for _, b := range s.parts {
		errs = append(errs, b.Close())
	}
	if s.sink != nil {
		errs = append(errs, s.sink.Close())
	}
	return errors.Join(errs...)
}

// mergedBackend offers the devices of several backends as one. Per
// direction the default is the first part's that has one, so a file or
// tone device put first overrides the system default.
type mergedBackend struct {
	parts []audio.Backend
}

func (m *mergedBackend) Name() string {
	names := ""
	for i, b := range m.parts {
		if i > 0 {
			names += "+"
		}
		names += b.Name()
	}
	return names
}

func (m *mergedBackend) Devices(ctx context.Context) ([]audio.DeviceInfo, error) {
	list, _, err := m.devices(ctx)
	return list, err
}

// devices lists every part's devices and, beside each, the part it
// belongs to.
func (m *mergedBackend) devices(ctx context.Context) ([]audio.DeviceInfo, []audio.Backend, error) {
	var list []audio.DeviceInfo
	var owner []audio.Backend
	var hasDefault audio.Direction
	for _, b := range m.parts {
		ds, err := b.Devices(ctx)
		if err != nil {
			return nil, nil, err
		}
		var found audio.Direction
		for _, d := range ds {
			if d.Default {
				if d.Direction&hasDefault != 0 {
					d.Default = false
				} else {
					found |= d.Direction
				}
			}
			list = append(list, d)
			owner = append(owner, b)
		}
		hasDefault |= found
	}
	return list, owner, nil
}

func (m *mergedBackend) Open(ctx context.Context, cfg audio.DeviceConfig) (audio.Device, error) {
	list, owner, err := m.devices(ctx)
	if err != nil {
		return nil, err
	}
	info, err := audio.Find(list, cfg.Direction, cfg.Device)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(list, func(d audio.DeviceInfo) bool { return d == info })
	cfg.Device = info.ID
	return owner[i].Open(ctx, cfg)
}

func (m *mergedBackend) Close() error { return nil } // the parts are closed by their owner

// meter holds the latest level of each direction, in dBov.
type meter struct {
	mic, speaker atomic.Uint64 // math.Float64bits
}

func (m *meter) levels() (mic, speaker float64) {
	return math.Float64frombits(m.mic.Load()), math.Float64frombits(m.speaker.Load())
}

// meteredBackend measures the level of every period its devices capture or
// play.
type meteredBackend struct {
	audio.Backend
	meter *meter
}

func (b *meteredBackend) Open(ctx context.Context, cfg audio.DeviceConfig) (audio.Device, error) {
	d, err := b.Backend.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &meteredDevice{Device: d, meter: b.meter}, nil
}

type meteredDevice struct {
	audio.Device
	meter *meter
}

func (d *meteredDevice) Start(cb audio.Callbacks) error {
	if capture := cb.Capture; capture != nil {
		cb.Capture = func(pcm []int16) {
			d.meter.mic.Store(math.Float64bits(media.LevelDBov(pcm)))
			capture(pcm)
		}
	}
	if playback := cb.Playback; playback != nil {
		cb.Playback = func(out []int16) {
			playback(out)
			d.meter.speaker.Store(math.Float64bits(media.LevelDBov(out)))
		}
	}
	return d.Device.Start(cb)
}
