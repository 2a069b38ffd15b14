package mediatest

import (
	"math"
	"math/rand/v2"
)

// SampleRate of every signal here (Hz).
const SampleRate = 48000

// MultiTone returns n samples of five incommensurate tones (between 300 Hz
// and 3.1 kHz) under a slow, non-periodic amplitude envelope, peaking near
// −6 dBFS. The envelope makes the cross-correlation peak unambiguous while
// the tones stay easy for any codec. Equal seeds give equal signals.
func MultiTone(n int, seed uint64) []int16 {
	rng := rand.New(rand.NewPCG(seed, 0x6d756c7469))
	freqs := []float64{313, 587, 1031, 1709, 3089}
	phase := make([]float64, len(freqs))
	for i := range phase {
		phase[i] = rng.Float64() * 2 * math.Pi
	}
	// Envelope: sum of three slow sines with random rates (0.3–3 Hz).
	var envF, envP [3]float64
	for i := range envF {
		envF[i] = 0.3 + rng.Float64()*2.7
		envP[i] = rng.Float64() * 2 * math.Pi
	}
	out := make([]int16, n)
	for i := range out {
		t := float64(i) / SampleRate
		var s float64
		for k, f := range freqs {
			s += math.Sin(2*math.Pi*f*t+phase[k]) / float64(len(freqs))
		}
		e := 0.0
		for k := range envF {
			e += math.Sin(2*math.Pi*envF[k]*t + envP[k])
		}
		env := 0.55 + 0.45*e/3
		out[i] = int16(s * env * 0.5 * 32767 * 1.6)
	}
	return out
}

// ProbeTone returns n samples of a signal made to measure delay through a
// speech codec: five tones, each gliding slowly (±5 % at a random 0.5–2 Hz)
// around a frequency that is not a whole number of hertz, under a deep,
// smooth random envelope (1–6 Hz) that gives every 0.5 s window a shape of
// its own, with no hard onsets for SILK to smear. Steady tones, whatever
// their frequencies, line up their phases again at some lag: five fixed
// ones correlate with themselves at 0.93 about half a second later, as
// well as a codec's output correlates with its input, so a delay search
// over a second could lock onto the near-repeat. Gliding, the tones' phases
// never line up again, and no stretch correlates with another of the same
// signal much above 0.3 (TestProbeToneNoNearRepeat). Peaks near −6 dBFS.
// Equal seeds give equal signals.
func ProbeTone(n int, seed uint64) []int16 {
	rng := rand.New(rand.NewPCG(seed, 0x6563686f))
	freqs := []float64{347.3, 612.9, 1123.7, 1811.1, 2687.9}
	var phase [5]float64
	for i := range phase {
		phase[i] = rng.Float64() * 2 * math.Pi
	}
	var envF, envP [4]float64
	for i := range envF {
		envF[i] = 1 + rng.Float64()*5
		envP[i] = rng.Float64() * 2 * math.Pi
	}
	const glide = 0.05 // frequency deviation, a share of the tone's frequency
	var glideF, glideP [5]float64
	for i := range glideF {
		glideF[i] = 0.5 + rng.Float64()*1.5
		glideP[i] = rng.Float64() * 2 * math.Pi
	}
	out := make([]int16, n)
	for i := range out {
		t := float64(i) / SampleRate
		var x float64
		for k, f := range freqs {
			x += math.Sin(phase[k])
			f *= 1 + glide*math.Sin(2*math.Pi*glideF[k]*t+glideP[k])
			phase[k] = math.Mod(phase[k]+2*math.Pi*f/SampleRate, 2*math.Pi)
		}
		var e float64
		for k := range envF {
			e += math.Sin(2*math.Pi*envF[k]*t + envP[k])
		}
		env := 0.15 + 0.85*(e/4+1)/2 // 0.15…1
		out[i] = int16(x / float64(len(freqs)) * env * 0.5 * 32767 * 1.6)
	}
	return out
}

// SpeechLike returns n samples of a crude voiced-speech imitation: a glottal
// pulse train with a wandering pitch (100–220 Hz) through three moving
// formant resonators, in syllables of 120–300 ms separated by short pauses.
// Equal seeds give equal signals.
func SpeechLike(n int, seed uint64) []int16 {
	rng := rand.New(rand.NewPCG(seed, 0x737065656368))
	out := make([]int16, n)
	type reson struct{ a1, a2, y1, y2 float64 }
	var rs [3]reson
	set := func(r *reson, f, bw float64) {
		rad := math.Exp(-math.Pi * bw / SampleRate)
		r.a1 = 2 * rad * math.Cos(2*math.Pi*f/SampleRate)
		r.a2 = -rad * rad
	}
	i := 0
	for i < n {
		syl := int((0.12 + rng.Float64()*0.18) * SampleRate)
		pause := int((0.03 + rng.Float64()*0.12) * SampleRate)
		f0 := 100 + rng.Float64()*120
		f1, f2, f3 := 300+rng.Float64()*500, 900+rng.Float64()*1300, 2300+rng.Float64()*700
		set(&rs[0], f1, 80)
		set(&rs[1], f2, 120)
		set(&rs[2], f3, 200)
		phase := 0.0
		for k := 0; k < syl && i < n; k, i = k+1, i+1 {
			env := math.Sin(math.Pi * float64(k) / float64(syl))
			f := f0 * (1 + 0.1*math.Sin(2*math.Pi*3*float64(k)/SampleRate))
			phase += f / SampleRate
			x := 0.0
			if phase >= 1 {
				phase--
				x = 1
			}
			x += (rng.Float64() - 0.5) * 0.02
			y := x
			for r := range rs {
				v := y + rs[r].a1*rs[r].y1 + rs[r].a2*rs[r].y2
				rs[r].y2, rs[r].y1 = rs[r].y1, v
				y = v * 0.1
			}
			out[i] = clamp16(y * env * 2200)
		}
		for k := 0; k < pause && i < n; k, i = k+1, i+1 {
			out[i] = 0
		}
	}
	return out
}

// Sine returns n samples of a sine at freq Hz and amplitude amp (0–1).
func Sine(n int, freq, amp float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = clamp16(amp * 32767 * math.Sin(2*math.Pi*freq*float64(i)/SampleRate))
	}
	return out
}

func clamp16(v float64) int16 {
	v = math.Round(v)
	if v > 32767 {
		return 32767
	}
	if v < -32768 {
		return -32768
	}
	return int16(v)
}
