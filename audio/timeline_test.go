package audio

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// playFor drives a timeline as a device of period n that requests a
// period every interval (plus jitter) for d, starting at t, with a stall
// of stall before the request at stallAt; it returns the periods skipped.
func playFor(l *timeline, t time.Time, d, interval, jitter, stallAt, stall time.Duration, n int) int {
	rng := rand.New(rand.NewPCG(1, 2))
	skipped := 0
	for el := time.Duration(0); el < d; el += interval {
		at := t.Add(el)
		if jitter > 0 {
			at = at.Add(time.Duration(rng.Int64N(int64(jitter))))
		}
		if stall > 0 && el >= stallAt {
			at = at.Add(stall)
		}
		if l.skip(at, n, n) {
			skipped++
		}
	}
	return skipped
}

func TestTimelineSkipsWhatAStallLost(t *testing.T) {
	const n = 480 // 10 ms
	for _, tc := range []struct {
		name   string
		stall  time.Duration
		jitter time.Duration
		want   int // periods skipped, ±1
	}{
		{"steady", 0, 0, 0},
		{"late callbacks within the buffer", 0, 25 * time.Millisecond, 0},
		{"a 150 ms stall", 150 * time.Millisecond, 0, 15},
		{"a 150 ms stall among late callbacks", 150 * time.Millisecond, 8 * time.Millisecond, 15},
		{"a suspension beyond lostMax", 3 * time.Second, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l timeline
			// After a stall the device keeps its pace: requests go on every
			// 10 ms, each shifted by the stall, as PulseAudio's after it
			// restarted the stream.
			got := playFor(&l, time.Unix(0, 0), 5*time.Second, 10*time.Millisecond, tc.jitter, time.Second, tc.stall, n)
			assert.InDelta(t, tc.want, got, 1)
		})
	}
}

// A sound card whose clock runs 500 ppm slow falls behind the system clock
// by 0.5 ms a second: its timeline follows without skipping.
func TestTimelineFollowsASlowDeviceClock(t *testing.T) {
	var l timeline
	got := playFor(&l, time.Unix(0, 0), 120*time.Second, 10005*time.Microsecond, 0, 0, 0, 480)
	assert.Zero(t, got)
}

// After a stall the device waits catchUpAfter before it skips, for the
// packets the stall held back to arrive, then skips a period per period.
func TestTimelineCatchesUpAfterAPause(t *testing.T) {
	const n = 480
	var l timeline
	t0 := time.Unix(0, 0)
	at := t0
	for ; at.Sub(t0) < time.Second; at = at.Add(10 * time.Millisecond) {
		assert.False(t, l.skip(at, n, n))
	}
	at = at.Add(150 * time.Millisecond) // the stall
	var skips []time.Duration
	stalled := at
	for ; at.Sub(stalled) < time.Second; at = at.Add(10 * time.Millisecond) {
		if l.skip(at, n, n) {
			skips = append(skips, at.Sub(stalled))
		}
	}
	assert.InDelta(t, 15, len(skips), 1)
	if assert.NotEmpty(t, skips) {
		assert.GreaterOrEqual(t, skips[0], catchUpAfter)
		assert.Less(t, skips[len(skips)-1], catchUpAfter+200*time.Millisecond, "one period per period")
	}
}
