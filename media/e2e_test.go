//go:build !race

package media

// Measurements in real time with bounds on delay and SNR: built without
// the race detector, which slows the pipeline until the bounds measure it
// rather than the code. The race detector's run checks the same Sender and
// Receiver across goroutines (TestSenderReceiverPush, TestDTMFEndToEnd).

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/media/mediatest"
)

// lossyTrack drops packets (after the first skip ones) with probability
// pct/100 before they reach pion, like a lossy network.
type lossyTrack struct {
	*Track
	mu      sync.Mutex
	rng     *rand.Rand
	pct     float64
	skip    int
	n       int
	dropped atomic.Int64
}

func (l *lossyTrack) WriteRTP(p *rtp.Packet) error {
	l.mu.Lock()
	l.n++
	drop := l.n > l.skip && l.rng.Float64()*100 < l.pct
	l.mu.Unlock()
	if drop {
		l.dropped.Add(1)
		return nil
	}
	return l.Track.WriteRTP(p)
}

type e2eResult struct {
	delayMs    float64   // mouth-to-ear over the whole signal
	winDelayMs []float64 // per 0.5 s window
	snr        float64   // median of windows
	stats      ReceiverStats
	dropped    int64
	sent       SenderStats
}

// runE2E sends a multi-tone through Sender → pion → pion → Receiver with
// both ends paced by 10 ms device-like clocks, and measures what came out.
func runE2E(t *testing.T, speech bool, frameMs int, lossPct float64, lossHint int) e2eResult {
	t.Helper()
	// In 10 ms chunks: 1.5 s of silence, then 6 s of signal (twelve 0.5 s
	// windows). The silence lets the jitter buffer settle first: at 10 ms
	// frames the first packet often comes a frame ahead of the rest, and
	// the buffer stretches once or twice in its first second to make up
	// for the slack it started with; with a shorter silence those
	// stretches would fall on the first windows and spoil the correlation.
	const prefix, sigLen, tail = 150, 600, 20
	signal := mediatest.MultiTone(sigLen*480, 11)
	if speech {
		signal = mediatest.SpeechLike(sigLen*480, 11)
	}
	input := make([]int16, (prefix+sigLen+tail)*480)
	copy(input[prefix*480:], signal)

	track := &lossyTrack{Track: NewTrack("audio", "e2e"), rng: rand.New(rand.NewPCG(uint64(lossPct*10), 42)), pct: lossPct, skip: 30}
	rcvCh := make(chan *Receiver, 1)
	loopbackPair(t, track, func(tr *webrtc.TrackRemote) {
		r, err := NewTrackReceiver(tr, ReceiverConfig{FrameMillis: frameMs})
		if !assert.NoError(t, err) {
			return
		}
		rcvCh <- r
	})
	snd, err := NewSender(track, SenderConfig{FrameMillis: frameMs})
	require.NoError(t, err)
	defer snd.Close()
	snd.SetPacketLoss(lossHint)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now().Add(20 * time.Millisecond)
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		clock(ctx, start, 10*time.Millisecond, func(k int) bool {
			if k >= prefix+sigLen+tail {
				return false
			}
			_, err := snd.WritePCM(input[k*480 : (k+1)*480])
			return err == nil || k < 20 // early writes may race the DTLS handshake
		})
	}()
	var rcv *Receiver
	select {
	case rcv = <-rcvCh:
	case <-ctx.Done():
		t.Fatal("no remote track")
	}
	defer rcv.Close()
	// The receiving device clock starts now, at an arbitrary phase.
	rstart := time.Now()
	var out []int16
	chunk := make([]int16, 480)
	clock(ctx, rstart, 10*time.Millisecond, func(k int) bool {
		_, err := rcv.ReadPCM(chunk)
		require.NoError(t, err)
		out = append(out, chunk...)
		return time.Since(start) < time.Duration(prefix+sigLen+tail+10)*10*time.Millisecond
	})
	<-sendDone

	sigStart := start.Add(prefix * 10 * time.Millisecond)
	lag, corr := mediatest.Delay(signal, out)
	toMs := func(lag int) float64 {
		return float64(rstart.Sub(sigStart))/1e6 + float64(lag)/48
	}
	res := e2eResult{delayMs: toMs(lag), stats: rcv.Stats(), dropped: track.dropped.Load(), sent: snd.Stats()}
	off := int(max(0, sigStart.Sub(rstart)) * SampleRate / time.Second) // align out to the signal start
	if off < len(out) {
		var snrs, corrs []float64
		for _, w := range mediatest.Windows(signal, out[off:], 24000, 200*48) {
			res.winDelayMs = append(res.winDelayMs, toMs(w.Delay+off))
			snrs = append(snrs, w.SNR)
			corrs = append(corrs, w.Corr)
		}
		res.snr = mediatest.Median(snrs)
		assert.Greater(t, mediatest.Median(corrs), 0.5, "signal not found in output")
	}
	t.Logf("speech %v, frame %d ms, loss %.0f%% (hint %d): mouth-to-ear %.1f ms (windows p50 %.1f ms), corr %.3f, SNR p50 %.1f dB; dropped %d; stats %+v",
		speech, frameMs, lossPct, lossHint, res.delayMs, mediatest.Median(res.winDelayMs), corr, res.snr, res.dropped, res.stats)
	return res
}

func TestEndToEndLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	// Speech-like content: unlike a sum of tones it has no near-periodic
	// structure, so a 0.5 s window cannot lock onto a neighbouring period
	// after the jitter buffer stretched once.
	clean20 := runE2E(t, true, 20, 0, 0)
	clean10 := runE2E(t, true, 10, 0, 0)
	for _, r := range []e2eResult{clean20, clean10} {
		assert.Zero(t, r.stats.Lost)
	}
	assert.Greater(t, clean20.snr, 8.0)
	// 10 ms frames give the jitter buffer half the slack; a late packet
	// under -race costs a stretch, and with it a window or two.
	assert.Greater(t, clean10.snr, 6.0)
	// Goals are 45 / 30 ms; the bounds leave room for -race on 2 cores.
	assert.Less(t, mediatest.Median(clean20.winDelayMs), 70.0, "mouth-to-ear at 20 ms frames")
	assert.Less(t, mediatest.Median(clean10.winDelayMs), 60.0, "mouth-to-ear at 10 ms frames")
	assert.Greater(t, mediatest.Median(clean10.winDelayMs), 6.0, "codec delay alone is 6.5 ms")

	// Loss: speech-like signal (what FEC is built for), compared with a
	// clean run using the same encoder settings (FEC on).
	base := runE2E(t, true, 20, 0, 10)
	assert.Greater(t, base.snr, 8.0)
	for _, pct := range []float64{10, 20} {
		r := runE2E(t, true, 20, pct, int(pct))
		assert.InDelta(t, r.dropped, r.stats.Lost, 2, "every dropped packet is counted lost")
		assert.Greater(t, r.stats.FECRecovered, uint64(0))
		t.Logf("SNR loss vs clean at %.0f%%: %.1f dB", pct, base.snr-r.snr)
		// The ≤ 3 dB goal at 10 % is asserted on a simulated clock, where it
		// is deterministic (TestSimLossSNR). In real time a run under -race
		// moves by a few dB with the scheduler (jitter-buffer stretches
		// shift the 0.5 s windows; the 6 s signal gives enough windows for
		// the clean baseline to stay well above 8 dB under a parallel test
		// load): here only check that the stream survives the loss.
		assert.Greater(t, r.snr, 2.0, "speech still comes through at %.0f%% loss", pct)
	}
}
