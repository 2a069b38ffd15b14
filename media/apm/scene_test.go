package apm

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/media/mediatest"
)

// The echo scene the harness runs every canceller through: far-end speech
// plays for the whole scene and comes back to the microphone through a
// room; the near end talks over it for a stretch (double talk); the
// room's bulk delay jumps once, unreported, as when the user unplugs
// headphones and the laptop's speaker takes over.
const (
	sceneLength  = 20 * time.Second
	talkStart    = 8 * time.Second  // near end starts: double talk
	talkEnd      = 12 * time.Second // near end stops
	jumpAt       = 12 * time.Second // the bulk delay jumps
	delayBefore  = 40 * time.Millisecond
	delayAfter   = 90 * time.Millisecond
	rt60         = 250 * time.Millisecond // reverberation of the room
	irLength     = 200 * time.Millisecond
	echoGainDB   = -6.0  // the echo against the far end
	noiseDBFS    = -60.0 // the room's noise at the microphone
	nearOverEcho = 2.6   // dB: the near end's level above the echo in double talk
)

// scene is one rendered echo scene, 48 kHz.
type scene struct {
	far  []int16 // what the speaker plays (the reference)
	echo []int16 // what of it the microphone hears, noise included
	near []int16 // the near end's voice as the microphone hears it (zero outside talk)
	mic  []int16 // echo + near
	// active marks the 10 ms frames where the echo is loud enough to
	// measure against the noise: within 30 dB of its loudest frame.
	active []bool
}

var (
	sceneOnce sync.Once
	theScene  *scene
)

// echoScene synthesises the scene once per test binary (espeak-ng and sox;
// without them the test skips, or fails under CI).
func echoScene(t testing.TB) *scene {
	t.Helper()
	set := mediatest.SpeechSet()
	// Synthesise outside the Once so a missing synthesiser skips every
	// test that asks, not only the first.
	farParts := [][]int16{mediatest.Speech(t, set[0]), mediatest.Speech(t, set[1]), mediatest.Speech(t, set[3])}
	nearVoice := mediatest.Speech(t, set[2])
	sceneOnce.Do(func() { theScene = buildScene(farParts, nearVoice) })
	return theScene
}

func samples(d time.Duration) int { return samplesOf(d) }

func buildScene(farParts [][]int16, nearVoice []int16) *scene {
	n := samples(sceneLength)
	far := make([]float64, 0, n)
	for len(far) < n {
		for _, p := range farParts {
			for _, v := range p {
				far = append(far, float64(v))
			}
		}
	}
	far = far[:n]

	// A room: a direct path, then an exponentially decaying diffuse tail
	// (−60 dB after rt60), scaled to the echo gain.
	rng := rand.New(rand.NewPCG(1, 2))
	ir := make([]float64, samples(irLength))
	decay := math.Log(1000) / float64(samples(rt60)) // amplitude −60 dB at rt60
	for i := range ir {
		ir[i] = 0.6 * rng.NormFloat64() * math.Exp(-decay*float64(i))
	}
	ir[0] += 3
	var e float64
	for _, v := range ir {
		e += v * v
	}
	scale := math.Pow(10, echoGainDB/20) / math.Sqrt(e)
	for i := range ir {
		ir[i] *= scale
	}
	wet := mediatest.Convolve(far, ir)

	s := &scene{far: make([]int16, n), echo: make([]int16, n), near: make([]int16, n), mic: make([]int16, n)}
	noise := math.Pow(10, noiseDBFS/20) * 32768
	echo := make([]float64, n)
	for i := range n {
		d := samples(delayBefore)
		if i >= samples(jumpAt) {
			d = samples(delayAfter)
		}
		if i >= d {
			echo[i] = wet[i-d]
		}
		echo[i] += noise * rng.NormFloat64()
	}
	// The near end, scaled to stand nearOverEcho above the echo over the
	// double-talk stretch.
	a, b := samples(talkStart), samples(talkEnd)
	near := make([]float64, n)
	for i := a; i < b && i-a < len(nearVoice); i++ {
		near[i] = float64(nearVoice[i-a])
	}
	g := math.Pow(10, nearOverEcho/20) * rmsF(echo[a:b]) / rmsF(near[a:b])
	for i := range n {
		s.far[i] = clamp(far[i])
		s.echo[i] = clamp(echo[i])
		s.near[i] = clamp(g * near[i])
		s.mic[i] = clamp(echo[i] + g*near[i])
	}
	var peak float64
	for i := 0; i+block <= n; i += block {
		peak = max(peak, power(s.echo[i:i+block]))
	}
	for i := 0; i+block <= n; i += block {
		s.active = append(s.active, power(s.echo[i:i+block]) > peak/1000)
	}
	return s
}

func clamp(v float64) int16 { return int16(max(-32768, min(32767, math.Round(v)))) }

func rmsF(x []float64) float64 {
	var e float64
	for _, v := range x {
		e += v * v
	}
	return math.Sqrt(e / float64(max(1, len(x))))
}

// figures are what the harness measures of one canceller on the scene.
type figures struct {
	ERLE        float64       // dB, steady state: the far-end-only stretch's last 3 s before double talk
	Converge    time.Duration // from the start until the echo over the next second is ≥ 20 dB down
	NearLoss    float64       // dB the near end's voice loses in double talk (its level against the clean voice)
	NearSNR     float64       // dB, the near end's voice against what else leaves in double talk
	Reconverge  time.Duration // from the delay jump until that holds again
	ERLEAfter   float64       // dB, steady state after the jump (its last 3 s)
	PerFrame    time.Duration // time for one 10 ms frame (reference and microphone), median of 1 s stretches
	ReportedDB  float64       // the processor's own ERLE estimate at the end
	CorePercent float64       // PerFrame as a share of one core
}

// run feeds the scene through p frame by frame, as the device callbacks
// would (playback then capture in each 10 ms), and measures it.
func run(p *Processor, s *scene) (figures, []int16) {
	out := make([]int16, len(s.mic))
	copy(out, s.mic)
	// CPU is the median over one-second stretches, so a stretch where
	// the scheduler ran something else (2 shared cores) does not count.
	var stretches []time.Duration
	const perStretch = 100
	t0 := time.Now()
	for i, k := 0, 1; i+block <= len(out); i, k = i+block, k+1 {
		p.Playback(s.far[i : i+block])
		p.Capture(out[i : i+block])
		if k%perStretch == 0 {
			stretches = append(stretches, time.Since(t0)/perStretch)
			t0 = time.Now()
		}
	}
	slices.Sort(stretches)
	var f figures
	f.PerFrame = stretches[len(stretches)/2]
	f.CorePercent = 100 * float64(f.PerFrame) / float64(10*time.Millisecond)
	f.ReportedDB = p.Stats().ERLE
	erle := func(from, to time.Duration) float64 {
		e, _ := s.erleOver(out, samples(from), samples(to))
		return e
	}
	f.ERLE = erle(talkStart-3*time.Second, talkStart)
	f.ERLEAfter = erle(sceneLength-3*time.Second, sceneLength)
	f.Converge = s.settle(out, 0, samples(talkStart))
	f.Reconverge = s.settle(out, samples(jumpAt), len(out))

	a, b := samples(talkStart), samples(talkEnd)
	near, got := s.near[a:b], out[a:b]
	lag, _ := mediatest.Delay(near, got[:len(got)/2])
	if lag > samples(30*time.Millisecond) {
		lag = 0 // no credible match: measure unshifted
	}
	var xy, xx float64
	for i := 0; i+lag < len(got); i++ {
		xy += float64(near[i]) * float64(got[i+lag])
		xx += float64(near[i]) * float64(near[i])
	}
	f.NearLoss = -20 * math.Log10(max(1e-9, xy/xx))
	f.NearSNR = mediatest.SNR(near, got, lag)
	return f, out
}

func power(p []int16) float64 {
	var e float64
	for _, v := range p {
		e += float64(v) * float64(v)
	}
	return e
}

// erleOver is the echo return loss enhancement over [from, to): the
// power of the echo at the microphone against the power that is left,
// summed over the frames where the echo speaks; NaN if it never does.
func (s *scene) erleOver(out []int16, from, to int) (float64, int) {
	var in, left float64
	n := 0
	for i := from - from%block; i+block <= to; i += block {
		if !s.active[i/block] {
			continue
		}
		n++
		in += power(s.echo[i : i+block])
		left += power(out[i : i+block])
	}
	if n == 0 {
		return math.NaN(), 0
	}
	if left == 0 {
		return math.Inf(1), n
	}
	return 10 * math.Log10(in/left), n
}

// settle returns how long after from the canceller takes until the echo
// over the following second is at least 20 dB down, in 50 ms steps. A
// canceller that never gets there returns to−from.
func (s *scene) settle(out []int16, from, to int) time.Duration {
	step, span := samples(50*time.Millisecond), samples(time.Second)
	i := from
	for ; i+span <= to; i += step {
		if e, n := s.erleOver(out, i, i+span); n >= 10 && e >= 20 {
			break
		}
	}
	i = min(i, to)
	return time.Duration(int64(i-from) * int64(time.Second) / SampleRate)
}
