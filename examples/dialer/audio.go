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
	backend audio.Backend // what the phone opens devices on: all parts merged, metered
	meter   *meter
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
	var parts []audio.Backend
	if len(virtual) > 0 {
		parts = append(parts, audio.NewVirtualBackend(audio.VirtualBackendConfig{Devices: virtual, Logger: log}))
	}
	if len(virtual) < 2 {
		sys, err := audio.NewBackend(ctx, audio.Kind(o.kind), log)
		if err != nil {
			_ = audio.Merge(parts...).Close()
			_ = s.Close()
			return nil, err
		}
		parts = append(parts, sys)
	}
	s.backend = audio.Tap(audio.Merge(parts...), audio.Callbacks{
		Capture:  func(pcm []int16) { s.meter.mic.Store(math.Float64bits(media.LevelDBov(pcm))) },
		Playback: func(pcm []int16) { s.meter.speaker.Store(math.Float64bits(media.LevelDBov(pcm))) },
	})
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
	if s.backend != nil {
		errs = append(errs, s.backend.Close())
	}
	if s.sink != nil {
		errs = append(errs, s.sink.Close())
	}
	return errors.Join(errs...)
}

// meter holds the latest level of each direction, in dBov.
type meter struct {
	mic, speaker atomic.Uint64 // math.Float64bits
}

func (m *meter) levels() (mic, speaker float64) {
	return math.Float64frombits(m.mic.Load()), math.Float64frombits(m.speaker.Load())
}
