//go:build cgo && linux

package audio

import (
	"bytes"
	"context"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/internal/pulsetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests run miniaudio's PulseAudio backend against a private
// PulseAudio server (internal/pulsetest) whose speakers are null sinks:
// a sink's monitor source is a microphone that hears it.

// sine is a playback callback: a tone of freq at amplitude amp (0–1).
type sine struct {
	mu    sync.Mutex
	freq  float64
	amp   float64
	phase float64
}

func (s *sine) play(out []int16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	step := 2 * math.Pi * s.freq / SampleRate
	for i := range out {
		out[i] = int16(s.amp * 32767 * math.Sin(s.phase))
		s.phase += step
	}
	s.phase = math.Mod(s.phase, 2*math.Pi)
}

func (s *sine) set(amp float64) {
	s.mu.Lock()
	s.amp = amp
	s.mu.Unlock()
}

// toneLevel is the amplitude (0–1) of the freq component of p (Goertzel).
func toneLevel(p []int16, freq float64) float64 {
	w := 2 * math.Pi * freq / SampleRate
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range p {
		s0 := float64(v)/32768 + c*s1 - s2
		s2, s1 = s1, s0
	}
	power := s1*s1 + s2*s2 - c*s1*s2
	return 2 * math.Sqrt(math.Max(power, 0)) / float64(len(p))
}

// ear is a capture device on a monitor that measures a tone's level in
// every period.
type ear struct {
	freq float64
	mu   sync.Mutex
	lvls []float64
	at   []time.Time
	cond chan struct{} // closed and replaced on every period
}

func newEar(freq float64) *ear { return &ear{freq: freq, cond: make(chan struct{})} }

func (e *ear) capture(p []int16) {
	l := toneLevel(p, e.freq)
	e.mu.Lock()
	e.lvls = append(e.lvls, l)
	e.at = append(e.at, time.Now())
	close(e.cond)
	e.cond = make(chan struct{})
	e.mu.Unlock()
}

// listen opens and starts a capture device on b for the ear.
func (e *ear) listen(t *testing.T, b Backend, device string) Device {
	t.Helper()
	d, err := b.Open(testCtx(t, 5*time.Second), DeviceConfig{Direction: Capture, Device: device})
	require.NoError(t, err, "open %s", device)
	require.NoError(t, d.Start(Callbacks{Capture: e.capture}))
	t.Cleanup(func() { require.NoError(t, d.Close()) })
	return d
}

// await waits until the ear's last n periods all satisfy ok, and returns
// when the first of them arrived.
func (e *ear) await(t *testing.T, ctx context.Context, n int, what string, ok func(float64) bool) time.Time {
	t.Helper()
	for {
		e.mu.Lock()
		run := 0
		for i := len(e.lvls) - 1; i >= 0 && ok(e.lvls[i]); i-- {
			run++
		}
		var first time.Time
		if run >= n {
			first = e.at[len(e.at)-run]
		}
		last := 0.0
		if len(e.lvls) > 0 {
			last = e.lvls[len(e.lvls)-1]
		}
		cond := e.cond
		e.mu.Unlock()
		if run >= n {
			return first
		}
		select {
		case <-cond:
		case <-ctx.Done():
			require.FailNow(t, "timed out waiting for "+what, "last level %.3f", last)
		}
	}
}

func heard(l float64) bool  { return l > 0.3 }
func silent(l float64) bool { return l < 0.01 }

// pulseBackend starts a private PulseAudio server and opens miniaudio on it.
func pulseBackend(t *testing.T) (*pulsetest.Server, Backend) {
	t.Helper()
	srv := pulsetest.Start(t)
	b, err := NewBackend(testCtx(t, 10*time.Second), KindAuto, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	require.Equal(t, "pulseaudio", b.Name(), "with a sound server up, auto picks the system backend")
	return srv, b
}

func TestPulseDevices(t *testing.T) {
	_, b := pulseBackend(t)
	devs, err := b.Devices(testCtx(t, 5*time.Second))
	require.NoError(t, err)
	var ids []string
	for _, d := range devs {
		ids = append(ids, d.Direction.String()+" "+d.ID)
		t.Logf("%v", d)
	}
	for _, want := range []string{"playback spk", "playback spk2", "playback micsink",
		"capture spk.monitor", "capture spk2.monitor", "capture vmic"} {
		assert.Contains(t, ids, want)
	}
	def, err := Find(devs, Playback, "")
	require.NoError(t, err)
	assert.Equal(t, "spk", def.ID)
	def, err = Find(devs, Capture, "")
	require.NoError(t, err)
	assert.Equal(t, "spk.monitor", def.ID)
}

// A tone played to a sink comes back, at its level, from the sink's
// monitor; and a tone played to micsink is what the microphone vmic hears.
func TestPulsePlayCapture(t *testing.T) {
	_, b := pulseBackend(t)
	for _, c := range []struct{ speaker, mic string }{{"spk", "spk.monitor"}, {"micsink", "vmic"}} {
		t.Run(c.speaker, func(t *testing.T) {
			ctx := testCtx(t, 10*time.Second)
			e := newEar(1000)
			e.listen(t, b, c.mic)
			tone := &sine{freq: 1000, amp: 0.5}
			spk, err := b.Open(ctx, DeviceConfig{Direction: Playback, Device: c.speaker})
			require.NoError(t, err)
			require.NoError(t, spk.Start(Callbacks{Playback: tone.play}))
			defer func() { require.NoError(t, spk.Close()) }()
			e.await(t, ctx, 20, "the tone", func(l float64) bool { return math.Abs(l-0.5) < 0.03 })
			tone.set(0)
			e.await(t, ctx, 5, "silence", silent)
		})
	}
}

// A playback device whose thread stalls keeps asking for audio at the
// clock's pace: after a 150 ms stall in its callback, which runs
// PulseAudio's stream dry, the callbacks catch up with the wall clock
// instead of staying 150 ms behind it for good (which a call's jitter
// buffer would turn into 150 ms more mouth-to-ear delay).
func TestPulsePlaybackStallKeepsClock(t *testing.T) {
	_, b := pulseBackend(t)
	ctx := testCtx(t, 10*time.Second)
	spk, err := b.Open(ctx, DeviceConfig{Direction: Playback, Device: "spk"})
	require.NoError(t, err)
	defer func() { require.NoError(t, spk.Close()) }()
	const stall = 150 * time.Millisecond
	var (
		mu      sync.Mutex
		start   time.Time
		samples int
		stalled = make(chan struct{})
	)
	// behind is how far the audio asked for lags the wall clock.
	behind := func() time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return time.Since(start) - time.Duration(samples)*time.Second/SampleRate
	}
	require.NoError(t, spk.Start(Callbacks{Playback: func(out []int16) {
		mu.Lock()
		if start.IsZero() {
			start = time.Now()
		}
		samples += len(out)
		hold := samples == SampleRate/2 // half a second in
		mu.Unlock()
		if hold {
			time.Sleep(stall) // the audio thread held up, as by a loaded machine
			close(stalled)
		}
	}}))
	select {
	case <-stalled:
	case <-ctx.Done():
		t.Fatal("no stall")
	}
	before := behind()
	require.Greater(t, before, stall/2, "the stall put the device behind")
	assert.Eventually(t, func() bool { return behind() < 3*DefaultPeriod }, time.Second, 10*time.Millisecond,
		"back on the clock after the stall (%v behind just after it)", before)
}

// A device's thread takes a real-time priority where the process may
// (root, or RLIMIT_RTPRIO, as distributions grant the audio group), as the
// sound server's own threads do, and stays as it is elsewhere.
func TestPulseDeviceThreadRealtime(t *testing.T) {
	_, b := pulseBackend(t)
	ctx := testCtx(t, 10*time.Second)
	may := os.Geteuid() == 0 || rtprioLimit(t) >= rtPriority
	for _, dir := range []Direction{Playback, Capture} {
		dev, err := b.Open(ctx, DeviceConfig{Direction: dir})
		require.NoError(t, err)
		policy := make(chan string, 1)
		require.NoError(t, dev.Start(Callbacks{
			// The callback runs on the device's thread: its stat's 41st
			// field is its scheduling policy (0 normal, 2 round-robin).
			Playback: func([]int16) { sendPolicy(policy) },
			Capture:  func([]int16) { sendPolicy(policy) },
		}))
		select {
		case p := <-policy:
			if may {
				assert.Equal(t, "2", p, "%v device thread in SCHED_RR", dir)
			} else {
				assert.Equal(t, "0", p, "%v device thread in SCHED_OTHER", dir)
			}
		case <-ctx.Done():
			t.Fatalf("no %v callback", dir)
		}
		require.NoError(t, dev.Close())
	}
}

// rtprioLimit is the process's soft RLIMIT_RTPRIO.
func rtprioLimit(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/limits")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max realtime priority"); ok {
			f := strings.Fields(rest)[0]
			if f == "unlimited" {
				return 99
			}
			n, _ := strconv.Atoi(f)
			return n
		}
	}
	return 0
}

// sendPolicy sends the calling thread's scheduling policy, once.
func sendPolicy(c chan string) {
	b, err := os.ReadFile("/proc/thread-self/stat")
	if err != nil {
		return
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) > 38 {
		select {
		case c <- f[38]: // field 41, counted from field 3
		default:
		}
	}
}

// Switching a session's speaker mid-stream moves the sound: the tone
// leaves spk and shows up on spk2.
func TestPulseSessionSwitchPlayback(t *testing.T) {
	_, b := pulseBackend(t)
	ctx := testCtx(t, 15*time.Second)
	on1, on2 := newEar(1000), newEar(1000)
	on1.listen(t, b, "spk.monitor")
	on2.listen(t, b, "spk2.monitor")
	tone := &sine{freq: 1000, amp: 0.5}
	s, err := Open(ctx, Config{Backend: b, Direction: Playback, Playback: "spk", PollInterval: -1,
		Callbacks: Callbacks{Playback: tone.play}})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	on1.await(t, ctx, 10, "the tone on spk", heard)

	t0 := time.Now()
	require.NoError(t, s.SetPlayback(ctx, "spk2"))
	ev := nextEvent(t, ctx, s.Events(), DeviceSwitched)
	assert.Equal(t, "spk2", ev.Device.ID)
	assert.Equal(t, "spk", ev.Previous.ID)
	at := on2.await(t, ctx, 10, "the tone on spk2", heard)
	on1.await(t, ctx, 5, "silence on spk", silent)
	t.Logf("tone on the new speaker %v after the switch", at.Sub(t0).Round(time.Millisecond))
	assert.Less(t, at.Sub(t0), 500*time.Millisecond)
}

// A sink loaded while a session runs is reported as added (with its
// monitor), can be used at once, and when it is unloaded under the
// session, which plays on it, the session reports it gone and moves back
// to the default speaker: no hang, and the tone is heard there again.
func TestPulseSessionDeviceComesAndGoes(t *testing.T) {
	srv, b := pulseBackend(t)
	ctx := testCtx(t, 20*time.Second)
	tone := &sine{freq: 1000, amp: 0.5}
	s, err := Open(ctx, Config{Backend: b, Direction: Playback, PollInterval: 100 * time.Millisecond,
		Callbacks: Callbacks{Playback: tone.play}})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()

	mod := srv.AddSink("hot")
	added := map[string]bool{}
	for len(added) < 2 {
		ev := nextEvent(t, ctx, s.Events(), DeviceAdded)
		added[ev.Direction.String()+" "+ev.Device.ID] = true
	}
	assert.Equal(t, map[string]bool{"playback hot": true, "capture hot.monitor": true}, added)

	onHot, onSpk := newEar(1000), newEar(1000)
	onHot.listen(t, b, "hot.monitor")
	onSpk.listen(t, b, "spk.monitor")
	require.NoError(t, s.SetPlayback(ctx, "hot"))
	nextEvent(t, ctx, s.Events(), DeviceSwitched)
	onHot.await(t, ctx, 10, "the tone on the new sink", heard)
	onSpk.await(t, ctx, 5, "silence on spk", silent)

	t0 := time.Now()
	srv.RemoveSink("hot", mod)
	ev := nextEvent(t, ctx, s.Events(), DeviceSwitched, DeviceRecovered)
	t.Logf("%v after %v", ev, time.Since(t0).Round(time.Millisecond))
	assert.Equal(t, "spk", ev.Device.ID)
	assert.Equal(t, ReasonRemoved, ev.Reason)
	at := onSpk.await(t, ctx, 10, "the tone back on spk", heard)
	t.Logf("tone back on the default speaker %v after the sink was unloaded", at.Sub(t0).Round(time.Millisecond))
	cur, ok := s.Current(Playback)
	require.True(t, ok)
	assert.Equal(t, "spk", cur.ID)
}

// The server's notices about a device in use reach the session's events:
// suspending and resuming the sink, and moving the stream to another sink
// (which the server can do to a stream opened on the default device).
func TestPulseSessionRouteEvents(t *testing.T) {
	srv, b := pulseBackend(t)
	ctx := testCtx(t, 15*time.Second)
	on2 := newEar(1000)
	on2.listen(t, b, "spk2.monitor")
	tone := &sine{freq: 1000, amp: 0.5}
	s, err := Open(ctx, Config{Backend: b, Direction: Playback, PollInterval: -1,
		Callbacks: Callbacks{Playback: tone.play}})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()

	srv.Suspend("spk", true)
	ev := nextEvent(t, ctx, s.Events(), RouteChanged, DeviceInterrupted)
	assert.Equal(t, RouteChanged, ev.Type, "a suspend is not an interruption: %v", ev)
	assert.Equal(t, ReasonSuspended, ev.Reason)
	assert.Equal(t, Playback, ev.Direction)
	srv.Suspend("spk", false)
	ev = nextEvent(t, ctx, s.Events(), RouteChanged, DeviceInterrupted)
	assert.Equal(t, ReasonResumed, ev.Reason, "%v", ev)

	var input string
	for _, line := range strings.Split(srv.Pactl("list", "short", "sink-inputs"), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			input = f[0]
		}
	}
	require.NotEmpty(t, input, "the session's stream is listed")
	srv.Pactl("move-sink-input", input, "spk2")
	ev = nextEvent(t, ctx, s.Events(), RouteChanged, DeviceInterrupted)
	assert.Equal(t, ReasonRerouted, ev.Reason, "%v", ev)
	on2.await(t, ctx, 10, "the tone on spk2 after the move", heard)
}

// Killing the sound server under a session ends in interruptions, not a
// hang; when the server is back the session recovers on its default
// devices and sound flows again.
func TestPulseSessionServerKilled(t *testing.T) {
	srv, b := pulseBackend(t)
	ctx := testCtx(t, 30*time.Second)
	mic := newEar(1000)
	tone := &sine{freq: 1000, amp: 0.5}
	s, err := Open(ctx, Config{Backend: b, PollInterval: -1, RetryInterval: 200 * time.Millisecond,
		Callbacks: Callbacks{Playback: tone.play, Capture: mic.capture}})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	mic.await(t, ctx, 10, "the speaker in the microphone", heard)

	t0 := time.Now()
	srv.Kill()
	dirs := map[Direction]bool{}
	for len(dirs) < 2 {
		ev := nextEvent(t, ctx, s.Events(), DeviceInterrupted)
		t.Logf("%v after %v", ev, time.Since(t0).Round(time.Millisecond))
		dirs[ev.Direction] = true
	}
	srv.Restart()
	t1 := time.Now()
	dirs = map[Direction]bool{}
	for len(dirs) < 2 {
		ev := nextEvent(t, ctx, s.Events(), DeviceRecovered)
		t.Logf("%v after %v", ev, time.Since(t1).Round(time.Millisecond))
		dirs[ev.Direction] = true
	}
	mic.await(t, ctx, 10, "the speaker in the microphone after the restart", heard)
	for _, dir := range []Direction{Capture, Playback} {
		cur, ok := s.Current(dir)
		require.True(t, ok)
		assert.Contains(t, []string{"spk", "spk.monitor"}, cur.ID)
	}
}

// Closing a device whose stream the server killed returns, bounded, and
// reports the device interrupted first.
func TestPulseDeviceRemovedUnderDevice(t *testing.T) {
	srv, b := pulseBackend(t)
	mod := srv.AddSink("doomed")
	d, err := b.Open(testCtx(t, 5*time.Second), DeviceConfig{Direction: Playback, Device: "doomed"})
	require.NoError(t, err)
	tone := &sine{freq: 1000, amp: 0.5}
	require.NoError(t, d.Start(Callbacks{Playback: tone.play}))
	srv.RemoveSink("doomed", mod)
	select {
	case <-d.Done():
		assert.ErrorIs(t, d.Err(), ErrInterrupted)
	case <-time.After(stallLimit + time.Second):
		t.Fatal("the device did not report the interruption")
	}
	t0 := time.Now()
	err = d.Close()
	t.Logf("close took %v (err %v)", time.Since(t0).Round(time.Millisecond), err)
	assert.Less(t, time.Since(t0), callLimit+time.Second)
	assert.NoError(t, err, "the stop before uninit wakes the device's thread")
}

// median is the p50 of d.
func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
