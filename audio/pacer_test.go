package audio

import (
	"errors"
	"runtime"
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
	assert.Equal(t, 3, calls)
	n := other.Periods()
	require.NoError(t, other.WaitPeriods(ctx, n+5))
	require.NoError(t, other.Close())
	require.NoError(t, v.Close())
}
