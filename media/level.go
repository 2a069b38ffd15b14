package media

import (
	"math"
	"time"
)

// SilenceDBov is the level reported for digital silence (the RFC 6464 floor).
const SilenceDBov = -127.0

// LevelDBov returns the RMS level of pcm in dBov: 0 dBov is a full-scale
// square wave, a full-scale sine is −3 dBov; silence is [SilenceDBov].
func LevelDBov(pcm []int16) float64 {
	if len(pcm) == 0 {
		return SilenceDBov
	}
	var sum float64
	for _, s := range pcm {
		v := float64(s)
		sum += v * v
	}
	if sum == 0 {
		return SilenceDBov
	}
	db := 10 * math.Log10(sum/float64(len(pcm))/(32768.0*32768.0))
	return math.Max(db, SilenceDBov)
}

// VoiceEvent reports a change of voice activity, like Janus AudioBridge's
// "talking" / "stopped-talking".
type VoiceEvent struct {
	// Talking is true for "started talking" and false for "stopped talking".
	Talking bool
	// Level is the frame level in dBov when the change was detected.
	Level float64
	// At is the position in the stream (time of audio processed so far).
	At time.Duration
}

// VADConfig configures the energy-based voice activity detector. The zero
// value gives the defaults.
type VADConfig struct {
	// Threshold is the lowest level in dBov that can count as voice
	// (default −50 dBov).
	Threshold float64
	// Margin is how far above the tracked noise floor a frame must be to
	// count as voice (default 9 dB).
	Margin float64
	// Onset is how long voice must last before "talking" (default 40 ms).
	Onset time.Duration
	// Hangover is how long silence must last before "stopped talking"
	// (default 400 ms).
	Hangover time.Duration
}

func (c VADConfig) withDefaults() VADConfig {
	if c.Threshold == 0 {
		c.Threshold = -50
	}
	if c.Margin == 0 {
		c.Margin = 9
	}
	if c.Onset == 0 {
		c.Onset = 40 * time.Millisecond
	}
	if c.Hangover == 0 {
		c.Hangover = 400 * time.Millisecond
	}
	return c
}

// VAD is a voice activity detector with onset and hangover, fed one frame at
// a time. It is not safe for concurrent use.
type VAD struct {
	cfg     VADConfig
	noise   float64 // tracked noise floor, dBov
	talking bool
	voiced  time.Duration // voice in a row
	quiet   time.Duration // non-voice in a row
	at      time.Duration
}

// NewVAD returns a detector.
func NewVAD(cfg VADConfig) *VAD {
	return &VAD{cfg: cfg.withDefaults(), noise: -70}
}

// Talking reports the current state.
func (v *VAD) Talking() bool { return v.talking }

// Process takes one frame with its level (from LevelDBov) and returns an
// event and true when the state changes.
func (v *VAD) Process(level float64, frame time.Duration) (VoiceEvent, bool) {
	v.at += frame
	// The noise floor follows quiet frames quickly and loud ones very slowly,
	// so a steady background does not read as voice.
	if level < v.noise {
		v.noise += (level - v.noise) * 0.2
	} else {
		v.noise += (level - v.noise) * 0.002
	}
	v.noise = math.Max(v.noise, -90)
	voice := level >= v.cfg.Threshold && level >= v.noise+v.cfg.Margin
	if voice {
		v.voiced += frame
		v.quiet = 0
	} else {
		v.quiet += frame
		v.voiced = 0
	}
	switch {
	case !v.talking && v.voiced >= v.cfg.Onset:
		v.talking = true
		return VoiceEvent{Talking: true, Level: level, At: v.at}, true
	case v.talking && v.quiet >= v.cfg.Hangover:
		v.talking = false
		return VoiceEvent{Talking: false, Level: level, At: v.at}, true
	}
	return VoiceEvent{}, false
}
