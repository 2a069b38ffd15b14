//go:build !race

package mediatest

// Signal processing in one goroutine, which the race detector only slows:
// these tests build without it (scripts/test.sh runs them in a pass of
// their own).

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

const period = SampleRate / 100 // 10 ms

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// record adds sig to a new Timeline in 10 ms periods from start; late maps
// a period index to how much later than its due time it is stamped.
func record(sig []int16, start time.Time, late map[int]time.Duration) *Timeline {
	var tl Timeline
	for k := 0; k+period <= len(sig); k += period {
		tl.AddAt(sig[k:k+period], start.Add(durationOf(k)+late[k/period]))
	}
	return &tl
}

// played is what a speaker that opened at spkStart plays when it hears
// sig (captured from t0) delay after it was captured.
func played(sig []int16, spkStart time.Time, delay time.Duration) []int16 {
	shift := samplesOf(spkStart.Sub(t0) - delay) // speaker sample 0 is microphone sample shift
	out := make([]int16, len(sig))
	for i := range out {
		if j := shift + i; j >= 0 && j < len(sig) {
			out[i] = sig[j]
		}
	}
	return out
}

// MouthToEar finds the delay on the wall clock: the speaker opens 137 ms
// after the microphone, plays the microphone's signal 45 ms late, and one
// of its periods is stamped 3 ms late (a slow tick), which must not move
// the result.
func TestMouthToEar(t *testing.T) {
	const delay = 45 * time.Millisecond
	sig := SpeechLike(3*SampleRate, 3)
	spkStart := t0.Add(137 * time.Millisecond)
	mic := record(sig, t0, nil)
	spk := record(played(sig, spkStart, delay), spkStart, map[int]time.Duration{100: 3 * time.Millisecond})

	m := MouthToEar(mic, spk, MouthToEarConfig{})
	assert.True(t, m.Found())
	assert.InDelta(t, delay.Seconds(), m.MouthToEar.Seconds(), 0.0005)
	assert.Greater(t, m.SNR, 40.0)
	assert.Greater(t, m.Corr, 0.99)
	assert.Equal(t, m.All, m.Good)
	assert.Len(t, m.Corrs, m.All)

	// Nothing heard: not found.
	silent := record(make([]int16, 3*SampleRate), spkStart, nil)
	assert.False(t, MouthToEar(mic, silent, MouthToEarConfig{}).Found())
	assert.False(t, MouthToEar(mic, &Timeline{}, MouthToEarConfig{}).Found())
}

// An echo line: the speaker plays a looped signal 700 ms after the
// microphone; a search from MinDelay on finds it, windows outside
// [From, Until] are not measured, and a delay range that excludes the
// true delay finds nothing.
func TestMouthToEarRange(t *testing.T) {
	const delay = 700 * time.Millisecond
	loop := ProbeTone(3*SampleRate, 9)
	sig := append(append([]int16(nil), loop...), loop...)
	mic := record(sig, t0, nil)
	spk := record(played(sig, t0, delay), t0, nil)

	from := t0.Add(time.Second)
	m := MouthToEar(mic, spk, MouthToEarConfig{
		From: from, Until: from.Add(4 * time.Second),
		MinDelay: delay, MaxDelay: delay + time.Second, Slack: 50 * time.Millisecond,
	})
	assert.True(t, m.Found())
	assert.Equal(t, 8, m.All, "4 s of 0.5 s windows")
	assert.Equal(t, 8, m.Good)
	assert.InDelta(t, delay.Seconds(), m.MouthToEar.Seconds(), 0.0005)

	// The probe has no near-repeats: a range without the true delay finds
	// nothing there.
	m = MouthToEar(mic, spk, MouthToEarConfig{From: from, Until: from.Add(2 * time.Second), MinDelay: delay + 100*time.Millisecond, MaxDelay: delay + time.Second})
	assert.False(t, m.Found(), "%+v", m)
	m = MouthToEar(mic, spk, MouthToEarConfig{From: from, Until: from.Add(2 * time.Second), MaxDelay: delay - 300*time.Millisecond})
	assert.False(t, m.Found(), "%+v", m)
}

// A jitter buffer that grows its delay by 20 ms halfway: every window is
// still found, and the median lands on one of the two delays.
func TestMouthToEarDelayChange(t *testing.T) {
	sig := SpeechLike(3*SampleRate, 5)
	mic := record(sig, t0, nil)
	first, second := played(sig, t0, 60*time.Millisecond), played(sig, t0, 80*time.Millisecond)
	out := append(first[:3*SampleRate/2:3*SampleRate/2], second[3*SampleRate/2:]...)
	spk := record(out, t0, nil)

	m := MouthToEar(mic, spk, MouthToEarConfig{})
	assert.Equal(t, m.All, m.Good)
	assert.GreaterOrEqual(t, m.Good, 5)
	assert.Contains(t, []time.Duration{60 * time.Millisecond, 70 * time.Millisecond, 80 * time.Millisecond}, m.MouthToEar.Round(time.Millisecond))
}

func TestTimelineSince(t *testing.T) {
	tl := record(make([]int16, 10*period), t0, nil)
	assert.Equal(t, 10*period, tl.Len())
	assert.Equal(t, 10*period, tl.Since(t0.Add(-time.Millisecond)))
	assert.Equal(t, 5*period, tl.Since(t0.Add(45*time.Millisecond)))
	assert.Equal(t, 0, tl.Since(t0.Add(time.Second)))
	_, _ = tl.WritePCM(make([]int16, period)) // stamped now, long after t0
	assert.Equal(t, period, tl.Since(t0.Add(time.Second)))
}
