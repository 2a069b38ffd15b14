package main

import (
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/dialtone-dev/dialtone/media/mediatest"
	"github.com/dialtone-dev/dialtone/media/pcm"
)

// stamped is a PCM source or sink that keeps every period that passes
// through it with the wall-clock time it passed, so that a microphone's
// input and a speaker's output can be put on one timeline even when a
// device tick came late or was skipped. (The same idea as the demo's tap;
// it should live in mediatest.)
type stamped struct {
	src pcm.Reader // for a source; nil for a sink

	mu    sync.Mutex
	pcm   []int16
	marks []stampMark
}

type stampMark struct {
	pos int
	at  time.Time
}

func (s *stamped) record(p []int16) {
	s.mu.Lock()
	s.marks = append(s.marks, stampMark{pos: len(s.pcm), at: time.Now()})
	s.pcm = append(s.pcm, p...)
	s.mu.Unlock()
}

func (s *stamped) ReadPCM(p []int16) (int, error) {
	n, err := s.src.ReadPCM(p)
	s.record(p)
	return n, err
}

func (s *stamped) WritePCM(p []int16) (int, error) {
	s.record(p)
	return len(p), nil
}

func (s *stamped) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pcm)
}

func (s *stamped) snapshot() ([]int16, []stampMark) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int16(nil), s.pcm...), append([]stampMark(nil), s.marks...)
}

func timeAt(marks []stampMark, i int) time.Time {
	k := max(0, sort.Search(len(marks), func(k int) bool { return marks[k].pos > i })-1)
	return marks[k].at.Add(time.Duration(i-marks[k].pos) * time.Second / sec)
}

// Since returns how many samples passed through after time t.
func (s *stamped) Since(t time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := sort.Search(len(s.marks), func(k int) bool { return s.marks[k].at.After(t) })
	if k == len(s.marks) {
		return 0
	}
	return len(s.pcm) - s.marks[k].pos
}

// outIndex is the index of the first speaker sample played at or after t.
func outIndex(marks []stampMark, t time.Time) (int, bool) {
	j := sort.Search(len(marks), func(k int) bool { return !marks[k].at.Before(t) })
	if j == 0 || j >= len(marks) {
		return 0, false
	}
	return marks[j-1].pos, true
}

// echoDelay measures how long after the microphone captured it the
// speaker played what the microphone captured between from and until.
// First one cross-correlation over the whole stretch finds the overall
// lag within minLag…maxLag: a long stretch makes the peak unambiguous,
// where a short window of a tonal signal can prefer a louder near-repeat.
// Then each 0.5 s window is looked up again within ±50 ms of it, and its
// delay is the time the speaker played the match minus the time the
// microphone captured the window. It returns the median delay and
// correlation, and each window's correlation.
func echoDelay(mic, spk *stamped, from, until time.Time, minLag, maxLag time.Duration) (time.Duration, float64, []float64) {
	in, inMarks := mic.snapshot()
	out, outMarks := spk.snapshot()
	const win, slack = sec / 2, sec / 20
	i0, i1 := -1, 0
	for s := 0; s+win <= len(in); s += win {
		if at := timeAt(inMarks, s); !at.Before(from) && !at.Add(win*time.Second/sec).After(until) {
			if i0 < 0 {
				i0 = s
			}
			i1 = s + win
		}
	}
	if i0 < 0 {
		return 0, 0, nil
	}
	j0, ok := outIndex(outMarks, timeAt(inMarks, i0).Add(minLag))
	if !ok {
		return 0, 0, nil
	}
	span := int((maxLag - minLag).Seconds() * sec)
	j1 := j0 + (i1 - i0) + span
	if j1 > len(out) {
		return 0, 0, nil
	}
	d, _ := mediatest.Delay(in[i0:i1], out[j0:j1])
	if d > span {
		return 0, 0, nil // a peak of a partial overlap: nothing found in range
	}
	lag := j0 + d - i0 // speaker index − microphone index, overall

	var delays, corrs []float64
	for s := i0; s+win <= i1; s += win {
		w := in[s : s+win]
		if rmsOf(w) < 100 {
			continue
		}
		lo, hi := max(0, s+lag-slack), min(len(out), s+lag+win+slack)
		if hi-lo < win+slack {
			continue
		}
		d, c := mediatest.Delay(w, out[lo:hi])
		corrs = append(corrs, c)
		delays = append(delays, float64(timeAt(outMarks, lo+d).Sub(timeAt(inMarks, s))))
	}
	return time.Duration(mediatest.Median(delays)), mediatest.Median(corrs), corrs
}

func rmsOf(p []int16) float64 {
	var s float64
	for _, v := range p {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(max(1, len(p))))
}

// echoTone is a multi-tone for delay measurement through a speech codec:
// five tones at frequencies that are not whole hertz (mediatest.MultiTone's
// are, so it repeats itself every second but for its envelope, and a
// window's correlation peak can land a near-repeat off), under a deep,
// smooth random envelope (1–6 Hz) that gives every 0.5 s window a shape of
// its own, with no hard onsets for SILK to smear. Peaks near −6 dBFS.
// (A candidate for mediatest.)
func echoTone(n int, seed uint64) []int16 {
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
	out := make([]int16, n)
	for i := range out {
		t := float64(i) / sec
		var x float64
		for k, f := range freqs {
			x += math.Sin(2*math.Pi*f*t + phase[k])
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
