package media

import (
	"io"
	"math"
	"sync"
	"time"

	"github.com/dialtone-dev/dialtone/media/pcm"
)

// ToneStyle selects national call-progress tone conventions.
type ToneStyle int

const (
	// StyleITU is the ITU-T E.180 recommendation used across most of
	// Europe: 425 Hz.
	StyleITU ToneStyle = iota
	// StyleUS is the North American precise tone plan.
	StyleUS
)

// ToneSpec describes a call-progress tone: the sum of Frequencies switched
// by Cadence (on, off, on, off, … durations, repeated; empty means
// continuous).
type ToneSpec struct {
	Frequencies []float64
	Cadence     []time.Duration
	// Level is the level of each frequency component in dBov (default −16).
	Level float64
	// Duration stops the tone (ReadPCM returns io.EOF) after this much audio;
	// 0 plays forever.
	Duration time.Duration
}

// Ringback is the tone a caller hears while the far end rings:
// ITU 425 Hz 1 s on / 4 s off; US 440+480 Hz 2 s on / 4 s off.
func Ringback(style ToneStyle) ToneSpec {
	if style == StyleUS {
		return ToneSpec{Frequencies: []float64{440, 480}, Cadence: []time.Duration{2 * time.Second, 4 * time.Second}, Level: -19}
	}
	return ToneSpec{Frequencies: []float64{425}, Cadence: []time.Duration{time.Second, 4 * time.Second}}
}

// Busy is the busy tone: ITU 425 Hz 0.5 s / 0.5 s; US 480+620 Hz 0.5 s / 0.5 s.
func Busy(style ToneStyle) ToneSpec {
	if style == StyleUS {
		return ToneSpec{Frequencies: []float64{480, 620}, Cadence: []time.Duration{500 * time.Millisecond, 500 * time.Millisecond}, Level: -24}
	}
	return ToneSpec{Frequencies: []float64{425}, Cadence: []time.Duration{500 * time.Millisecond, 500 * time.Millisecond}}
}

// ErrorTone is the tone for a failed call: ITU congestion 425 Hz 0.2 s /
// 0.2 s; US reorder 480+620 Hz 0.25 s / 0.25 s.
func ErrorTone(style ToneStyle) ToneSpec {
	if style == StyleUS {
		return ToneSpec{Frequencies: []float64{480, 620}, Cadence: []time.Duration{250 * time.Millisecond, 250 * time.Millisecond}, Level: -24}
	}
	return ToneSpec{Frequencies: []float64{425}, Cadence: []time.Duration{200 * time.Millisecond, 200 * time.Millisecond}}
}

// Tone is a PCM source playing a ToneSpec, with 5 ms ramps at every switch
// so cadences do not click. It is safe for concurrent use.
type Tone struct {
	mu     sync.Mutex
	spec   ToneSpec
	amp    float64
	phase  []float64
	pos    int64 // samples played
	cycle  []int64
	period int64
	total  int64
}

// NewTone returns a source for spec.
func NewTone(spec ToneSpec) *Tone {
	if spec.Level == 0 {
		spec.Level = -16
	}
	t := &Tone{spec: spec, phase: make([]float64, len(spec.Frequencies))}
	// Level is RMS per component in dBov; a sine's peak is √2 times its RMS.
	t.amp = 32768 * math.Sqrt2 * math.Pow(10, spec.Level/20)
	for _, d := range spec.Cadence {
		n := int64(d * SampleRate / time.Second)
		t.cycle = append(t.cycle, n)
		t.period += n
	}
	t.total = int64(spec.Duration * SampleRate / time.Second)
	return t
}

// gain returns the on/off envelope (0…1) at sample pos.
func (t *Tone) gain(pos int64) float64 {
	if t.period == 0 {
		return 1
	}
	const ramp = SampleRate * 5 / 1000
	p := pos % t.period
	for i, n := range t.cycle {
		if p < n {
			if i%2 == 1 {
				return 0
			}
			edge := min(p, n-1-p)
			if edge < ramp {
				return float64(edge) / ramp
			}
			return 1
		}
		p -= n
	}
	return 0
}

// ReadPCM fills p with the tone. After Duration it returns the samples left
// and io.EOF (the rest of p is silence).
func (t *Tone) ReadPCM(p []int16) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	var err error
	if t.total > 0 && t.pos+int64(n) >= t.total {
		n = int(max(0, t.total-t.pos))
		err = io.EOF
	}
	for i := 0; i < n; i++ {
		g := t.gain(t.pos)
		var s float64
		for k, f := range t.spec.Frequencies {
			s += math.Sin(t.phase[k])
			t.phase[k] += 2 * math.Pi * f / SampleRate
			if t.phase[k] > 2*math.Pi {
				t.phase[k] -= 2 * math.Pi
			}
		}
		p[i] = sat16(float32(s * g * t.amp))
		t.pos++
	}
	clear(p[n:])
	return n, err
}

// Mixer is a PCM source that sums its sources with saturation, e.g. the
// remote stream and a tone or prompt. Sources that return io.EOF (or any
// error) are removed. ReadPCM always fills p. It is safe for concurrent use.
type Mixer struct {
	mu      sync.Mutex
	sources []pcm.Reader
	acc     []int32
	tmp     []int16
}

// NewMixer returns a mixer over the given sources.
func NewMixer(sources ...pcm.Reader) *Mixer {
	return &Mixer{sources: append([]pcm.Reader(nil), sources...)}
}

// Add adds a source.
func (m *Mixer) Add(s pcm.Reader) {
	m.mu.Lock()
	m.sources = append(m.sources, s)
	m.mu.Unlock()
}

// Remove removes a source (compared by identity).
func (m *Mixer) Remove(s pcm.Reader) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, x := range m.sources {
		if x == s {
			m.sources = append(m.sources[:i], m.sources[i+1:]...)
			return
		}
	}
}

// Len returns the number of sources.
func (m *Mixer) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sources)
}

// ReadPCM fills p with the saturated sum of all sources (silence if none).
func (m *Mixer) ReadPCM(p []int16) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cap(m.acc) < len(p) {
		m.acc = make([]int32, len(p))
		m.tmp = make([]int16, len(p))
	}
	acc, tmp := m.acc[:len(p)], m.tmp[:len(p)]
	clear(acc)
	kept := m.sources[:0]
	for _, s := range m.sources {
		n, err := s.ReadPCM(tmp)
		for i, v := range tmp[:min(n, len(tmp))] {
			acc[i] += int32(v)
		}
		if err == nil {
			kept = append(kept, s)
		}
	}
	clear(m.sources[len(kept):])
	m.sources = kept
	for i, v := range acc {
		p[i] = int16(max(-32768, min(32767, v)))
	}
	return len(p), nil
}
