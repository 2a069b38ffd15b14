//go:build !race

package media

// Long simulations of the jitter buffer (a minute of audio or more on a
// simulated clock, in one goroutine): the race detector has nothing to
// check in them and slows them tenfold, so they build without it; the
// race detector's run checks the receiver's concurrency in the other tests.

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/dialtone-dev/dialtone/media/mediatest"
)

// TestJitterRecurringSpikes: a link (or a busy process) that holds a packet
// back by 30 ms every 3 s. The first spikes may be late; after that the
// buffer keeps the depth the spikes need, so later ones play in time, and
// once the spikes have stopped for a while the delay comes back down.
func TestJitterRecurringSpikes(t *testing.T) {
	const spikesUntil = 30 * time.Second
	sig := mediatest.MultiTone(70*SampleRate, 8)
	pk := capture(t, sig, nil)
	spike := periodicPeak(150, 75, int(spikesUntil/(20*time.Millisecond)), 30*time.Millisecond)
	var lateAt10s uint64
	var targetDuring, targetAfter time.Duration
	_, st := playout(t, schedule(pk, 1, spike), 69*time.Second, 3*time.Millisecond, func(now time.Duration, st ReceiverStats) {
		switch now {
		case 10*time.Second + 3*time.Millisecond:
			lateAt10s = st.Late
		case 29*time.Second + 3*time.Millisecond:
			targetDuring = st.Target
		case 68*time.Second + 3*time.Millisecond:
			targetAfter = st.Target
		}
	})
	t.Logf("late by 10 s: %d, total %d; target during spikes %v, long after %v", lateAt10s, st.Late, targetDuring, targetAfter)
	assert.LessOrEqual(t, lateAt10s, uint64(2), "only the first spikes may be late")
	assert.Equal(t, lateAt10s, st.Late, "spikes after the first ones must play in time")
	assert.GreaterOrEqual(t, targetDuring, 30*time.Millisecond)
	assert.LessOrEqual(t, targetAfter, 20*time.Millisecond, "the delay comes back down once the spikes stop")
	assert.Zero(t, st.Lost)
}

// TestJitterSteadyUnderPeaks: one packet in 40 (one every 800 ms) comes
// 15 ms late, so some half-second steering windows hold a peak and others
// do not. The target covers the peaks (they are 2.5 % of the packets), so
// once it has learnt them the buffer must hold still: neither late packets
// nor audio stretched and compressed in turn from one window to the next.
func TestJitterSteadyUnderPeaks(t *testing.T) {
	sig := mediatest.MultiTone(62*SampleRate, 8)
	pk := capture(t, sig, nil)
	spike := periodicPeak(40, 7, 0, 15*time.Millisecond)
	var at10 ReceiverStats
	_, st := playout(t, schedule(pk, 1, spike), 61*time.Second, 3*time.Millisecond, func(now time.Duration, st ReceiverStats) {
		if now == 10*time.Second+3*time.Millisecond {
			at10 = st
		}
	})
	moved := st.Expanded + st.Compressed - at10.Expanded - at10.Compressed
	t.Logf("after 10 s: late %d, stretched+compressed %v, target %v, typical wait %v", st.Late-at10.Late, moved, st.Target, st.Delay)
	assert.Equal(t, at10.Late, st.Late, "no late packet once the peaks are learnt")
	assert.Less(t, moved, 20*time.Millisecond, "the delay holds still")
	assert.Less(t, st.Delay, st.Target+5*time.Millisecond, "the typical packet waits the target, not target plus peak")
}

// TestJitterPeakTargetHolds: a 6 ms peak every 10 s for 40 s, then none.
// The first peak raises the target by the margin for any peak; the second
// shows they recur and raises it by the larger one. The quantile lets a
// pair of peaks 10 s apart go after about 3 s, so following it the target
// would drop and jump back at every peak, stretching and compressing the
// audio each time. The peaks' part of the target holds between peaks, and
// goes once they have stopped for relHold.
func TestJitterPeakTargetHolds(t *testing.T) {
	sig := mediatest.MultiTone(72*SampleRate, 8)
	pk := capture(t, sig, nil)
	peaks := periodicPeak(500, 250, 2000, 6*time.Millisecond)
	var atFirst, at25, at40 ReceiverStats
	var lowest time.Duration
	_, st := playout(t, schedule(pk, 1, peaks), 71*time.Second, 3*time.Millisecond, func(now time.Duration, st ReceiverStats) {
		switch {
		case now == 6*time.Second+3*time.Millisecond:
			atFirst = st
		case now == 17*time.Second+3*time.Millisecond:
			lowest = st.Target
		case now > 17*time.Second && now < 40*time.Second:
			lowest = min(lowest, st.Target)
			at40 = st
		}
		if now == 25*time.Second+3*time.Millisecond {
			// The buffer has stretched to the target the second peak
			// raised, in steps that each take two steering windows and
			// debtPatience waiting for a quiet frame (this signal has
			// none).
			at25 = st
		}
	})
	moved := at40.Expanded + at40.Compressed - at25.Expanded - at25.Compressed
	t.Logf("target after the first peak %v, lowest from the second until 40 s %v, at the end %v; audio moved from 25 s to 40 s %v", atFirst.Target, lowest, st.Target, moved)
	assert.Equal(t, 6*time.Millisecond+relMarginOnce, atFirst.Target, "one peak alone: the smaller margin")
	assert.GreaterOrEqual(t, lowest, 6*time.Millisecond+relMargin, "the target holds between peaks")
	assert.Zero(t, moved, "nothing stretched or compressed between peaks")
	assert.Equal(t, 10*time.Millisecond, st.Target, "and falls back once they have stopped")
	assert.Zero(t, st.Late)
	assert.Zero(t, st.Underruns)
}
