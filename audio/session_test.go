package audio

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/media/pcm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loopback is a tiny "media layer": capture pushes into a FIFO, playback
// pops from it (silence when empty).
type loopback struct {
	mu   sync.Mutex
	fifo []int16
}

func (l *loopback) capture(p []int16) {
	l.mu.Lock()
	l.fifo = append(l.fifo, p...)
	l.mu.Unlock()
}

func (l *loopback) playback(out []int16) {
	l.mu.Lock()
	n := copy(out, l.fifo)
	l.fifo = l.fifo[n:]
	l.mu.Unlock()
}

type fixture struct {
	clock *ManualClock
	b     *VirtualBackend
	room  room
	sinks map[string]*pcm.Recorder
}

// newFixture: two microphones hearing the same room, two speakers.
func newFixture() *fixture {
	f := &fixture{clock: NewManualClock(time.Unix(0, 0)), sinks: map[string]*pcm.Recorder{}}
	f.room = room{clock: f.clock, start: f.clock.Now()}
	f.sinks["spk1"], f.sinks["spk2"] = &pcm.Recorder{}, &pcm.Recorder{}
	f.b = NewVirtualBackend(VirtualBackendConfig{Clock: f.clock, Devices: []VirtualDevice{
		{ID: "mic1", Name: "Built-in Microphone", Direction: Capture, Default: true, Source: f.room},
		{ID: "mic2", Name: "Headset Microphone", Direction: Capture, Source: f.room},
		{ID: "spk1", Name: "Built-in Speaker", Direction: Playback, Default: true, Sink: f.sinks["spk1"]},
		{ID: "spk2", Name: "Headset Speaker", Direction: Playback, Sink: f.sinks["spk2"]},
	}})
	return f
}

func (f *fixture) open(t *testing.T, cfg Config) *Session {
	t.Helper()
	cfg.Backend = f.b
	if cfg.PollInterval == 0 {
		cfg.PollInterval = -1 // tests poll by hand
	}
	s, err := Open(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func TestSessionLoopbackContent(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	f := newFixture()
	var lb loopback
	var heard pcmLog
	s := f.open(t, Config{Callbacks: Callbacks{
		Capture:  func(p []int16) { heard.capture(p); lb.capture(p) },
		Playback: lb.playback,
	}})
	cur, ok := s.Current(Capture)
	require.True(t, ok)
	assert.Equal(t, "mic1", cur.ID)
	cur, _ = s.Current(Playback)
	assert.Equal(t, "spk1", cur.ID)

	require.NoError(t, f.clock.Advance(ctx, time.Second))
	captured, calls := heard.snapshot()
	require.Equal(t, 100, calls)
	played := f.sinks["spk1"].Samples()
	require.Len(t, played, 100*480)
	// The capture device ticks before the playback device (created first),
	// so each period is played in the tick it was captured: no delay.
	assert.Equal(t, captured, played, "samples written equal samples read, in order")
	m, d := gaps(played)
	assert.Zero(t, m+d)
	assert.Equal(t, sampleValue(1), played[0])
}

func TestSessionSwitchMidStream(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	f := newFixture()
	var lb loopback
	var heard pcmLog
	var concurrent, inCb atomic.Bool
	s := f.open(t, Config{Callbacks: Callbacks{
		Capture: func(p []int16) {
			if inCb.Swap(true) {
				concurrent.Store(true)
			}
			defer inCb.Store(false)
			heard.capture(p)
			lb.capture(p)
		},
		Playback: lb.playback,
	}})

	require.NoError(t, f.clock.Advance(ctx, 500*time.Millisecond))
	require.NoError(t, s.SetCapture(ctx, "mic2"))
	require.NoError(t, s.SetPlayback(ctx, "headset speaker")) // by name, any case
	ev := nextEvent(t, ctx, s.Events(), DeviceSwitched)
	assert.Equal(t, Capture, ev.Direction)
	assert.Equal(t, "mic2", ev.Device.ID)
	assert.Equal(t, "mic1", ev.Previous.ID)
	assert.Equal(t, ReasonUser, ev.Reason)
	ev = nextEvent(t, ctx, s.Events(), DeviceSwitched)
	assert.Equal(t, "spk2", ev.Device.ID)

	err := s.SetCapture(ctx, "no-such-mic")
	require.ErrorIs(t, err, ErrNoDevice)
	cur, _ := s.Current(Capture)
	assert.Equal(t, "mic2", cur.ID, "a failed switch keeps the device in use")

	require.NoError(t, f.clock.Advance(ctx, 500*time.Millisecond))
	captured, calls := heard.snapshot()
	assert.Equal(t, 100, calls, "no period lost or duplicated across the switch")
	m, d := gaps(captured)
	assert.Zero(t, m, "missing samples")
	assert.Zero(t, d, "duplicated samples")
	assert.False(t, concurrent.Load(), "capture callback never ran concurrently")

	old, cur2 := f.sinks["spk1"].Samples(), f.sinks["spk2"].Samples()
	assert.Len(t, old, 50*480)
	assert.Len(t, cur2, 50*480)
	assert.Equal(t, captured, append(old, cur2...), "playback continues on the new device where the old one stopped")
	assert.Empty(t, f.b.Instances("mic1"), "old device closed")
	assert.Empty(t, f.b.Instances("spk1"))
}

func TestSessionDeviceRemovedMovesToDefault(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	f := newFixture()
	var heard pcmLog
	s := f.open(t, Config{Capture: "mic2", Callbacks: Callbacks{Capture: heard.capture}})
	cur, _ := s.Current(Capture)
	require.Equal(t, "mic2", cur.ID)
	require.NoError(t, f.clock.Advance(ctx, 100*time.Millisecond))

	f.b.Remove("mic2") // the headset is unplugged: the running device stops
	ev := nextEvent(t, ctx, s.Events(), DeviceInterrupted)
	assert.ErrorIs(t, ev.Err, ErrDeviceRemoved)
	assert.Equal(t, "mic2", ev.Device.ID)
	ev = nextEvent(t, ctx, s.Events(), DeviceRemoved)
	assert.Equal(t, "mic2", ev.Device.ID)
	ev = nextEvent(t, ctx, s.Events(), DeviceRecovered)
	assert.Equal(t, "mic1", ev.Device.ID, "moved to the default device")
	assert.Equal(t, "mic2", ev.Previous.ID)
	assert.Equal(t, ReasonRemoved, ev.Reason)
	cur, _ = s.Current(Capture)
	assert.Equal(t, "mic1", cur.ID)

	require.NoError(t, f.clock.Advance(ctx, 100*time.Millisecond))
	captured, calls := heard.snapshot()
	assert.Equal(t, 20, calls)
	m, d := gaps(captured)
	assert.Zero(t, m+d, "the default device continues the stream")

	// The headset comes back: reported, but the session now follows the default.
	require.NoError(t, f.b.Add(VirtualDevice{ID: "mic2", Direction: Capture, Source: f.room}))
	require.NoError(t, s.Poll(ctx))
	ev = nextEvent(t, ctx, s.Events(), DeviceAdded)
	assert.Equal(t, "mic2", ev.Device.ID)
	cur, _ = s.Current(Capture)
	assert.Equal(t, "mic1", cur.ID)
}

// hidingBackend lists a device as gone without stopping it (a backend that
// notices removal only by enumeration).
type hidingBackend struct {
	*VirtualBackend
	mu     sync.Mutex
	hidden map[string]bool
	fail   int // Open calls left to fail
}

func (h *hidingBackend) Devices(ctx context.Context) ([]DeviceInfo, error) {
	list, err := h.VirtualBackend.Devices(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	out := list[:0]
	for _, d := range list {
		if !h.hidden[d.ID] {
			out = append(out, d)
		}
	}
	return out, err
}

func (h *hidingBackend) Open(ctx context.Context, cfg DeviceConfig) (Device, error) {
	h.mu.Lock()
	if h.fail > 0 {
		h.fail--
		h.mu.Unlock()
		return nil, ErrInterrupted
	}
	h.mu.Unlock()
	return h.VirtualBackend.Open(ctx, cfg)
}

func TestSessionPollEvents(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	f := newFixture()
	hb := &hidingBackend{VirtualBackend: f.b, hidden: map[string]bool{}}
	s, err := Open(ctx, Config{Backend: hb, Playback: "spk1", PollInterval: -1})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()

	t.Run("default changed, followed by the default-following capture route", func(t *testing.T) {
		require.NoError(t, f.b.SetDefault("mic2"))
		require.NoError(t, f.b.SetDefault("spk2"))
		require.NoError(t, s.Poll(ctx))
		ev := nextEvent(t, ctx, s.Events(), DefaultChanged)
		assert.Equal(t, Capture, ev.Direction)
		assert.Equal(t, "mic2", ev.Device.ID)
		assert.Equal(t, "mic1", ev.Previous.ID)
		ev = nextEvent(t, ctx, s.Events(), DefaultChanged)
		assert.Equal(t, Playback, ev.Direction)
		ev = nextEvent(t, ctx, s.Events(), DeviceSwitched)
		assert.Equal(t, "mic2", ev.Device.ID)
		assert.Equal(t, ReasonDefaultChanged, ev.Reason)
		cur, _ := s.Current(Playback)
		assert.Equal(t, "spk1", cur.ID, "an explicitly chosen device stays")
	})
	t.Run("device in use vanishes from the list", func(t *testing.T) {
		hb.mu.Lock()
		hb.hidden["spk1"] = true
		hb.mu.Unlock()
		require.NoError(t, s.Poll(ctx))
		ev := nextEvent(t, ctx, s.Events(), DeviceRemoved)
		assert.Equal(t, "spk1", ev.Device.ID)
		ev = nextEvent(t, ctx, s.Events(), DeviceSwitched)
		assert.Equal(t, "spk2", ev.Device.ID)
		assert.Equal(t, ReasonRemoved, ev.Reason)
		assert.Empty(t, f.b.Instances("spk1"))
	})
	t.Run("added", func(t *testing.T) {
		require.NoError(t, f.b.Add(VirtualDevice{ID: "usb", Name: "USB Mic", Direction: Capture}))
		require.NoError(t, s.Poll(ctx))
		ev := nextEvent(t, ctx, s.Events(), DeviceAdded)
		assert.Equal(t, "USB Mic", ev.Device.Name)
	})
}

func TestSessionInterruptionRecovery(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	f := newFixture()
	hb := &hidingBackend{VirtualBackend: f.b, hidden: map[string]bool{}}
	var heard pcmLog
	s, err := Open(ctx, Config{Backend: hb, PollInterval: -1, RetryInterval: 10 * time.Millisecond,
		Callbacks: Callbacks{Capture: heard.capture}})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()

	for _, failures := range []int{0, 2} {
		hb.mu.Lock()
		hb.fail = failures // the first reopen attempts fail; the retry timer recovers
		hb.mu.Unlock()
		f.b.Interrupt("mic1", nil)
		ev := nextEvent(t, ctx, s.Events(), DeviceInterrupted)
		assert.ErrorIs(t, ev.Err, ErrInterrupted)
		assert.Equal(t, "mic1", ev.Device.ID)
		ev = nextEvent(t, ctx, s.Events(), DeviceRecovered)
		assert.Equal(t, "mic1", ev.Device.ID)
		assert.Equal(t, ReasonRecovered, ev.Reason)
		require.Len(t, f.b.Instances("mic1"), 1)

		_, before := heard.snapshot()
		require.NoError(t, f.clock.Advance(ctx, 100*time.Millisecond))
		pcm, after := heard.snapshot()
		assert.Equal(t, 10, after-before, "callbacks resume after recovery (failures=%d)", failures)
		m, d := gaps(pcm)
		assert.Zero(t, m+d)
	}
}

func TestSessionCloseStopsCallbacksAndEvents(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	f := newFixture()
	var heard pcmLog
	s, err := Open(ctx, Config{Backend: f.b, PollInterval: time.Millisecond, Callbacks: Callbacks{Capture: heard.capture}})
	require.NoError(t, err)
	require.NoError(t, f.clock.Advance(ctx, 50*time.Millisecond))
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
	_, ok := <-s.Events()
	assert.False(t, ok, "events closed")
	assert.Zero(t, f.clock.Tickers(), "devices closed")
	require.NoError(t, f.clock.Advance(ctx, 50*time.Millisecond))
	_, calls := heard.snapshot()
	assert.Equal(t, 5, calls)
	assert.ErrorIs(t, s.SetCapture(ctx, ""), ErrClosed)
	assert.ErrorIs(t, s.Poll(ctx), ErrClosed)
	_, ok = s.Current(Capture)
	assert.False(t, ok)
}

// TestEventsNeverDropNorBlock: nobody reads Events while the session emits
// many events; the session keeps working (no switch waits on the reader)
// and the reader later gets every event, in order. Close with events still
// unread does not hang and closes the channel.
func TestEventsNeverDropNorBlock(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	f := newFixture()
	s, err := Open(ctx, Config{Backend: f.b, PollInterval: -1})
	require.NoError(t, err)
	const n = 500
	mics := [2]string{"mic2", "mic1"}
	for i := range n {
		require.NoError(t, s.SetCapture(ctx, mics[i%2]), "switch %d", i)
	}
	for i := range n {
		ev := nextEvent(t, ctx, s.Events(), DeviceSwitched)
		require.Equal(t, mics[i%2], ev.Device.ID, "event %d", i)
		require.Equal(t, mics[(i+1)%2], ev.Previous.ID, "event %d", i)
	}
	require.NoError(t, s.SetCapture(ctx, "mic2")) // one left unread
	require.NoError(t, s.Close())
	_, ok := <-s.Events()
	assert.False(t, ok, "events closed")
}

func TestOpenVirtualKindRealTime(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	got := make(chan struct{})
	var once sync.Once
	calls := 0
	s, err := Open(ctx, Config{Kind: KindVirtual, Period: 20 * time.Millisecond, Direction: Capture,
		Callbacks: Callbacks{Capture: func(p []int16) {
			calls++
			if len(p) == 960 && calls == 10 {
				once.Do(func() { close(got) })
			}
		}}})
	require.NoError(t, err)
	select {
	case <-got:
	case <-ctx.Done():
		t.Fatal("no callbacks")
	}
	require.NoError(t, s.Close())
	_, ok := s.Current(Playback)
	assert.False(t, ok, "playback not opened")
}

func TestFind(t *testing.T) {
	list := []DeviceInfo{
		{ID: "a", Name: "Speaker", Direction: Playback},
		{ID: "b", Name: "Mic", Direction: Capture},
		{ID: "c", Name: "Headset", Direction: Capture, Default: true},
	}
	for _, tc := range []struct {
		dir  Direction
		sel  string
		want string
		err  error
	}{
		{Capture, "", "c", nil},
		{Playback, "", "a", nil}, // none marked default: first
		{Capture, "b", "b", nil},
		{Capture, "Mic", "b", nil},
		{Capture, "headset", "c", nil},
		{Capture, "Speaker", "", ErrNoDevice},
		{Duplex, "", "", ErrNoDevice},
	} {
		got, err := Find(list, tc.dir, tc.sel)
		if tc.err != nil {
			assert.ErrorIs(t, err, tc.err, "%v %q", tc.dir, tc.sel)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, tc.want, got.ID, "%v %q", tc.dir, tc.sel)
	}
}
