//go:build cgo

package audio_test

import (
	"context"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/audio"
	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/internal/pulsetest"
	"github.com/dialtone-dev/dialtone/signaling/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Beeps: burstLen of tone every burstEvery, so each received onset pairs
// with one sent onset (the delay stays well under burstEvery).
const (
	burstEvery = 24000 // samples: 500 ms
	burstLen   = 4800  // 100 ms
	subBlock   = 120   // onset resolution at the ear: 2.5 ms
)

// mouth plays beeps of freq and notes when each began, in playback
// callback time (when the device asked for the period).
type mouth struct {
	freq   float64
	n      int
	mu     sync.Mutex
	onsets []time.Time
}

func (m *mouth) play(out []int16) {
	now := time.Now()
	for i := range out {
		k := m.n % burstEvery
		if k == 0 {
			m.mu.Lock()
			m.onsets = append(m.onsets, now.Add(time.Duration(i)*time.Second/audio.SampleRate))
			m.mu.Unlock()
		}
		if k < burstLen {
			out[i] = int16(0.5 * 32767 * math.Sin(2*math.Pi*m.freq*float64(m.n)/audio.SampleRate))
		}
		m.n++
	}
}

// earDetector notes when beeps of freq begin in what it captures, in
// capture callback time (the period's last sample arrived at the call).
type earDetector struct {
	freq float64
	// atCallback notes an onset at the time of the callback that brought
	// it, not at the onset's sample.
	atCallback bool

	on     bool
	quiet  int // sub-blocks below the off level since the beep
	mu     sync.Mutex
	onsets []time.Time
}

func (e *earDetector) capture(p []int16) {
	now := time.Now()
	for j := 0; j+subBlock <= len(p); j += subBlock {
		l := level(p[j:j+subBlock], e.freq)
		// A beep ends after 50 ms below the off level: a dip inside one
		// (a concealed packet, a jitter-buffer stretch) is not a new onset.
		switch {
		case e.on && l < 0.02:
			if e.quiet++; e.quiet >= 20 {
				e.on = false
			}
		case e.on:
			e.quiet = 0
		case l > 0.1:
			e.on, e.quiet = true, 0
			end := len(p) - j // samples from this block's start to the period's end
			if e.atCallback {
				end = 0
			}
			e.mu.Lock()
			e.onsets = append(e.onsets, now.Add(-time.Duration(end)*time.Second/audio.SampleRate))
			e.mu.Unlock()
		}
	}
}

// level is the amplitude (0–1) of the freq component of p (Goertzel).
func level(p []int16, freq float64) float64 {
	c := 2 * math.Cos(2*math.Pi*freq/audio.SampleRate)
	var s1, s2 float64
	for _, v := range p {
		s1, s2 = float64(v)/32768+c*s1-s2, s1
	}
	return 2 * math.Sqrt(math.Max(s1*s1+s2*s2-c*s1*s2, 0)) / float64(len(p))
}

// delays pairs every ear onset with the last mouth onset before it.
func delays(m *mouth, e *earDetector) []time.Duration {
	m.mu.Lock()
	sent := slices.Clone(m.onsets)
	m.mu.Unlock()
	e.mu.Lock()
	heard := slices.Clone(e.onsets)
	e.mu.Unlock()
	var out []time.Duration
	for _, h := range heard {
		i, _ := slices.BinarySearchFunc(sent, h, func(a, b time.Time) int { return a.Compare(b) })
		if i > 0 {
			out = append(out, h.Sub(sent[i-1]))
		}
	}
	return out
}

func medianOf(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// rig is a mouth playing into a sink and an ear on a source, both on the
// sound server through b; stop closes both (so does the test's cleanup).
func rig(t *testing.T, b audio.Backend, mouthSink, earSource string, freq float64) (m *mouth, e *earDetector, stop func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, e = &mouth{freq: freq}, &earDetector{freq: freq}
	var devs []audio.Device
	stop = func() {
		for _, d := range devs {
			require.NoError(t, d.Close())
		}
		devs = nil
	}
	t.Cleanup(stop)
	for _, d := range []struct {
		cfg audio.DeviceConfig
		cb  audio.Callbacks
	}{
		{audio.DeviceConfig{Direction: audio.Capture, Device: earSource}, audio.Callbacks{Capture: e.capture}},
		{audio.DeviceConfig{Direction: audio.Playback, Device: mouthSink}, audio.Callbacks{Playback: m.play}},
	} {
		dev, err := b.Open(ctx, d.cfg)
		require.NoError(t, err)
		devs = append(devs, dev)
		require.NoError(t, dev.Start(d.cb))
	}
	return m, e, stop
}

// The mouth-to-ear delay of a call whose both ends run on the sound
// server, both ways at once: beeps played into a sink reach the caller
// through a microphone on that sink's monitor, cross the call, and come
// out of the callee's speaker sink, where its monitor hears them (and the
// other way round at another pitch). The test's own playing and listening
// legs also pass the sound server; the same legs without the call, a
// sink straight into its monitor, are measured first and reported beside.
func TestPulseCallMouthToEar(t *testing.T) {
	srv := pulsetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	srv.AddSink("micsink2") // bob's microphone is its monitor
	newBackend := func() audio.Backend {
		b, err := audio.NewBackend(ctx, audio.KindMalgo, nil)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, b.Close()) })
		return b
	}
	testSide := newBackend()

	const listen = 4 * time.Second
	wait := func(d time.Duration) {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			t.Fatal("timed out")
		}
	}
	lm, le, stopLegs := rig(t, testSide, "spk2", "spk2.monitor", 1000)
	wait(listen)
	stopLegs()
	legs := delays(lm, le)
	require.GreaterOrEqual(t, len(legs), 5, "beeps heard straight from a sink's monitor")
	t.Logf("sound-server legs alone (sink → its monitor): median %v of %d beeps", medianOf(legs).Round(time.Millisecond), len(legs))

	lab := calltest.NewLab(server.Config{})
	t.Cleanup(lab.Close)
	phone := func(user, mic, speaker string) *calltest.Phone {
		p, err := lab.NewPhone(ctx, user, calltest.PhoneOptions{Config: call.Config{
			EndToneDuration: -1,
			Audio:           call.AudioConfig{Backend: newBackend(), Capture: mic, Playback: speaker},
		}})
		require.NoError(t, err)
		return p
	}
	alice := phone("alice", pulsetest.Mic, "spk") // alice hears bob on spk
	bob := phone("bob", "micsink2.monitor", "spk2")
	answered := make(chan error, 1)
	go func() {
		select {
		case in := <-bob.Incoming():
			answered <- in.Accept(ctx)
		case <-ctx.Done():
			answered <- ctx.Err()
		}
	}()
	c, err := alice.Dial(ctx, "bob")
	require.NoError(t, err)
	require.NoError(t, <-answered)
	for e := range c.Events() {
		if e.Kind == call.EventState && e.State == call.Connected {
			break
		}
		require.False(t, e.Kind == call.EventState && e.State == call.Ended, "call ended: %v", e.Reason)
	}
	defer c.Hangup()

	// alice → bob at 1 kHz (micsink → vmic … spk2 → spk2.monitor), bob →
	// alice at 1.5 kHz (micsink2 → its monitor … spk → spk.monitor).
	am, be, _ := rig(t, testSide, "micsink", "spk2.monitor", 1000)
	bm, ae, _ := rig(t, testSide, "micsink2", "spk.monitor", 1500)
	wait(2 * listen)
	for _, d := range []struct {
		name string
		m    *mouth
		e    *earDetector
	}{{"alice → bob", am, be}, {"bob → alice", bm, ae}} {
		got := delays(d.m, d.e)
		require.GreaterOrEqual(t, len(got), 8, "%s: beeps heard across the call", d.name)
		got = got[2:] // the jitter buffer settles on the first beeps
		m2e := medianOf(got)
		first, last := medianOf(got[:3]), medianOf(got[len(got)-3:])
		t.Logf("%s mouth-to-ear through the sound server: median %v (min %v, max %v, %d beeps; first three %v, last three %v); without the test's legs %v",
			d.name, m2e.Round(time.Millisecond), slices.Min(got).Round(time.Millisecond), slices.Max(got).Round(time.Millisecond),
			len(got), first.Round(time.Millisecond), last.Round(time.Millisecond), (m2e - medianOf(legs)).Round(time.Millisecond))
		assert.Less(t, m2e, 400*time.Millisecond, d.name)
		// The devices' threads stall on a loaded machine; each stall must
		// not stay in the call as delay (see audio's timeline).
		assert.Less(t, last-first, 100*time.Millisecond, "%s: the delay grew during the call", d.name)
	}
}

// A session on the sound server reports the delay its echo canceller
// aligns by: Latency, from a playback callback to the capture callback
// that hears its audio, is what a beep played to spk and heard on
// spk.monitor takes; also when the client library sets a longer buffer
// than dialtone asked for (PULSE_LATENCY_MSEC, which libpulse applies to
// every stream of the process).
func TestPulseSessionLatency(t *testing.T) {
	pulsetest.Start(t)
	for _, env := range []string{"", "40"} {
		t.Run("PULSE_LATENCY_MSEC="+env, func(t *testing.T) {
			if env != "" {
				t.Setenv("PULSE_LATENCY_MSEC", env)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			m, e := &mouth{freq: 1000}, &earDetector{freq: 1000, atCallback: true}
			s, err := audio.Open(ctx, audio.Config{Kind: audio.KindMalgo, Capture: "spk.monitor", Playback: "spk",
				Callbacks: audio.Callbacks{Capture: e.capture, Playback: m.play}})
			require.NoError(t, err)
			defer func() { require.NoError(t, s.Close()) }()
			select {
			case <-time.After(3 * time.Second):
			case <-ctx.Done():
				t.Fatal("timed out")
			}
			got := delays(m, e)
			require.GreaterOrEqual(t, len(got), 4, "beeps heard")
			measured := medianOf(got)
			t.Logf("Latency %v; beeps from the playback callback to the capture callback: median %v of %d",
				s.Latency().Round(time.Millisecond), measured.Round(time.Millisecond), len(got))
			// A null sink's monitor hears the audio when the server mixes it,
			// a little before a sound card would play it: the beeps come up
			// to a period sooner than Latency says.
			assert.InDelta(t, measured, s.Latency(), float64(audio.DefaultPeriod+5*time.Millisecond))
		})
	}
}
