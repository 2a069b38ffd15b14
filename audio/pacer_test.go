package audio

import (
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPacerManyDevices: devices on the system clock share the pacer's few
// goroutines instead of taking one each, and every one of them keeps its
// pace.
func TestPacerManyDevices(t *testing.T) {
	const n = 200
	before := runtime.NumGoroutine()
	devs := make([]*Virtual, n)
	for i := range devs {
		v, err := NewVirtual(VirtualConfig{Direction: Duplex, Period: 10 * time.Millisecond})
		require.NoError(t, err)
		require.NoError(t, v.Start(Callbacks{Capture: func([]int16) {}, Playback: func([]int16) {}}))
		devs[i] = v
	}
	ctx := testCtx(t, 10*time.Second)
	for _, v := range devs {
		require.NoError(t, v.WaitPeriods(ctx, 20))
	}
	extra := runtime.NumGoroutine() - before
	t.Logf("%d devices, %d extra goroutines", n, extra)
	assert.LessOrEqual(t, extra, paceSlots+1, "devices must not take a goroutine each")
	for _, v := range devs {
		require.NoError(t, v.Close())
		assert.NoError(t, v.Err())
	}
}

// TestPacerCloseWaitsForCallback: Close returns only after a running
// callback has returned, and no callback runs after it.
func TestPacerCloseWaitsForCallback(t *testing.T) {
	v, err := NewVirtual(VirtualConfig{Direction: Capture})
	require.NoError(t, err)
	var inside, after atomic.Bool
	var closed atomic.Bool
	entered := make(chan struct{})
	var once sync.Once
	require.NoError(t, v.Start(Callbacks{Capture: func([]int16) {
		if closed.Load() {
			after.Store(true)
		}
		inside.Store(true)
		once.Do(func() { close(entered) })
		time.Sleep(20 * time.Millisecond)
		inside.Store(false)
	}}))
	<-entered
	require.NoError(t, v.Close())
	closed.Store(true)
	assert.False(t, inside.Load(), "Close returned while the callback ran")
	time.Sleep(50 * time.Millisecond)
	assert.False(t, after.Load(), "a callback ran after Close")
}

// TestPacerInterruptFromCallback: a device can stop itself from its own
// callback on the shared goroutines without deadlocking them; the other
// devices keep running.
func TestPacerInterruptFromCallback(t *testing.T) {
	unplugged := errors.New("unplugged")
	v, err := NewVirtual(VirtualConfig{Direction: Capture})
	require.NoError(t, err)
	calls := 0
	require.NoError(t, v.Start(Callbacks{Capture: func([]int16) {
		calls++
		if calls == 3 {
			v.Interrupt(unplugged)
		}
	}}))
	other, err := NewVirtual(VirtualConfig{Direction: Capture})
	require.NoError(t, err)
	require.NoError(t, other.Start(Callbacks{Capture: func([]int16) {}}))
	ctx := testCtx(t, 5*time.Second)
	select {
	case <-v.Done():
	case <-ctx.Done():
		t.Fatal("the interrupted device never stopped")
	}
	assert.ErrorIs(t, v.Err(), unplugged)
	// A tick that came late runs every capture period due at once, so the
	// periods of that tick after the third may still run; none after Done.
	ran := calls
	assert.GreaterOrEqual(t, ran, 3)
	time.Sleep(50 * time.Millisecond)
	assert.Equal(t, ran, calls, "no callback once the device is done")
	n := other.Periods()
	require.NoError(t, other.WaitPeriods(ctx, n+5))
	require.NoError(t, other.Close())
	require.NoError(t, v.Close())
}

// TestPacerLetsOthersRun: a slot whose playback devices have worked for
// longer than paceYield steps aside before its next device, so a goroutine
// woken meanwhile (a network reader with a packet for a jitter buffer)
// runs then, not after the whole slot's work. Capture devices step aside
// only after paceYieldCapture: their packets are what the far ends wait
// for. With one P the order is the rule's but for rare strays (below).
func TestPacerLetsOthersRun(t *testing.T) {
	for _, tc := range []struct {
		name  string
		early bool
		want  []string
	}{
		{"playback", false, []string{"device 1", "reader", "device 2"}},
		{"capture", true, []string{"device 1", "device 2", "reader"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			// The order is the rule's, but not every time: the slot's
			// yield follows the wall clock (a virtual machine descheduled
			// while the first device works makes the capture slot yield
			// too), and after a yield Go's scheduler takes the global run
			// queue first one schedule in 61, which can run the slot again
			// before the reader. Each strays rarely; a slot that breaks the
			// rule strays every time. So: up to five attempts, one in the
			// rule's order.
			const attempts = 5
			for attempt := 1; ; attempt++ {
				order, took := pacerYieldOrder(t, tc.early)
				if slices.Equal(order, tc.want) {
					return
				}
				t.Logf("attempt %d: order %v, the first device took %v", attempt, order, took)
				if attempt == attempts {
					assert.Equal(t, tc.want, order, "in %d attempts", attempts)
					return
				}
			}
		})
	}
}

// pacerYieldOrder runs TestPacerLetsOthersRun's scene once on a pacer of
// its own: device 1 wakes a reader goroutine, then works for a little
// more than paceYield; device 2 shares its slot. It returns the order in
// which the three ran and how long device 1 took.
func pacerYieldOrder(t *testing.T, early bool) ([]string, time.Duration) {
	p := &pacer{slots: map[time.Duration]*paceSet{}}
	const period = 37 * time.Millisecond
	var mu sync.Mutex
	var order []string
	var took time.Duration
	note := func(s string) {
		mu.Lock()
		order = append(order, s)
		mu.Unlock()
	}
	woken := make(chan struct{})
	probeDone := make(chan struct{})
	go func() {
		<-woken
		note("reader")
		close(probeDone)
	}()
	var first, second atomic.Bool
	var stops []func()
	// paceSlots+1 devices: the last shares the first device's slot and
	// runs after it in the same tick.
	for i := range paceSlots + 1 {
		fn := func(time.Time) {}
		switch i {
		case 0:
			fn = func(time.Time) {
				if first.Swap(true) {
					return
				}
				close(woken)
				start := time.Now()
				for time.Since(start) < paceYield+100*time.Microsecond { // well under paceYieldCapture
				}
				mu.Lock()
				took = time.Since(start)
				mu.Unlock()
				note("device 1")
			}
		case paceSlots:
			fn = func(time.Time) {
				if second.Load() || !first.Load() {
					return
				}
				second.Store(true)
				note("device 2")
			}
		}
		stop, done := p.schedule(period, early, fn)
		stops = append(stops, func() { stop(); <-done })
	}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	select {
	case <-probeDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the woken goroutine never ran")
	}
	require.Eventually(t, second.Load, 5*time.Second, time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(order), took
}

// TestPacerCaptureFirst: in a slot, capture devices tick before playback
// devices whatever the order they started in. A capture tick starts the
// send path (encode, packet out), whose delay the far end's jitter buffer
// must cover; a playback tick only pulls from a local buffer, and pulling
// late costs nothing. Under load a slot's later devices run milliseconds
// after its first (at 100 calls, more than a period), so the order
// decides which delay grows.
func TestPacerCaptureFirst(t *testing.T) {
	p := &pacer{slots: map[time.Duration]*paceSet{}}
	const period = 41 * time.Millisecond // a set of its own
	var mu sync.Mutex
	var order []string
	var armed atomic.Bool // set once both devices are in the slot
	record := func(name string) func(time.Time) {
		return func(time.Time) {
			mu.Lock()
			if armed.Load() && len(order) < 2 {
				order = append(order, name)
			}
			mu.Unlock()
		}
	}
	// Slot 0 gets the playback device first, the other slots one device
	// each, and then slot 0 (the emptiest, first) the capture device.
	scheduleUntilCleanup(t, p, period, false, record("playback"))
	for range paceSlots - 1 {
		scheduleUntilCleanup(t, p, period, false, func(time.Time) {})
	}
	scheduleUntilCleanup(t, p, period, true, record("capture"))
	armed.Store(true)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(order) == 2
	}, 5*time.Second, time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"capture", "playback"}, order)
}

// scheduleUntilCleanup schedules fn on p and, when the test ends, stops it
// and waits for its last call to return.
func scheduleUntilCleanup(t *testing.T, p *pacer, period time.Duration, early bool, fn func(time.Time)) {
	stop, done := p.schedule(period, early, fn)
	t.Cleanup(func() {
		stop()
		<-done
	})
}
