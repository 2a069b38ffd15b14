package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/media"
	"github.com/dialtone-dev/dialtone/media/mediatest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var resultLine = regexp.MustCompile(`(?m)^\s+(\w+)\s+→\s+(\w+)\s+mouth-to-ear\s+(-?[\d.]+) ms\s+SNR\s+(-?[\d.]+) dB\s+corr\s+([\d.]+)`)

type direction struct {
	delayMs, snr, corr float64
}

// results reads the demo's measurement lines, keyed "alice→bob".
func results(t *testing.T, out string) map[string]direction {
	t.Helper()
	got := map[string]direction{}
	for _, m := range resultLine.FindAllStringSubmatch(out, -1) {
		var d direction
		var err error
		d.delayMs, err = strconv.ParseFloat(m[3], 64)
		require.NoError(t, err)
		d.snr, err = strconv.ParseFloat(m[4], 64)
		require.NoError(t, err)
		d.corr, err = strconv.ParseFloat(m[5], 64)
		require.NoError(t, err)
		got[m[1]+"→"+m[2]] = d
	}
	return got
}

// checkSane asserts the figures a clean loopback call must give: the far
// end heard the prompt (correlation), within the delay a 20 ms frame plus a
// small jitter buffer allows, with codec-level quality.
func checkSane(t *testing.T, out string) {
	t.Helper()
	res := results(t, out)
	require.Len(t, res, 2, "want one measurement line per direction:\n%s", out)
	for _, dir := range []string{"alice→bob", "bob→alice"} {
		r, ok := res[dir]
		require.True(t, ok, "no measurement for %s", dir)
		t.Logf("%s: mouth-to-ear %.1f ms, SNR %.1f dB, corr %.3f", dir, r.delayMs, r.snr, r.corr)
		assert.Greater(t, r.delayMs, 5.0, "%s: faster than one frame can be", dir)
		assert.Less(t, r.delayMs, 300.0, "%s: loopback delay too long", dir)
		assert.Greater(t, r.snr, 5.0, "%s", dir)
		assert.Greater(t, r.corr, 0.8, "%s", dir)
	}
}

func runDemo(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, args, &out)
	require.NoError(t, err, "demo output:\n%s", out.String())
	return out.String()
}

// TestDemo runs the demo as `go run ./examples/demo` does and checks that
// the call went through every state on both sides over the WebSocket
// server, printed stats, and measured sane delay and SNR both ways.
func TestDemo(t *testing.T) {
	out := runDemo(t)
	t.Log("\n" + out)
	for _, want := range []string{
		`connected to signaling as "alice" over WebSocket`,
		`connected to signaling as "bob" over WebSocket`,
		"alice  call", "→ dialing", "→ waiting", "→ ringing", "→ connecting", "→ connected",
		"→ ended (hangup)", "→ ended (remote-hangup)",
		"stats rtt", "MOS",
	} {
		assert.Contains(t, out, want)
	}
	assert.GreaterOrEqual(t, strings.Count(out, "stats rtt"), 4, "a stats line per call per second")
	checkSane(t, out)
}

// TestDemoWAV feeds alice's microphone from a WAV file.
func TestDemoWAV(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prompt.wav")
	w, err := media.CreateWAV(path)
	require.NoError(t, err)
	_, err = w.WritePCM(mediatest.SpeechLike(4*mediatest.SampleRate, 7))
	require.NoError(t, err)
	require.NoError(t, w.Close())

	out := runDemo(t, "-wav", path, "-talk", "2s")
	checkSane(t, out)
}

func TestDemoFlags(t *testing.T) {
	var out bytes.Buffer
	assert.Error(t, run(context.Background(), []string{"-nope"}, &out))
	assert.Error(t, run(context.Background(), []string{"extra"}, &out))
	assert.ErrorContains(t, run(context.Background(), []string{"-wav", filepath.Join(t.TempDir(), "missing.wav")}, &out), "-wav")
}
