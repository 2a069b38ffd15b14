package media

import (
	"sort"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/media/mediatest"
)

// capture encodes signal with a PCMU Sender (20 ms frames) and returns the
// packets; mute, if set, is consulted per 10 ms chunk.
func capture(t *testing.T, signal []int16, mute func(chunk int) bool) []rtp.Packet {
	t.Helper()
	w := &pushWriter{keep: true}
	s, err := NewSender(w, SenderConfig{Codec: CodecPCMU})
	require.NoError(t, err)
	for k := 0; (k+1)*480 <= len(signal); k++ {
		if mute != nil {
			s.SetMuted(mute(k))
		}
		_, err := s.WritePCM(signal[k*480 : (k+1)*480])
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())
	return w.sent
}

type arrival struct {
	at time.Duration
	p  *rtp.Packet
}

// playout feeds arrivals to a PCMU Receiver and reads 10 ms chunks every
// 10 ms of simulated time (starting at readPhase) for dur; observe, if set,
// sees the stats after every read.
func playout(t *testing.T, arr []arrival, dur, readPhase time.Duration, observe func(now time.Duration, st ReceiverStats)) ([]int16, ReceiverStats) {
	t.Helper()
	sort.SliceStable(arr, func(i, j int) bool { return arr[i].at < arr[j].at })
	clk := newFakeClock()
	base := clk.t
	r, err := NewReceiver(ReceiverConfig{Codec: CodecPCMU, Now: clk.now})
	require.NoError(t, err)
	defer r.Close()
	var out []int16
	chunk := make([]int16, 480)
	i := 0
	for now := readPhase; now < dur; now += 10 * time.Millisecond {
		for i < len(arr) && arr[i].at <= now {
			clk.t = base.Add(arr[i].at)
			r.Push(arr[i].p)
			i++
		}
		clk.t = base.Add(now)
		_, err := r.ReadPCM(chunk)
		require.NoError(t, err)
		out = append(out, chunk...)
		if observe != nil {
			observe(now, r.Stats())
		}
	}
	return out, r.Stats()
}

// schedule gives packet i the arrival i·20ms·scale + 5 ms + extra(i).
func schedule(pk []rtp.Packet, scale float64, extra func(i int) time.Duration) []arrival {
	arr := make([]arrival, len(pk))
	for i := range pk {
		at := time.Duration(float64(i)*scale*float64(20*time.Millisecond)) + 5*time.Millisecond
		if extra != nil {
			at += extra(i)
		}
		arr[i] = arrival{at: at, p: &pk[i]}
	}
	return arr
}

func assertClean(t *testing.T, ref, out []int16) {
	t.Helper()
	d, c := mediatest.Delay(ref, out)
	snr := mediatest.SNR(ref, out, d)
	t.Logf("delay %.1f ms corr %.3f SNR %.1f dB", float64(d)/48, c, snr)
	assert.Greater(t, snr, 25.0)
}

func TestJitterReorder(t *testing.T) {
	sig := mediatest.MultiTone(3*SampleRate, 1)
	pk := capture(t, sig, nil)
	// Every third packet arrives 8 ms late, after its successor.
	arr := schedule(pk, 1, func(i int) time.Duration {
		if i%3 == 1 {
			return 28 * time.Millisecond
		}
		return 0
	})
	out, st := playout(t, arr, 3200*time.Millisecond, 0, nil)
	t.Logf("%+v", st)
	assert.Zero(t, st.Lost)
	assert.LessOrEqual(t, st.Late, uint64(1), "only the first, before the buffer adapts")
	assert.Equal(t, uint64(len(pk)), st.Received)
	// After adapting, the audio is intact.
	snr, _ := windowSNR(sig[SampleRate:], out[SampleRate:])
	assert.Greater(t, snr, 25.0)
}

func TestJitterDuplicates(t *testing.T) {
	sig := mediatest.MultiTone(2*SampleRate, 2)
	pk := capture(t, sig, nil)
	arr := schedule(pk, 1, nil)
	arr = append(arr, schedule(pk, 1, func(int) time.Duration { return 3 * time.Millisecond })...)
	arr = append(arr, arrival{at: 1500 * time.Millisecond, p: &pk[3]}) // a very old duplicate
	out, st := playout(t, arr, 2200*time.Millisecond, 0, nil)
	assert.Equal(t, uint64(len(pk)+1), st.Duplicate)
	assert.Zero(t, st.Lost)
	assert.Zero(t, st.Late)
	assertClean(t, sig, out)
}

func TestJitterWrapAround(t *testing.T) {
	sig := mediatest.MultiTone(4*SampleRate, 3)
	pk := capture(t, sig, nil)
	// Start 50 packets before both the sequence number and the timestamp wrap.
	seq0, ts0 := pk[0].SequenceNumber, pk[0].Timestamp
	for i := range pk {
		pk[i].SequenceNumber = pk[i].SequenceNumber - seq0 - 50
		pk[i].Timestamp = pk[i].Timestamp - ts0 + (1<<32 - 50*160)
	}
	out, st := playout(t, schedule(pk, 1, nil), 4200*time.Millisecond, 0, nil)
	assert.Zero(t, st.Lost)
	assert.Zero(t, st.Late)
	assert.Zero(t, st.Resyncs)
	assert.Equal(t, uint64(len(pk)), st.Received)
	assertClean(t, sig, out)
}

func TestJitterLossAccounting(t *testing.T) {
	sig := mediatest.MultiTone(3*SampleRate, 4)
	pk := capture(t, sig, nil)
	var arr []arrival
	dropped := 0
	for _, a := range schedule(pk, 1, nil) {
		i := int(a.p.SequenceNumber - pk[0].SequenceNumber)
		if i%7 == 3 || (i >= 60 && i < 65) { // scattered losses and a 5-packet burst
			dropped++
			continue
		}
		arr = append(arr, a)
	}
	_, st := playout(t, arr, 3200*time.Millisecond, 0, nil)
	assert.Equal(t, int64(dropped), st.Lost)
	assert.Positive(t, st.Concealed)
	assert.Zero(t, st.Late)
}

func TestJitterLatePacketRaisesTarget(t *testing.T) {
	sig := mediatest.MultiTone(3*SampleRate, 5)
	pk := capture(t, sig, nil)
	arr := schedule(pk, 1, func(i int) time.Duration {
		if i == 50 {
			return 80 * time.Millisecond
		}
		return 0
	})
	var before, after time.Duration
	_, st := playout(t, arr, 3200*time.Millisecond, 0, func(now time.Duration, st ReceiverStats) {
		if now == 900*time.Millisecond {
			before = st.Target
		}
		if now == 1200*time.Millisecond {
			after = st.Target
		}
	})
	assert.Equal(t, uint64(1), st.Late)
	assert.Equal(t, int64(0), st.Lost, "a late packet was received, not lost")
	assert.Greater(t, after, before+50*time.Millisecond)
	assert.LessOrEqual(t, after, 200*time.Millisecond)
}

func TestJitterBurstAfterStall(t *testing.T) {
	sig := mediatest.MultiTone(4*SampleRate, 6)
	pk := capture(t, sig, nil)
	// The network stalls for 300 ms, then delivers everything at once.
	arr := schedule(pk, 1, func(i int) time.Duration {
		at := time.Duration(i)*20*time.Millisecond + 5*time.Millisecond
		if at >= time.Second && at < 1300*time.Millisecond {
			return 1300*time.Millisecond - at
		}
		return 0
	})
	var maxBuf time.Duration
	_, st := playout(t, arr, 4200*time.Millisecond, 0, func(now time.Duration, st ReceiverStats) {
		maxBuf = max(maxBuf, st.Buffered)
	})
	t.Logf("stats %+v max buffered %v", st, maxBuf)
	assert.Zero(t, st.Lost)
	assert.Positive(t, st.Late, "packets behind a 300 ms stall are late")
	assert.LessOrEqual(t, maxBuf, 400*time.Millisecond)
	assert.Zero(t, st.Resyncs)
}

func TestJitterClockDrift(t *testing.T) {
	for _, tc := range []struct {
		name  string
		scale float64 // sender packet spacing relative to ours
	}{{"sender-fast", 1 / 1.005}, {"sender-slow", 1.005}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // CPU-bound simulation: use both cores
			const minutes = 2
			sig := mediatest.SpeechLike(minutes*60*SampleRate, 7)
			pk := capture(t, sig, nil)
			var maxBuf, lastBuf time.Duration
			var lastDelay time.Duration
			_, st := playout(t, schedule(pk, tc.scale, nil), minutes*time.Minute-2*time.Second, 3*time.Millisecond,
				func(now time.Duration, st ReceiverStats) {
					if now > 10*time.Second {
						maxBuf = max(maxBuf, st.Buffered)
					}
					lastBuf, lastDelay = st.Buffered, st.Delay
				})
			t.Logf("after %d min: %+v; max buffered %v, last %v, delay %v", minutes, st, maxBuf, lastBuf, lastDelay)
			// 0.5 % of 2 minutes is 600 ms: without compensation the buffer
			// would grow (or starve) by that much.
			assert.Less(t, maxBuf, 120*time.Millisecond)
			assert.Less(t, lastDelay, 60*time.Millisecond)
			assert.Zero(t, st.Lost)
			assert.LessOrEqual(t, st.Late, uint64(3))
			if tc.scale < 1 {
				assert.Greater(t, st.Compressed, 450*time.Millisecond)
			} else {
				assert.Greater(t, st.Expanded, 450*time.Millisecond)
			}
		})
	}
}

func TestJitterMuteGap(t *testing.T) {
	sig := mediatest.MultiTone(5*SampleRate, 8)
	muted := func(k int) bool { return k >= 150 && k < 350 } // 2 s muted from 1.5 s
	pk := capture(t, sig, muted)
	require.Equal(t, 150, len(pk)) // 250 frames, 100 of them muted
	var markers int
	for i := range pk {
		if pk[i].Marker {
			markers++
			assert.Equal(t, 75, i, "marker on the first packet after the gap")
		}
	}
	assert.Equal(t, 1, markers)
	out, st := playout(t, schedule2(pk), 5200*time.Millisecond, 0, nil)
	assert.Zero(t, st.Lost)
	assert.Zero(t, st.Late)
	// Same delay before and after the gap, and silence during it.
	d1, _ := mediatest.Delay(sig[:SampleRate], out[:2*SampleRate])
	d2, _ := mediatest.Delay(sig[4*SampleRate:], out[4*SampleRate:])
	assert.InDelta(t, d1, d2, 48)
	assert.Less(t, LevelDBov(out[int(2.2*SampleRate):int(3.2*SampleRate)]), -60.0)
}

// schedule2 times packets by their RTP timestamps (so gaps stay gaps).
func schedule2(pk []rtp.Packet) []arrival {
	arr := make([]arrival, len(pk))
	for i := range pk {
		ticks := pk[i].Timestamp - pk[0].Timestamp
		arr[i] = arrival{at: time.Duration(ticks)*time.Second/8000 + 25*time.Millisecond, p: &pk[i]}
	}
	return arr
}

// periodicPeak delays packet i by d when i%every == phase and i < until
// (until 0: no end), for schedule: a recurring delay peak.
func periodicPeak(every, phase, until int, d time.Duration) func(i int) time.Duration {
	return func(i int) time.Duration {
		if i%every == phase && (until == 0 || i < until) {
			return d
		}
		return 0
	}
}

// senderStall: the sender sends nothing from at for length, then what
// fell due at once.
type senderStall struct{ at, length time.Duration }

// senderStalls delays the 20 ms packets (for schedule) that fall due in
// one of the stalls until the stall ends.
func senderStalls(stalls ...senderStall) func(i int) time.Duration {
	return func(i int) time.Duration {
		at := time.Duration(i) * 20 * time.Millisecond
		for _, s := range stalls {
			if at >= s.at && at < s.at+s.length {
				return s.at + s.length - at
			}
		}
		return 0
	}
}

// TestJitterForgetsStartupStep: the stream's first packet comes a frame
// ahead of the rest (at 10 ms frames on loopback the first packet passes
// before the pipeline's queues have filled, and every later one comes 9 ms
// behind it). That is one step in the path's delay, not a second of
// peaks: once the start-up packets are behind, the target is what the
// steady stream needs, as on a stream without the step.
func TestJitterForgetsStartupStep(t *testing.T) {
	sig := mediatest.MultiTone(6*SampleRate, 6)
	pk := capture(t, sig, nil)
	steady := func(int) time.Duration { return 0 }
	step := func(i int) time.Duration {
		if i == 0 {
			return 0
		}
		return 10 * time.Millisecond
	}
	_, want := playout(t, schedule(pk, 1, steady), 5*time.Second, 3*time.Millisecond, nil)
	_, got := playout(t, schedule(pk, 1, step), 5*time.Second, 3*time.Millisecond, nil)
	t.Logf("target without the step %v, with it %v", want.Target, got.Target)
	assert.Equal(t, want.Target, got.Target)
	assert.Zero(t, got.Late)
	assert.Zero(t, got.Underruns)
}

// TestJitterMarginUnderMinDelay: peaks of 6 ms, under the 10 ms minimum
// but over half of it, recur every second. The target holds them with the
// same margin as higher peaks: a target of just the minimum left 4 ms over
// peaks that a busy process exceeds now and then.
func TestJitterMarginUnderMinDelay(t *testing.T) {
	sig := mediatest.MultiTone(12*SampleRate, 6)
	pk := capture(t, sig, nil)
	peaks := periodicPeak(50, 17, 0, 6*time.Millisecond)
	_, st := playout(t, schedule(pk, 1, peaks), 11*time.Second, 3*time.Millisecond, nil)
	t.Logf("target %v, typical wait %v", st.Target, st.Delay)
	assert.GreaterOrEqual(t, st.Target, 6*time.Millisecond+relMargin)
	assert.Zero(t, st.Late)
	assert.Zero(t, st.Underruns)
}

// TestJitterOneOffStall: the sender stalls once, for 60 ms, then sends
// what fell due at once; longer than the buffer and the underrun's wait,
// so some of it is late. The delay goes up by the stall and the margin for
// any peak, not by the one for recurring peaks, and comes back sooner than
// for those: the histogram keeps only the first packet of the burst (the
// rest queued behind it), and one packet does not make peaks recur.
// Filing the whole staircase (60, 40, 20 ms) would count it as recurring
// peaks and hold the target up for 20 s; and the late packets' boosts,
// each standing on the target the one before had raised, would take it
// far above the stall.
func TestJitterOneOffStall(t *testing.T) {
	sig := mediatest.MultiTone(28*SampleRate, 8)
	pk := capture(t, sig, nil)
	const stallAt, stall = 5 * time.Second, 60 * time.Millisecond
	arr := schedule(pk, 1, senderStalls(senderStall{stallAt, stall}))
	var highest time.Duration
	backAt := time.Duration(-1)
	var peak time.Duration
	_, st := playout(t, arr, 27*time.Second, 3*time.Millisecond, func(now time.Duration, st ReceiverStats) {
		peak = max(peak, st.Target)
		if now > stallAt+2*time.Second {
			highest = max(highest, st.Target)
			if backAt < 0 && st.Target == 10*time.Millisecond {
				backAt = now
			}
		}
	})
	t.Logf("late %d, underruns %d; highest target from 7 s on %v, back to MinDelay at %v", st.Late, st.Underruns, highest, backAt)
	assert.Less(t, peak, stall+relMargin, "under the stall and the margin for recurring peaks")
	// The late packets raised the target by their lateness plus 5 ms; it
	// holds that (a step of 5 ms is too small to come down by).
	assert.LessOrEqual(t, highest, stall+relMarginOnce+5*time.Millisecond, "the margin for any peak")
	assert.GreaterOrEqual(t, highest, stall+relMarginOnce, "held for a while")
	require.Positive(t, backAt, "back at MinDelay before the run ends")
	assert.Greater(t, backAt, stallAt+5*time.Second, "the stall is remembered for a while")
	// The quantile forgets one packet in about 10 s this early in a stream
	// (its histogram not yet full), then the hold for any peak, then the
	// target's own: about 19 s. Held as a recurring peak, 24 s or more.
	assert.Less(t, backAt, stallAt+20*time.Second, "but not taken for recurring peaks")
	assert.Equal(t, 10*time.Millisecond, st.Target)
}

// TestJitterUnderrunWaitsForStalledSender: the sender stalls every 5 s
// (a busy process: its audio thread gets no CPU), each time for longer
// (25, 45, 60 ms), then sends what fell due at once. Each stall empties the
// buffer; it waits for the packet that is due (concealing without moving
// the timeline) instead of giving its slot up at once, so the packet plays
// and nothing is late or dropped (giving the slot up at once makes one
// late packet per stall). TestSimLossSNR and the real-time loss runs
// check that the wait costs nothing when the packet is lost instead.
func TestJitterUnderrunWaitsForStalledSender(t *testing.T) {
	sig := mediatest.MultiTone(18*SampleRate, 8)
	pk := capture(t, sig, nil)
	arr := schedule(pk, 1, senderStalls(
		senderStall{3 * time.Second, 25 * time.Millisecond},
		senderStall{8 * time.Second, 45 * time.Millisecond},
		senderStall{13 * time.Second, 60 * time.Millisecond},
	))
	var at5 ReceiverStats
	_, st := playout(t, arr, 17*time.Second, 3*time.Millisecond, func(now time.Duration, st ReceiverStats) {
		if now == 5*time.Second+3*time.Millisecond {
			at5 = st
		}
	})
	t.Logf("first stall: late %d, underruns %d, concealed %d; in all: late %d, underruns %d, concealed %d, target %v, typical wait %v",
		at5.Late, at5.Underruns, at5.Concealed, st.Late, st.Underruns, st.Concealed, st.Target, st.Delay)
	assert.Zero(t, at5.Late, "the first stall, on a new stream")
	assert.Equal(t, uint64(1), at5.Underruns, "the first stall: one packet played after a wait")
	assert.Equal(t, uint64(3), st.Underruns, "each stall, longer than the last, empties the buffer once")
	assert.Zero(t, st.Late, "packets held up by the stalls play, not dropped as late")
	assert.Zero(t, st.Lost)
}

// TestJitterUnderrunForLostPacket: on a clean link with a shallow buffer one
// packet is lost while nothing else is queued, so the underrun waits for it
// (see TestJitterUnderrunWaitsForStalledSender) and it never comes. The
// wait must then count as the lost frame's concealment: the timeline ends
// where giving the slot up at once would have put it, no audio added, no
// delay gained, the packets after it on time.
func TestJitterUnderrunForLostPacket(t *testing.T) {
	sig := mediatest.MultiTone(4*SampleRate, 6)
	pk := capture(t, sig, nil)
	arr := schedule(pk, 1, nil)
	arr = append(arr[:100:100], arr[101:]...)
	var before ReceiverStats // at 1.5 s: the start-up steering is done
	out, st := playout(t, arr, 3900*time.Millisecond, 3*time.Millisecond, func(now time.Duration, st ReceiverStats) {
		if now == 1503*time.Millisecond {
			before = st
		}
	})
	t.Logf("stats %+v", st)
	assert.Equal(t, int64(1), st.Lost)
	assert.Zero(t, st.Late)
	assert.Zero(t, st.Underruns, "the packet waited for never came: a loss, not a late frame")
	assert.Greater(t, st.Concealed, before.Concealed, "the underrun waited, concealing")
	assert.Equal(t, before.Expanded, st.Expanded, "no audio added")
	assert.Equal(t, before.Compressed, st.Compressed)
	// The last second plays with the delay the first second had.
	d0, _ := mediatest.Delay(sig[:SampleRate], out[:SampleRate+4800])
	d1, _ := mediatest.Delay(sig[2*SampleRate:3*SampleRate], out[2*SampleRate:3*SampleRate+4800])
	assert.Equal(t, d0, d1, "the delay after the loss is the delay before it")
}

// TestReceiverSteadyStateAllocs checks that a receiver allocates nothing
// per packet once running: at 100 calls every allocation on this path
// brings the next garbage collection closer, and a collection stalls
// every call's audio for a moment.
func TestReceiverSteadyStateAllocs(t *testing.T) {
	pk := capture(t, mediatest.MultiTone(SampleRate*4, 3), nil)
	clk := newFakeClock()
	r, err := NewReceiver(ReceiverConfig{Codec: CodecPCMU, Now: clk.now})
	require.NoError(t, err)
	defer r.Close()
	chunk := make([]int16, 480)
	i := 0
	step := func() {
		// One 20 ms packet arrives, two 10 ms reads.
		r.Push(&pk[i%len(pk)])
		for range 2 {
			clk.t = clk.t.Add(10 * time.Millisecond)
			if _, err := r.ReadPCM(chunk); err != nil {
				t.Fatal(err)
			}
		}
		i++
	}
	for range 100 { // settle: buffers and free lists at their working size
		step()
	}
	allocs := testing.AllocsPerRun(len(pk)-101, step)
	assert.Zero(t, allocs, "allocations per packet")
	assert.Zero(t, r.Stats().Concealed, "the stream played without gaps")
}
