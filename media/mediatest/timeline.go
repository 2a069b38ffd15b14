package mediatest

import (
	"math"
	"sort"
	"sync"
	"time"
)

// Timeline records the PCM that passes one point of a voice path (a
// microphone's capture callback, a speaker's playback callback) with the
// wall-clock time each period passed, so that two points can be put on one
// timeline and the delay between them measured by [MouthToEar]. Periods
// are stamped one by one, so a late or skipped device tick does not shift
// the samples after it.
//
// Add fits audio.Tap's callbacks and WritePCM a virtual device's sink. A
// Timeline is safe for concurrent use; the zero value is ready.
type Timeline struct {
	mu    sync.Mutex
	pcm   []int16
	marks []mark
}

// mark says that sample pos passed at time at (the first sample of a
// period).
type mark struct {
	pos int
	at  time.Time
}

// Add records a copy of p as passing now.
func (t *Timeline) Add(p []int16) { t.AddAt(p, time.Now()) }

// AddAt records a copy of p as passing at time at. Periods must be added
// in time order.
func (t *Timeline) AddAt(p []int16, at time.Time) {
	t.mu.Lock()
	t.marks = append(t.marks, mark{pos: len(t.pcm), at: at})
	t.pcm = append(t.pcm, p...)
	t.mu.Unlock()
}

// WritePCM records p as passing now; it makes the Timeline a PCM sink.
func (t *Timeline) WritePCM(p []int16) (int, error) {
	t.Add(p)
	return len(p), nil
}

// Len returns the number of samples recorded.
func (t *Timeline) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pcm)
}

// Since returns how many samples were recorded in periods that passed
// after time at.
func (t *Timeline) Since(at time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := sort.Search(len(t.marks), func(k int) bool { return t.marks[k].at.After(at) })
	if k == len(t.marks) {
		return 0
	}
	return len(t.pcm) - t.marks[k].pos
}

// From returns a copy of the samples that passed at or after time at.
func (t *Timeline) From(at time.Time) []int16 {
	r := t.snapshot()
	return r.pcm[r.indexAt(at):]
}

// snapshot returns a copy of everything recorded so far.
func (t *Timeline) snapshot() recording {
	t.mu.Lock()
	defer t.mu.Unlock()
	return recording{pcm: append([]int16(nil), t.pcm...), marks: append([]mark(nil), t.marks...)}
}

// recording is a Timeline's content at one moment.
type recording struct {
	pcm   []int16
	marks []mark
}

// timeAt is the wall-clock time of sample i: the time of the period that
// holds it plus its offset inside the period.
func (r recording) timeAt(i int) time.Time {
	k := max(0, sort.Search(len(r.marks), func(k int) bool { return r.marks[k].pos > i })-1)
	m := r.marks[k]
	return m.at.Add(durationOf(i - m.pos))
}

// indexAt is the first sample that passed at or after time t (len(pcm) if
// none).
func (r recording) indexAt(t time.Time) int {
	k := sort.Search(len(r.marks), func(k int) bool { return r.marks[k].at.After(t) }) - 1
	if k < 0 {
		return 0
	}
	m := r.marks[k]
	i := m.pos + int(math.Ceil(t.Sub(m.at).Seconds()*SampleRate))
	if k+1 < len(r.marks) {
		i = min(i, r.marks[k+1].pos)
	}
	return min(i, len(r.pcm))
}

func durationOf(samples int) time.Duration {
	return time.Duration(samples) * time.Second / SampleRate
}

func samplesOf(d time.Duration) int {
	return int(int64(d) * SampleRate / int64(time.Second))
}

// MouthToEarConfig narrows and tunes [MouthToEar]. The zero value measures
// the whole recordings with the defaults.
type MouthToEarConfig struct {
	// From and Until limit the measurement to microphone windows captured
	// between them. Zero: from the start, to the end.
	From, Until time.Time
	// MinDelay and MaxDelay bound the overall delay searched: the speaker
	// plays the signal no sooner than MinDelay and no later than MaxDelay
	// after the microphone captured it (a window's own delay may stray
	// Slack above MaxDelay, never below MinDelay). Default 0 and 1 s.
	MinDelay, MaxDelay time.Duration
	// Window is the length of the microphone stretches measured one by
	// one. Default 500 ms.
	Window time.Duration
	// Slack is how far a window's delay may stray from the overall delay
	// (a jitter buffer moves its delay during a call). Default 100 ms.
	Slack time.Duration
}

func (c MouthToEarConfig) withDefaults() MouthToEarConfig {
	if c.MaxDelay <= 0 {
		c.MaxDelay = time.Second
	}
	if c.Window <= 0 {
		c.Window = 500 * time.Millisecond
	}
	if c.Slack <= 0 {
		c.Slack = 100 * time.Millisecond
	}
	return c
}

// Measurement is what one direction of a voice path sounded like, as
// [MouthToEar] measured it.
type Measurement struct {
	// MouthToEar is the median over the good windows of the time the
	// speaker played a window minus the time the microphone captured it.
	MouthToEar time.Duration
	// SNR (dB, after alignment and least-squares gain) and Corr (the
	// normalised correlation) are medians over the good windows.
	SNR, Corr float64
	// Good counts the windows whose correlation is at least 0.8, so the
	// speaker played them recognisably; All counts every window measured
	// (windows of digital silence, which match anything, are not).
	Good, All int
	// Corrs is the correlation of every window measured, in order.
	Corrs []float64
}

// Found reports whether the speaker played the microphone's signal: at
// least two windows, and a quarter of those measured, were good.
func (m Measurement) Found() bool { return m.Good >= 2 && m.Good*4 >= m.All }

const (
	// goodCorr is the least correlation of a window that found its signal.
	goodCorr = 0.8
	// silentRMS is the level under which a window is digital silence.
	silentRMS = 30
)

// MouthToEar measures how long after mic recorded it spk played it, the
// way a listener would hear it, and how clean it arrived.
//
// The two recordings are put on the wall-clock timeline first (their
// devices opened at different moments and may have skipped ticks). One
// cross-correlation over the whole stretch finds the overall delay between
// MinDelay and MaxDelay: a long stretch makes the peak unambiguous, where a
// short window of a tonal signal can prefer a louder near-repeat. Then each
// window of the microphone signal is looked up again within ±Slack of it,
// never earlier than MinDelay after it was captured. A window's
// mouth-to-ear delay is the time the speaker played the match minus the
// time the microphone captured the window; windows from before a call
// connected do not match and are left out of the medians.
func MouthToEar(mic, spk *Timeline, cfg MouthToEarConfig) Measurement {
	cfg = cfg.withDefaults()
	in, out := mic.snapshot(), spk.snapshot()
	var m Measurement
	if len(in.marks) == 0 || len(out.marks) == 0 {
		return m
	}
	win, slack := samplesOf(cfg.Window), samplesOf(cfg.Slack)

	// The microphone windows: captured within [From, Until] and late
	// enough for the speaker to have been running MinDelay after them.
	first := out.marks[0].at.Add(-cfg.MinDelay)
	if cfg.From.After(first) {
		first = cfg.From
	}
	i0, i1 := in.indexAt(first), -1
	for s := i0; s+win <= len(in.pcm); s += win {
		if !cfg.Until.IsZero() && in.timeAt(s).Add(cfg.Window).After(cfg.Until) {
			break
		}
		i1 = s + win
	}
	if i1 < 0 {
		return m
	}

	// The overall delay, as speaker index − microphone index.
	j0 := out.indexAt(in.timeAt(i0).Add(cfg.MinDelay))
	span := samplesOf(cfg.MaxDelay - cfg.MinDelay)
	j1 := min(len(out.pcm), j0+(i1-i0)+span)
	if j1-j0 < win {
		return m
	}
	d, _ := Delay(in.pcm[i0:i1], out.pcm[j0:j1])
	if d > span {
		return m // the peak of a partial overlap: nothing in range
	}
	lag := j0 + d - i0

	var delays, snrs, corrs []float64
	for s := i0; s < i1; s += win {
		w := in.pcm[s : s+win]
		if rms(w) < silentRMS {
			continue
		}
		lo := max(s+lag-slack, out.indexAt(in.timeAt(s).Add(cfg.MinDelay)))
		hi := min(len(out.pcm), s+lag+win+slack)
		if hi-lo < win {
			continue
		}
		m.All++
		d, corr := Delay(w, out.pcm[lo:hi])
		m.Corrs = append(m.Corrs, corr)
		if corr < goodCorr {
			continue
		}
		delays = append(delays, float64(out.timeAt(lo+d).Sub(in.timeAt(s))))
		snrs = append(snrs, SNR(w, out.pcm[lo:hi], d))
		corrs = append(corrs, corr)
	}
	m.Good = len(delays)
	m.MouthToEar = time.Duration(Median(delays))
	m.SNR = Median(snrs)
	m.Corr = Median(corrs)
	return m
}

func rms(p []int16) float64 {
	var s float64
	for _, v := range p {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(max(1, len(p))))
}
