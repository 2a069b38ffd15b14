package audio

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A merged backend lists every part's devices, keeps the first part's
// default per direction, and opens each device on the part that has it.
func TestMerge(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	file := NewVirtualBackend(VirtualBackendConfig{Devices: []VirtualDevice{
		{ID: "file-in", Direction: Capture, Default: true},
	}})
	sys := NewVirtualBackend(VirtualBackendConfig{Devices: []VirtualDevice{
		{ID: "mic", Direction: Capture, Default: true},
		{ID: "headset", Direction: Capture},
		{ID: "speaker", Direction: Playback, Default: true},
	}})
	m := Merge(file, sys)
	assert.Equal(t, "virtual+virtual", m.Name())

	list, err := m.Devices(ctx)
	require.NoError(t, err)
	type dev struct {
		id  string
		def bool
	}
	var got []dev
	for _, d := range list {
		got = append(got, dev{d.ID, d.Default})
	}
	assert.Equal(t, []dev{{"file-in", true}, {"mic", false}, {"headset", false}, {"speaker", true}}, got)

	for _, tc := range []struct {
		dir       Direction
		sel, want string
		part      *VirtualBackend
	}{
		{Capture, "", "file-in", file},
		{Capture, "mic", "mic", sys},
		{Capture, "HEADSET", "headset", sys},
		{Playback, "", "speaker", sys},
	} {
		d, err := m.Open(ctx, DeviceConfig{Direction: tc.dir, Device: tc.sel})
		require.NoError(t, err, "%s %q", tc.dir, tc.sel)
		assert.Equal(t, tc.want, d.Info().ID)
		assert.Len(t, tc.part.Instances(tc.want), 1, "%s opened on its own part", tc.want)
		require.NoError(t, d.Close())
	}
	_, err = m.Open(ctx, DeviceConfig{Direction: Playback, Device: "nope"})
	assert.ErrorIs(t, err, ErrNoDevice)

	require.NoError(t, m.Close())
	for _, b := range []*VirtualBackend{file, sys} {
		_, err := b.Devices(ctx)
		assert.ErrorIs(t, err, ErrClosed, "closing the merge closes its parts")
	}
	_, err = m.Devices(ctx)
	assert.ErrorIs(t, err, ErrClosed)
}
