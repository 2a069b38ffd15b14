package audio

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/media/pcm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVirtualManualClockExactCounts(t *testing.T) {
	for _, period := range []time.Duration{10 * time.Millisecond, 20 * time.Millisecond} {
		t.Run(period.String(), func(t *testing.T) {
			ctx := testCtx(t, 10*time.Second)
			clock := NewManualClock(time.Unix(0, 0))
			rec := &pcm.Recorder{}
			v, err := NewVirtual(VirtualConfig{Period: period, Clock: clock, Source: &counter{}, Sink: rec})
			require.NoError(t, err)
			var capLog pcmLog
			play := &counter{}
			playCalls := 0
			require.NoError(t, v.Start(Callbacks{
				Capture:  capLog.capture,
				Playback: func(out []int16) { playCalls++; _, _ = play.ReadPCM(out) },
			}))
			require.NoError(t, clock.Advance(ctx, time.Second))
			// Advance is synchronous: every due tick has been handled.
			want := int(time.Second / period)
			pcm, calls := capLog.snapshot()
			assert.Equal(t, want, calls)
			assert.Equal(t, want, playCalls)
			assert.Equal(t, uint64(want), v.Periods())
			assert.Len(t, pcm, want*Samples(period))
			assert.Equal(t, want*Samples(period), rec.Len())
			m, d := gaps(pcm)
			assert.Zero(t, m+d)
			m, d = gaps(rec.Samples())
			assert.Zero(t, m+d)
			// Half a period more fires nothing.
			require.NoError(t, clock.Advance(ctx, period/2))
			assert.Equal(t, uint64(want), v.Periods())
			require.NoError(t, v.Close())
			require.NoError(t, v.Close())
			assert.NoError(t, v.Err())
			assert.Zero(t, clock.Tickers())
			require.NoError(t, clock.Advance(ctx, time.Second)) // no ticker left: returns at once
		})
	}
}

func TestVirtualRealClockPacing(t *testing.T) {
	v, err := NewVirtual(VirtualConfig{Direction: Capture})
	require.NoError(t, err)
	calls := 0
	start := time.Now()
	require.NoError(t, v.Start(Callbacks{Capture: func([]int16) { calls++ }}))
	ctx := testCtx(t, 5*time.Second)
	require.NoError(t, v.WaitPeriods(ctx, 100))
	elapsed := time.Since(start)
	require.NoError(t, v.Close())
	rate := float64(v.Periods()) / elapsed.Seconds()
	t.Logf("100 periods in %v (%.1f callbacks/s)", elapsed, rate)
	assert.InDelta(t, 100, rate, 15, "callbacks per second")
	assert.Equal(t, int(v.Periods()), calls)
}

func TestVirtualSourceEOFAndShortReads(t *testing.T) {
	ctx := testCtx(t, 5*time.Second)
	clock := NewManualClock(time.Unix(0, 0))
	src := &shortSource{left: 700}
	v, err := NewVirtual(VirtualConfig{Direction: Capture, Clock: clock, Source: src})
	require.NoError(t, err)
	var l pcmLog
	require.NoError(t, v.Start(Callbacks{Capture: l.capture}))
	require.NoError(t, clock.Advance(ctx, 30*time.Millisecond))
	require.NoError(t, v.Close())
	pcm, calls := l.snapshot()
	require.Equal(t, 3, calls)
	nonzero := 0
	for _, s := range pcm {
		if s != 0 {
			nonzero++
		}
	}
	assert.Equal(t, 700, nonzero, "source samples delivered, rest padded with silence")
}

// shortSource returns at most 100 samples per read of 7s, then io.EOF.
type shortSource struct{ left int }

func (s *shortSource) ReadPCM(p []int16) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	n := min(len(p), 100, s.left)
	for i := range n {
		p[i] = 7
	}
	s.left -= n
	return n, nil
}

func TestVirtualInterrupt(t *testing.T) {
	ctx := testCtx(t, 5*time.Second)
	clock := NewManualClock(time.Unix(0, 0))
	v, err := NewVirtual(VirtualConfig{Clock: clock})
	require.NoError(t, err)
	require.NoError(t, v.Start(Callbacks{Capture: func([]int16) { v.Interrupt(nil) }}))
	require.NoError(t, clock.Advance(ctx, 50*time.Millisecond))
	select {
	case <-v.Done():
	case <-ctx.Done():
		t.Fatal("device did not stop")
	}
	assert.ErrorIs(t, v.Err(), ErrInterrupted)
	assert.Equal(t, uint64(1), v.Periods())
	require.NoError(t, v.Close())
	assert.ErrorIs(t, v.Start(Callbacks{}), ErrClosed)
	assert.ErrorIs(t, v.WaitPeriods(context.Background(), 10), ErrClosed)
}

func TestPeriodValidation(t *testing.T) {
	for _, p := range []time.Duration{-time.Millisecond, 500 * time.Microsecond, 15500 * time.Microsecond, time.Second} {
		_, err := NewVirtual(VirtualConfig{Period: p})
		assert.ErrorIs(t, err, ErrFormat, p)
	}
	assert.Equal(t, 480, Samples(DefaultPeriod))
	assert.Equal(t, 960, Samples(20*time.Millisecond))
}

// liveSource models a call's jitter buffer behind a playback device: audio
// arrives in periods (packets filed by the network goroutines) and the
// device pulls it; a pull for audio that has not arrived is an underrun,
// which the listener hears as a glitch and after which a jitter buffer
// drops the late audio and raises its delay.
type liveSource struct {
	n         int // samples per period
	arrived   int
	pulled    int
	underruns int
}

func (l *liveSource) deliver(periods int) { l.arrived += periods * l.n }

func (l *liveSource) playback(out []int16) {
	if l.pulled+len(out) > l.arrived {
		l.underruns++
	}
	l.pulled += len(out)
}

// A stall of the whole process (a loaded machine) holds back both the
// device's ticks and the packets for its jitter buffer. The microphone
// hands over what it captured meanwhile at once; the speaker does not
// pull the stalled stretch before its packets have arrived (which would
// run the buffer dry), then catches up with the clock rather than
// keeping the stall as delay.
func TestVirtualStallCatchUp(t *testing.T) {
	const period = 10 * time.Millisecond
	v, err := NewVirtual(VirtualConfig{Period: period})
	require.NoError(t, err)
	src := &liveSource{n: Samples(period)}
	captured := 0
	step := v.stepper(Callbacks{Capture: func([]int16) { captured++ }, Playback: src.playback})

	t0 := time.Unix(0, 0)
	src.deliver(2) // the jitter buffer's depth
	k := 0
	tick := func() {
		src.deliver(1) // the packet due this period arrived before the tick
		step(t0.Add(time.Duration(k) * period))
		k++
	}
	for range 50 {
		tick()
	}
	require.Zero(t, src.underruns)
	require.Equal(t, 50, captured)

	// An 80 ms stall: no tick and no packet for 8 periods. The pacer runs
	// first when the process resumes; the packets held back follow.
	const stall = 8
	k += stall
	step(t0.Add(time.Duration(k) * period))
	k++
	src.deliver(stall + 1)
	assert.Equal(t, 50+stall+1, captured, "the microphone hands over the stalled periods at once")
	assert.Zero(t, src.underruns, "the speaker waits for the audio held back by the stall")
	assert.Less(t, src.pulled, (50+stall)*src.n, "the speaker is not pulling the stalled stretch at once")

	// Within half a second, back on the clock.
	for range 50 {
		tick()
	}
	assert.Zero(t, src.underruns)
	assert.Equal(t, k*src.n, src.pulled, "the speaker is back on the clock")
	assert.Equal(t, 2*src.n, src.arrived-src.pulled, "the buffer is back to its depth")
	assert.Equal(t, uint64(k), v.Periods())
}
