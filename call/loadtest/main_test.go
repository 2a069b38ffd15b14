package main

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/media"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-calls", "3", "-app", "audio", "-bandwidth", "wide", "-complexity", "1", "-window", "2s", "-warmup", "0s"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, options{calls: 3, complexity: 1, bandwidth: media.OpusWideband, app: media.OpusAudio, window: 2 * time.Second}, o)

	o, err = parseFlags(nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, options{calls: 20, bandwidth: media.OpusFullband, app: media.OpusVoIP, window: 10 * time.Second, warmup: 5 * time.Second}, o)

	for _, bad := range [][]string{{"-app", "music"}, {"-bandwidth", "2"}, {"-calls", "0"}} {
		_, err := parseFlags(bad, io.Discard)
		assert.Error(t, err, "%v", bad)
	}
}

// One call for a one-second window: the program sets it up, measures it
// and reports every figure.
func TestRunOneCall(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(options{calls: 1, window: time.Second, bandwidth: media.OpusFullband, app: media.OpusVoIP}, &out))
	t.Log("\n" + out.String())
	for _, figure := range []string{"calls                1\n", "concealed", "late", "underruns", "stretched", "buffer delay", "cores", "other processes", "sched wait p99 ", "sched wait p99.9"} {
		assert.Contains(t, out.String(), figure)
	}
}
