package main

import (
	"math"
	"slices"
	"time"

	"github.com/dialtone-dev/dialtone/media/mediatest"
)

// beepReport describes periodic tone bursts found in a recording (48 kHz
// mono): how many, their spacing and length, their dominant frequency and
// how much of the bursts' energy sits at that frequency.
type beepReport struct {
	Bursts   int
	Period   time.Duration // median onset-to-onset spacing
	Length   time.Duration // median burst length
	Freq     float64       // median of the bursts' dominant frequencies, Hz
	Purity   float64       // median share of a burst's energy at its dominant frequency (0..1)
	PeakDBov float64       // loudest 10 ms block
	Onsets   []time.Duration
}

const blockSamples = 480 // 10 ms at 48 kHz

// findBeeps finds the bursts of a periodic beep: 10 ms blocks more than
// 20 dB above the recording's quietest blocks and within 20 dB of its
// loudest, grouped into runs.
func findBeeps(pcm []int16) beepReport {
	var r beepReport
	n := len(pcm) / blockSamples
	if n == 0 {
		return r
	}
	levels := make([]float64, n)
	for i := range levels {
		levels[i] = dbov(pcm[i*blockSamples : (i+1)*blockSamples])
	}
	sorted := slices.Clone(levels)
	slices.Sort(sorted)
	floor, peak := sorted[n/10], sorted[n-1]
	r.PeakDBov = peak
	thr := max(floor+20, peak-20)
	var onsets, lengths []int
	var freqs, shares []float64
	for i := 0; i < n; {
		if levels[i] < thr {
			i++
			continue
		}
		j := i
		for j < n && levels[j] >= thr {
			j++
		}
		onsets = append(onsets, i)
		lengths = append(lengths, j-i)
		// One burst at a time: Goertzel over bursts glued together
		// would lose their phase relation.
		f, share := dominant(pcm[i*blockSamples:j*blockSamples], 100, 4000, 5)
		freqs, shares = append(freqs, f), append(shares, share)
		r.Onsets = append(r.Onsets, time.Duration(i)*10*time.Millisecond)
		i = j
	}
	r.Bursts = len(onsets)
	if len(onsets) >= 2 {
		gaps := make([]int, 0, len(onsets)-1)
		for i := 1; i < len(onsets); i++ {
			gaps = append(gaps, onsets[i]-onsets[i-1])
		}
		slices.Sort(gaps)
		r.Period = time.Duration(gaps[len(gaps)/2]) * 10 * time.Millisecond
	}
	if len(lengths) > 0 {
		slices.Sort(lengths)
		r.Length = time.Duration(lengths[len(lengths)/2]) * 10 * time.Millisecond
	}
	if len(freqs) > 0 {
		r.Freq, r.Purity = median(freqs), median(shares)
	}
	return r
}

// dominant scans lo..hi Hz in steps and returns the frequency holding the
// largest share of pcm's energy, and that share.
func dominant(pcm []int16, lo, hi, step float64) (freq, share float64) {
	for f := lo; f <= hi; f += step {
		if s := mediatest.ToneShare(pcm, f); s > share {
			freq, share = f, s
		}
	}
	return freq, share
}

// dbov is the RMS level of pcm in dB relative to full scale.
func dbov(pcm []int16) float64 {
	var sum float64
	for _, v := range pcm {
		sum += float64(v) * float64(v)
	}
	if sum == 0 {
		return -120
	}
	return 10 * math.Log10(sum/float64(len(pcm))/(32768.0*32768.0))
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
