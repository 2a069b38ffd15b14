package apm

import (
	"math"
	"sync"
	"time"
)

// SampleRate is the rate of every frame a Processor handles, in Hz.
const SampleRate = 48000

// block is the library's processing unit: 10 ms.
const block = SampleRate / 100

func samplesOf(d time.Duration) int { return int(int64(d) * SampleRate / int64(time.Second)) }

// Config switches the parts of the processing. The zero value turns
// everything off; [Default] is what a sound card gets.
type Config struct {
	// EchoCancel removes the far end's voice, played by the speaker and
	// picked up by the microphone.
	EchoCancel bool
	// NoiseSuppress attenuates steady background noise (fans, hum).
	NoiseSuppress bool
	// GainControl brings a quiet or loud talker to a steady level.
	GainControl bool
	// HighPass removes rumble and DC below about 80 Hz.
	HighPass bool
}

// Default returns the configuration for a sound card: echo cancellation,
// noise suppression and the high-pass filter on, gain control off. The
// gain control raises what the echo canceller leaves along with a quiet
// talker: in a call through a sound server whose speaker feeds its own
// microphone (audio.TestPulseCallEcho), the far end heard its echo come
// back at −6 to −20 dB with it on, while the canceller reported 41 dB
// removed. Turn it on (Config.GainControl) for a talker far from the
// microphone where there is no speaker to echo.
func Default() Config {
	return Config{EchoCancel: true, NoiseSuppress: true, HighPass: true}
}

// Any reports whether any part is on.
func (c Config) Any() bool { return c.EchoCancel || c.NoiseSuppress || c.GainControl || c.HighPass }

// Stats is what a Processor reports.
type Stats struct {
	// Config is what is switched on.
	Config Config
	// Active reports that the processing runs: the build links the
	// library and some part is on.
	Active bool
	// ERLE is the echo canceller's echo return loss enhancement in dB: how
	// much quieter the echo leaves the processing than it entered it, a
	// long-term average. NaN while the echo canceller is off or has not
	// measured yet.
	ERLE float64
	// Delay is the render-to-capture delay the processing was told.
	Delay time.Duration
}

// engine is one library's processing of 10 ms blocks.
type engine interface {
	set(cfg Config) error
	render(frame []int16)
	capture(frame []int16, delay time.Duration)
	erle() float64
	close()
}

// Processor runs the microphone through the processing with the speaker's
// audio as the echo reference. Playback and Capture are called from the
// device callbacks (two threads on a sound card); the other methods from
// anywhere. All methods are safe for concurrent use; each holds a lock
// only for the length of one library call.
type Processor struct {
	mu     sync.Mutex
	eng    engine // nil: pass-through
	cfg    Config
	delay  time.Duration
	closed bool
	rend   []int16 // render samples waiting for a whole block
}

// New returns a Processor with cfg switched on. Without cgo it returns a
// pass-through Processor and no error.
func New(cfg Config) (*Processor, error) {
	eng, err := newEngine()
	if err != nil {
		return nil, err
	}
	return newProcessor(eng, cfg)
}

func newProcessor(eng engine, cfg Config) (*Processor, error) {
	p := &Processor{eng: eng, rend: make([]int16, 0, block)}
	if err := p.SetConfig(cfg); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Available reports whether this build links the processing library (it
// needs cgo). Without it every Processor is a pass-through.
func Available() bool { return engineAvailable }

// SetConfig switches parts on or off; it takes effect from the next frame.
func (p *Processor) SetConfig(cfg Config) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg = cfg
	if p.eng == nil || p.closed {
		return nil
	}
	return p.eng.set(cfg)
}

// Config returns what is switched on.
func (p *Processor) Config() Config {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg
}

// SetDelay tells the echo canceller how long a sample takes from the
// playback callback to the capture callback: the playback device's
// latency plus the capture device's. Under-reporting is harmless (the
// canceller searches past it); over-reporting by more than a few tens of
// milliseconds keeps it from finding the echo.
func (p *Processor) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = max(0, d)
	p.mu.Unlock()
}

// Playback takes one period the playback callback handed the device: the
// echo reference. It does not modify pcm.
func (p *Processor) Playback(pcm []int16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.eng == nil || p.closed || !p.cfg.EchoCancel {
		p.rend = p.rend[:0]
		return
	}
	for len(pcm) > 0 {
		n := copy(p.rend[len(p.rend):block], pcm)
		p.rend = p.rend[:len(p.rend)+n]
		pcm = pcm[n:]
		if len(p.rend) == block {
			p.eng.render(p.rend)
			p.rend = p.rend[:0]
		}
	}
}

// Capture processes one captured period in place. Periods that are not a
// whole number of 10 ms blocks pass through untouched.
func (p *Processor) Capture(pcm []int16) {
	if len(pcm)%block != 0 {
		return
	}
	for i := 0; i < len(pcm); i += block {
		p.mu.Lock()
		if p.eng != nil && !p.closed && p.cfg.Any() {
			p.eng.capture(pcm[i:i+block], p.delay)
		}
		p.mu.Unlock()
	}
}

// Stats reports what is on and how much echo is removed.
func (p *Processor) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := Stats{Config: p.cfg, Delay: p.delay, ERLE: math.NaN()}
	if p.eng != nil && !p.closed {
		st.Active = p.cfg.Any()
		if p.cfg.EchoCancel {
			st.ERLE = p.eng.erle()
		}
	}
	return st
}

// Close releases the library's state; the Processor passes audio through
// afterwards. Close is idempotent.
func (p *Processor) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.eng != nil && !p.closed {
		p.eng.close()
	}
	p.closed = true
}
