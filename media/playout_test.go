//go:build !race

package media

// Playout measured on a simulated clock, one goroutine: the race detector
// has nothing to check here and slows it tenfold, so these build without
// it.

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/assert"

	"github.com/dialtone-dev/dialtone/media/mediatest"
)

// speechFor returns d of synthesised speech: the speech set's utterances
// one after another, 300 ms apart, over and over.
func speechFor(t *testing.T, d time.Duration) []int16 {
	t.Helper()
	var set []int16
	for _, u := range mediatest.SpeechSet() {
		set = append(set, mediatest.Speech(t, u)...)
		set = append(set, make([]int16, 300*SampleRate/1000)...)
	}
	n := int(d.Seconds() * SampleRate)
	out := make([]int16, 0, n+len(set))
	for len(out) < n {
		out = append(out, set...)
	}
	return out[:n]
}

// queueJitter gives packet i (sent every 20 ms) a one-way delay of
// mean + N(0, sd), floored at zero, behind a queue that keeps the packets
// in order: a packet whose draw would overtake the one before leaves just
// after it (as internal/netimpair's relay does).
func queueJitter(pk []rtp.Packet, mean, sd time.Duration, seed uint64) []arrival {
	rng := rand.New(rand.NewPCG(seed, 7))
	arr := make([]arrival, len(pk))
	var last time.Duration
	for i := range pk {
		sent := time.Duration(i) * 20 * time.Millisecond
		d := max(0, mean+time.Duration(rng.NormFloat64()*float64(sd)))
		at := max(sent+d, last+50*time.Microsecond)
		last = at
		arr[i] = arrival{at: at, p: &pk[i]}
	}
	return arr
}

// TestPlayoutSettlesOnCleanLink: on a steady link the buffer finds its
// delay in the first second and then never moves it again, so nothing of
// the speech is stretched or squeezed.
func TestPlayoutSettlesOnCleanLink(t *testing.T) {
	sig := speechFor(t, 60*time.Second)
	pk := capture(t, sig, nil)
	var at1s ReceiverStats
	_, st := playout(t, schedule(pk, 1, nil), 59*time.Second, 3*time.Millisecond, func(now time.Duration, st ReceiverStats) {
		if now == time.Second+3*time.Millisecond {
			at1s = st
		}
	})
	t.Logf("adjustments by 1 s %d, by 59 s %d; stretched %v, compressed %v; target %v, delay %v",
		at1s.Adjustments, st.Adjustments, st.Expanded, st.Compressed, st.Target, st.Delay)
	assert.Equal(t, at1s.Adjustments, st.Adjustments, "no playout adjustment after the first second")
	assert.Equal(t, at1s.Expanded+at1s.Compressed, st.Expanded+st.Compressed)
	assert.Zero(t, st.Late)
}

// TestPlayoutSteadyUnderJitter: under 20 ± 10 ms of queueing jitter the
// buffer settles on a delay that covers it and then changes it no more
// than a few times a minute, without late packets and without holding
// more delay than the jitter needs.
func TestPlayoutSteadyUnderJitter(t *testing.T) {
	const length = 3 * time.Minute
	sig := speechFor(t, length)
	pk := capture(t, sig, nil)
	for seed := uint64(1); seed <= 3; seed++ {
		var at10s ReceiverStats
		_, st := playout(t, queueJitter(pk, 20*time.Millisecond, 10*time.Millisecond, seed), length-time.Second, 3*time.Millisecond,
			func(now time.Duration, st ReceiverStats) {
				if now == 10*time.Second+3*time.Millisecond {
					at10s = st
				}
			})
		minutes := (length - 11*time.Second).Minutes()
		perMin := float64(st.Adjustments-at10s.Adjustments) / minutes
		t.Logf("seed %d: %.1f adjustments/min after 10 s (%d by then); late %d, underruns %d; target %v, delay %v; stretched %v, compressed %v",
			seed, perMin, at10s.Adjustments, st.Late, st.Underruns, st.Target, st.Delay, st.Expanded, st.Compressed)
		assert.LessOrEqual(t, perMin, 3.0, "a few adjustments a minute at most")
		assert.LessOrEqual(t, st.Late-at10s.Late, uint64(length/time.Minute), "about one late packet a minute at most")
		assert.Less(t, st.Delay, 90*time.Millisecond, "no more delay than the jitter needs")
	}
}
