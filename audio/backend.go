package audio

import (
	"context"
	"fmt"
	"log/slog"
)

// Kind selects a backend for [NewBackend] and [Config].
type Kind string

const (
	// KindAuto picks the best backend available: malgo on the system's
	// sound devices; malgo's null backend when the system has no usable
	// device (headless machine); the virtual backend when cgo is off or
	// miniaudio cannot start at all. The choice is logged.
	KindAuto Kind = ""
	// KindMalgo is malgo on the system's sound devices, without fallback:
	// the first of miniaudio's system backends that initialises
	// (PulseAudio, then ALSA, then JACK on Linux), which names the
	// backend ("pulseaudio", "alsa", ...).
	KindMalgo Kind = "malgo"
	// KindNull is malgo's null backend: real-time callbacks, captures
	// silence, plays nowhere. Needs cgo.
	KindNull Kind = "null"
	// KindVirtual is a default [VirtualBackend] on the system clock.
	KindVirtual Kind = "virtual"
)

// MalgoAvailable reports whether this build includes the malgo backends (cgo).
func MalgoAvailable() bool { return malgoAvailable }

// NewBackend opens the backend of the given kind. The logger (nil:
// discard) receives the choice KindAuto made and why.
func NewBackend(ctx context.Context, kind Kind, logger *slog.Logger) (Backend, error) {
	if logger == nil {
		logger = discardLogger()
	}
	switch kind {
	case KindVirtual:
		return NewVirtualBackend(VirtualBackendConfig{Logger: logger}), nil
	case KindMalgo, KindNull:
		return newMalgoBackend(ctx, kind, logger)
	case KindAuto:
		if malgoAvailable {
			b, err := newMalgoBackend(ctx, KindAuto, logger)
			if err == nil {
				return b, nil
			}
			logger.Warn("audio: miniaudio unavailable, using the virtual backend (silent capture, discarded playback)", "err", err)
		} else {
			logger.Info("audio: built without cgo, using the virtual backend (silent capture, discarded playback)")
		}
		return NewVirtualBackend(VirtualBackendConfig{Logger: logger}), nil
	}
	return nil, fmt.Errorf("%w: unknown kind %q", ErrUnavailable, kind)
}
