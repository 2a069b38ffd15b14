package audio

import (
	"fmt"
	"time"
)

const (
	// SampleRate is the only sample rate inside dialtone, in Hz.
	SampleRate = 48000
	// Channels is the channel count inside dialtone (mono).
	Channels = 1
	// DefaultPeriod is the device period used when a configuration leaves it zero.
	DefaultPeriod = 10 * time.Millisecond
	// MaxPeriod is the longest period accepted.
	MaxPeriod = 120 * time.Millisecond
)

// Samples returns the number of samples (= frames, mono) in one period of
// length d at [SampleRate].
func Samples(d time.Duration) int {
	return int(int64(d) * SampleRate / int64(time.Second))
}

// checkPeriod applies the default and validates a period: whole
// milliseconds between 1 ms and [MaxPeriod].
func checkPeriod(d time.Duration) (time.Duration, error) {
	if d == 0 {
		return DefaultPeriod, nil
	}
	if d < time.Millisecond || d > MaxPeriod || d%time.Millisecond != 0 {
		return 0, fmt.Errorf("%w: period %v (want whole milliseconds, 1ms..%v)", ErrFormat, d, MaxPeriod)
	}
	return d, nil
}

// Callbacks is what a device drives from its clock. Either may be nil.
type Callbacks struct {
	// Capture receives one period of captured PCM. The slice is valid only
	// during the call: copy what you keep.
	Capture func(pcm []int16)
	// Playback fills out (one period) with PCM to play. out arrives zeroed;
	// leaving it untouched plays silence.
	Playback func(out []int16)
	// Notify receives the sound server's notices about the device while it
	// runs: ReasonRerouted (the server moved the stream to another
	// device), ReasonSuspended and ReasonResumed. It is called from the
	// backend's threads and must return quickly. Backends without such
	// notices (virtual, null) never call it.
	Notify func(Reason)
}

// Direction says which way audio flows through a device.
type Direction uint8

const (
	// Capture is an input device (microphone).
	Capture Direction = 1 << iota
	// Playback is an output device (speaker).
	Playback
	// Duplex is a device opened for both directions at once (virtual devices only).
	Duplex = Capture | Playback
)

// String returns "capture", "playback" or "duplex".
func (d Direction) String() string {
	switch d {
	case Capture:
		return "capture"
	case Playback:
		return "playback"
	case Duplex:
		return "duplex"
	}
	return fmt.Sprintf("direction(%d)", uint8(d))
}

// DeviceInfo describes one device as a backend lists it.
type DeviceInfo struct {
	// ID identifies the device within its backend; stable across polls
	// for as long as the device exists. For malgo it is the hex form of
	// miniaudio's device ID.
	ID string
	// Name is the human-readable name.
	Name string
	// Direction is Capture or Playback.
	Direction Direction
	// Default reports whether the system marks it as the default device.
	Default bool
	// Backend names the backend that listed it ("alsa", "null", "virtual", ...).
	Backend string
}

// String returns a short description for logs.
func (i DeviceInfo) String() string {
	def := ""
	if i.Default {
		def = " (default)"
	}
	return fmt.Sprintf("%s %s %q [%s]%s", i.Backend, i.Direction, i.Name, i.ID, def)
}
