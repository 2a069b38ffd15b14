//go:build cgo

package audio

import (
	"bytes"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gen2brain/malgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMalgoNullBackendConstant(t *testing.T) {
	// malgo.BackendNull is miniaudio's custom backend: no backend at all.
	_, err := malgo.InitContext([]malgo.Backend{malgo.BackendNull}, malgo.ContextConfig{}, nil)
	require.Error(t, err, "malgo.BackendNull (13) unexpectedly works: revisit maBackendNull")
	c, err := malgo.InitContext([]malgo.Backend{maBackendNull}, malgo.ContextConfig{}, nil)
	require.NoError(t, err)
	devs, err := c.Devices(malgo.Playback)
	require.NoError(t, err)
	require.NotEmpty(t, devs)
	t.Logf("null playback device: %q", devs[0].Name())
	require.NoError(t, c.Uninit())
	c.Free()
}

// callbackTimes opens one device of dir on b, runs it for d and returns the
// callback timestamps and period lengths seen.
func callbackTimes(t *testing.T, b Backend, dir Direction, period, d time.Duration) ([]time.Time, []int) {
	t.Helper()
	ctx := testCtx(t, 10*time.Second)
	dev, err := b.Open(ctx, DeviceConfig{Direction: dir, Period: period})
	require.NoError(t, err)
	var mu sync.Mutex
	var times []time.Time
	var sizes []int
	rec := func(p []int16) {
		mu.Lock()
		times = append(times, time.Now())
		sizes = append(sizes, len(p))
		mu.Unlock()
	}
	require.NoError(t, dev.Start(Callbacks{Capture: rec, Playback: rec}))
	timer := time.NewTimer(d)
	select {
	case <-timer.C:
	case <-dev.Done():
		t.Fatalf("device stopped: %v", dev.Err())
	}
	require.NoError(t, dev.Close())
	assert.NoError(t, dev.Err())
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(times), slices.Clone(sizes)
}

func TestMalgoNullDevicePacing(t *testing.T) {
	b, err := NewBackend(testCtx(t, 5*time.Second), KindNull, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	assert.Equal(t, "null", b.Name())
	for _, dir := range []Direction{Capture, Playback} {
		for _, period := range []time.Duration{10 * time.Millisecond, 20 * time.Millisecond} {
			t.Run(dir.String()+"/"+period.String(), func(t *testing.T) {
				const run = time.Second
				times, sizes := callbackTimes(t, b, dir, period, run)
				want := int(run / period)
				t.Logf("%d callbacks in %v (want ~%d)", len(times), run, want)
				assert.InDelta(t, want, len(times), float64(want)/10+2, "callback count")
				for _, n := range sizes {
					require.Equal(t, Samples(period), n)
				}
				require.Greater(t, len(times), 10)
				var iv []time.Duration
				for i := 1; i < len(times); i++ {
					iv = append(iv, times[i].Sub(times[i-1]))
				}
				slices.Sort(iv)
				p50 := iv[len(iv)/2]
				mean := times[len(times)-1].Sub(times[0]) / time.Duration(len(times)-1)
				t.Logf("interval p50 %v mean %v p90 %v", p50, mean, iv[len(iv)*9/10])
				assert.InDelta(t, float64(period), float64(mean), float64(period)/10, "mean period")
				assert.InDelta(t, float64(period), float64(p50), float64(period)/5, "median period")
			})
		}
	}
}

// TestMalgoBackendClosedBeforeItsDevice: a backend closed while one of
// its devices runs (a program that closes in the wrong order) keeps the
// device working on its context until the device is closed, refuses new
// devices, and releases the context after the last one. Freed at Close,
// the context would be read afterwards by the device's thread and its
// uninit: a heap use-after-free, which scripts/test.sh's AddressSanitizer
// run reports.
func TestMalgoBackendClosedBeforeItsDevice(t *testing.T) {
	b, err := NewBackend(testCtx(t, 5*time.Second), KindNull, nil)
	require.NoError(t, err)
	dev, err := b.Open(testCtx(t, 5*time.Second), DeviceConfig{Direction: Playback, Period: 10 * time.Millisecond})
	require.NoError(t, err)
	var calls atomic.Int64
	require.NoError(t, dev.Start(Callbacks{Playback: func(out []int16) { calls.Add(1) }}))
	time.Sleep(100 * time.Millisecond)

	require.NoError(t, b.Close())
	mb := b.(*malgoBackend)
	mb.mu.Lock()
	freed := mb.freed
	mb.mu.Unlock()
	assert.False(t, freed, "the context stays while its device is open")
	_, err = b.Open(testCtx(t, 5*time.Second), DeviceConfig{Direction: Capture, Period: 10 * time.Millisecond})
	assert.ErrorIs(t, err, ErrClosed, "no new device on a closed backend")
	before := calls.Load()
	time.Sleep(200 * time.Millisecond)
	assert.Greater(t, calls.Load()-before, int64(10), "the device plays on after its backend's Close")

	require.NoError(t, dev.Close())
	mb.mu.Lock()
	freed, holds := mb.freed, mb.holds
	mb.mu.Unlock()
	assert.True(t, freed, "the last device's Close releases the context")
	assert.Zero(t, holds)
}

func TestMalgoAutoFallsBackToNull(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	b, err := NewBackend(testCtx(t, 5*time.Second), KindAuto, log)
	require.NoError(t, err, "auto never fails on a headless machine")
	defer func() { require.NoError(t, b.Close()) }()
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	t.Logf("backend %q; log: %s", b.Name(), out)
	if b.Name() == "null" {
		assert.Contains(t, out, "null backend")
	}
	devs, err := b.Devices(testCtx(t, 5*time.Second))
	require.NoError(t, err)
	for _, d := range devs {
		t.Logf("device: %v", d)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestMalgoSystemContextEnumeration(t *testing.T) {
	// ALSA may print "cannot find card" to stderr here: fine.
	b, err := NewBackend(testCtx(t, 5*time.Second), KindMalgo, nil)
	if err != nil {
		t.Logf("system context unavailable: %v", err)
		assert.ErrorIs(t, err, ErrUnavailable)
		return
	}
	defer func() { require.NoError(t, b.Close()) }()
	devs, err := b.Devices(testCtx(t, 5*time.Second))
	require.NoError(t, err)
	for _, d := range devs {
		t.Logf("system device: %v", d)
		assert.NotEmpty(t, d.ID)
	}
	if dev, err := b.Open(testCtx(t, 5*time.Second), DeviceConfig{Direction: Playback}); err == nil {
		require.NoError(t, dev.Close()) // a machine with a sound card
	} else {
		t.Logf("opening the system default fails as expected on a headless machine: %v", err)
	}
}

// On the null backend, switch capture and playback mid-stream to every
// device the backend offers and count the periods lost or duplicated.
func TestMalgoSessionSwitchGlitch(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	var capN, playN atomic.Int64
	var inCap, inPlay, overlap atomic.Bool
	s, err := Open(ctx, Config{Kind: KindNull, PollInterval: 50 * time.Millisecond, Callbacks: Callbacks{
		Capture: func(p []int16) {
			if inCap.Swap(true) {
				overlap.Store(true)
			}
			capN.Add(1)
			inCap.Store(false)
		},
		Playback: func(out []int16) {
			if inPlay.Swap(true) {
				overlap.Store(true)
			}
			playN.Add(1)
			inPlay.Store(false)
		},
	}})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	devs, err := s.Devices(ctx)
	require.NoError(t, err)

	// Count callbacks over a window containing switches and compare with a
	// window without; the difference is the glitch, in periods.
	window := func(switches func()) (capDelta, playDelta int64, elapsed time.Duration) {
		c0, p0, t0 := capN.Load(), playN.Load(), time.Now()
		switches()
		deadline := time.NewTimer(500*time.Millisecond - time.Since(t0))
		<-deadline.C
		return capN.Load() - c0, playN.Load() - p0, time.Since(t0)
	}
	expect := func(el time.Duration) float64 { return float64(el / (10 * time.Millisecond)) }
	c, p, el := window(func() {})
	t.Logf("steady: capture %d playback %d periods in %v (expect %.0f)", c, p, el, expect(el))
	n := 0
	c, p, el = window(func() {
		for _, d := range devs {
			if d.Direction == Capture {
				require.NoError(t, s.SetCapture(ctx, d.ID))
			} else {
				require.NoError(t, s.SetPlayback(ctx, d.ID))
			}
			n++
		}
	})
	t.Logf("%d switches: capture %d playback %d periods in %v (expect %.0f)", n, c, p, el, expect(el))
	// Each switch may cost or repeat up to 2 periods; plus clock jitter of 2.
	tol := float64(2*n + 2)
	assert.InDelta(t, expect(el), float64(c), tol, "capture periods across switches")
	assert.InDelta(t, expect(el), float64(p), tol, "playback periods across switches")
	assert.False(t, overlap.Load(), "callbacks of one direction never overlap")
}
