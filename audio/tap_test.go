package audio

import (
	"errors"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/media/pcm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The taps see exactly what the callbacks captured and what the devices
// played, in order, whichever devices the backend opens.
func TestTap(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	clock := NewManualClock(time.Unix(0, 0))
	played := &pcm.Recorder{}
	b := NewVirtualBackend(VirtualBackendConfig{Clock: clock, Devices: []VirtualDevice{
		{ID: "mic", Direction: Capture, Source: &counter{}},
		{ID: "spk", Direction: Playback, Sink: played},
	}})
	var capTap, playTap, capCB pcmLog
	tb := Tap(b, Callbacks{Capture: capTap.capture, Playback: playTap.capture})
	assert.Equal(t, "virtual", tb.Name())
	list, err := tb.Devices(ctx)
	require.NoError(t, err)
	assert.Len(t, list, 2)

	mic, err := tb.Open(ctx, DeviceConfig{Direction: Capture})
	require.NoError(t, err)
	spk, err := tb.Open(ctx, DeviceConfig{Direction: Playback})
	require.NoError(t, err)
	src := &counter{}
	require.NoError(t, mic.Start(Callbacks{Capture: capCB.capture}))
	require.NoError(t, spk.Start(Callbacks{Playback: func(out []int16) { _, _ = src.ReadPCM(out) }}))
	require.NoError(t, clock.Advance(ctx, 100*time.Millisecond))
	require.NoError(t, mic.Close())
	require.NoError(t, spk.Close())

	got, calls := capTap.snapshot()
	want, _ := capCB.snapshot()
	assert.Equal(t, 10, calls, "one tap call per period")
	assert.Len(t, got, Samples(100*time.Millisecond))
	assert.Equal(t, want, got, "the capture tap sees what the callback got")
	got, calls = playTap.snapshot()
	assert.Equal(t, 10, calls)
	assert.Equal(t, played.Samples(), got, "the playback tap sees what the device played")
	m, d := gaps(got)
	assert.Zero(t, m+d)

	require.NoError(t, tb.Close())
	_, err = b.Devices(ctx)
	assert.ErrorIs(t, err, ErrClosed, "closing the tap closes the backend it wraps")
}

// A nil tap leaves its direction alone, and errors from Open pass through.
func TestTapNil(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	clock := NewManualClock(time.Unix(0, 0))
	b := NewVirtualBackend(VirtualBackendConfig{Clock: clock, Devices: []VirtualDevice{
		{ID: "mic", Direction: Capture, Source: &counter{}},
	}})
	defer b.Close()
	var cb pcmLog
	mic, err := Tap(b, Callbacks{}).Open(ctx, DeviceConfig{Direction: Capture})
	require.NoError(t, err)
	require.NoError(t, mic.Start(Callbacks{Capture: cb.capture}))
	require.NoError(t, clock.Advance(ctx, 50*time.Millisecond))
	require.NoError(t, mic.Close())
	_, calls := cb.snapshot()
	assert.Equal(t, 5, calls)

	_, err = Tap(b, Callbacks{}).Open(ctx, DeviceConfig{Direction: Playback})
	assert.True(t, errors.Is(err, ErrNoDevice), "%v", err)
}
