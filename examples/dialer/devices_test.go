package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Without a sound server (and here without a sound card), `dialer devices`
// prints its answer and nothing else: the audio system's own complaints
// (libasound writes "cannot find card" and the like straight to the
// process's stderr while miniaudio probes it) stay off the terminal.
func TestDevicesQuietWithoutSoundServer(t *testing.T) {
	bin := buildDialer(t)
	cmd := exec.Command(bin, "devices")
	// A sound server address where none listens: PulseAudio is absent
	// even on a machine running one.
	cmd.Env = append(os.Environ(), "PULSE_SERVER=unix:"+filepath.Join(t.TempDir(), "none"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "stderr: %s", stderr.String())
	assert.Contains(t, stdout.String(), "capture devices:")
	assert.Contains(t, stdout.String(), "playback devices:")
	assert.Empty(t, stderr.String(), "the audio system's chatter reached stderr")
}
