package mediatest

import (
	"math"
	"sort"
)

// Delay finds the lag (in samples, ≥ 0) at which out best matches ref, i.e.
// out[i+lag] ≈ g·ref[i], by FFT cross-correlation over the whole of both
// signals, and returns it with the normalised correlation (−1…1) of the
// overlapping parts at that lag. Lags up to len(out)−1 are searched. A few
// seconds of 48 kHz audio take a few tens of milliseconds.
func Delay(ref, out []int16) (samples int, corr float64) {
	if len(ref) == 0 || len(out) == 0 {
		return 0, 0
	}
	c := crossCorrelate(ref, out)
	best, lag := math.Inf(-1), 0
	for l := 0; l < len(out); l++ {
		if v := c[l]; v > best {
			best, lag = v, l
		}
	}
	return lag, Correlation(ref, out, lag)
}

// Correlation returns the normalised correlation of ref[i] with
// out[i+lag] over their overlap.
func Correlation(ref, out []int16, lag int) float64 {
	var xy, xx, yy float64
	for i := range ref {
		j := i + lag
		if j < 0 {
			continue
		}
		if j >= len(out) {
			break
		}
		x, y := float64(ref[i]), float64(out[j])
		xy += x * y
		xx += x * x
		yy += y * y
	}
	if xx == 0 || yy == 0 {
		return 0
	}
	return xy / math.Sqrt(xx*yy)
}

// SNR returns the signal-to-noise ratio in dB of out against ref, with
// out[i+delay] aligned to ref[i] and ref scaled by the least-squares gain
// (so a level change is not counted as noise). It returns −Inf for no
// overlap or a silent reference and +Inf for a perfect match.
func SNR(ref, out []int16, delay int) float64 {
	var xy, xx float64
	for i := range ref {
		j := i + delay
		if j < 0 || j >= len(out) {
			continue
		}
		x, y := float64(ref[i]), float64(out[j])
		xy += x * y
		xx += x * x
	}
	if xx == 0 {
		return math.Inf(-1)
	}
	g := xy / xx
	var sig, noise float64
	for i := range ref {
		j := i + delay
		if j < 0 || j >= len(out) {
			continue
		}
		s := g * float64(ref[i])
		e := float64(out[j]) - s
		sig += s * s
		noise += e * e
	}
	if sig == 0 {
		return math.Inf(-1)
	}
	if noise == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(sig/noise)
}

// Window is the measurement of one stretch of a longer recording.
type Window struct {
	Start int     // first reference sample of the window
	Delay int     // samples
	Corr  float64 // normalised correlation at Delay
	SNR   float64 // dB after alignment and gain
}

// Windows measures delay and SNR separately for consecutive windows of
// size samples of ref, searching lags 0…maxLag in out. Measuring in windows
// keeps the SNR meaningful when a jitter buffer changed its delay once
// during the recording.
func Windows(ref, out []int16, size, maxLag int) []Window {
	var ws []Window
	for s := 0; s+size <= len(ref); s += size {
		end := min(len(out), s+size+maxLag)
		if end <= s {
			break
		}
		r := ref[s : s+size]
		o := out[s:end]
		d, c := Delay(r, o)
		ws = append(ws, Window{Start: s, Delay: d, Corr: c, SNR: SNR(r, o, d)})
	}
	return ws
}

// Median returns the median of v (0 for none).
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BlockToneShare is the median over pcm's 100 ms blocks of ToneShare.
// Per block, because ToneShare is phase-coherent over what it measures: a
// jitter buffer that removes or adds a few ms of audio now and then (or
// conceals a late packet) shifts a tone's phase, and two stretches out of
// phase cancel in one measure over the whole buffer although every block
// is the pure tone.
func BlockToneShare(pcm []int16, freq float64) float64 {
	const block = SampleRate / 10
	var shares []float64
	for i := 0; i+block <= len(pcm); i += block {
		shares = append(shares, ToneShare(pcm[i:i+block], freq))
	}
	return Median(shares)
}

// ToneShare is the fraction of pcm's energy at freq Hz (Goertzel over the
// whole buffer, 48 kHz), normalised so that a pure sine at freq over a whole
// number of periods gives 1, silence 0 and white noise about 2/len(pcm).
func ToneShare(pcm []int16, freq float64) float64 {
	w := 2 * math.Pi * freq / SampleRate
	coeff := 2 * math.Cos(w)
	var s1, s2, energy float64
	for _, v := range pcm {
		x := float64(v)
		s0 := x + coeff*s1 - s2
		s2, s1 = s1, s0
		energy += x * x
	}
	if energy == 0 {
		return 0
	}
	power := s1*s1 + s2*s2 - coeff*s1*s2
	return 2 * power / (float64(len(pcm)) * energy)
}
