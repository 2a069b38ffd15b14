//go:build cgo

package apm

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEchoGoals runs the processing dialtone ships (WebRTC's echo
// canceller told the device latency) through the echo scene and checks
// the goals it meets: at least 30 dB of echo removed in steady state,
// within a second from the start and again within a second of the
// unreported delay jump, for under 5 % of a core. The fourth goal, the
// near end within 3 dB of its clean level in double talk, it does not
// meet: its non-linear suppression ducks the near end by 5–6 dB while
// both talk. The test holds that loss under 8 dB so it does not grow
// unnoticed.
func TestEchoGoals(t *testing.T) {
	s := echoScene(t)
	p, err := New(aecOnly)
	require.NoError(t, err)
	defer p.Close()
	p.SetDelay(delayBefore)
	f, _ := run(p, s)
	t.Logf("webrtc: %v", f)
	assert.GreaterOrEqual(t, f.ERLE, 30.0, "steady-state ERLE")
	assert.GreaterOrEqual(t, f.ERLEAfter, 30.0, "ERLE after the delay jump")
	assert.Less(t, f.Converge, time.Second, "time to converge")
	assert.Less(t, f.Reconverge, time.Second, "time to re-converge after the delay jump")
	assert.Less(t, f.NearLoss, 8.0, "near-end loss in double talk (goal 3 dB, not met)")
	assert.Less(t, f.CorePercent, 5.0, "share of a core")
	st := p.Stats()
	assert.True(t, st.Active)
	assert.Greater(t, st.ERLE, 20.0, "the processor's own ERLE estimate")
}

// TestSetConfigLive switches the echo canceller off and on in the middle
// of the scene: off, the echo goes out as it came in; back on, it is
// removed again.
func TestSetConfigLive(t *testing.T) {
	s := echoScene(t)
	p, err := New(aecOnly)
	require.NoError(t, err)
	defer p.Close()
	p.SetDelay(delayBefore)
	out := make([]int16, len(s.mic))
	copy(out, s.mic)
	off, on := samples(3*time.Second), samples(5*time.Second)
	for i := 0; i+block <= samples(talkStart); i += block {
		switch i {
		case off:
			require.NoError(t, p.SetConfig(Config{HighPass: true}))
		case on:
			require.NoError(t, p.SetConfig(aecOnly))
		}
		p.Playback(s.far[i : i+block])
		p.Capture(out[i : i+block])
	}
	before, _ := s.erleOver(out, samples(2*time.Second), off)
	during, _ := s.erleOver(out, off+samples(500*time.Millisecond), on)
	after, _ := s.erleOver(out, on+samples(time.Second), samples(talkStart))
	t.Logf("ERLE on %.1f dB, off %.1f dB, on again %.1f dB", before, during, after)
	assert.Greater(t, before, 20.0)
	assert.Less(t, during, 3.0)
	assert.Greater(t, after, 20.0)
	assert.Equal(t, aecOnly, p.Stats().Config)
}

// TestOffPassesThrough checks that a Processor with everything off (and
// any period that is not whole 10 ms blocks) leaves the audio untouched.
func TestOffPassesThrough(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		period int
	}{
		{"off", Config{}, 2 * block},
		{"odd period", Default(), block / 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.cfg)
			require.NoError(t, err)
			defer p.Close()
			in := make([]int16, tc.period)
			for i := range in {
				in[i] = int16(1000 * (i%7 - 3))
			}
			got := append([]int16(nil), in...)
			for range 50 {
				p.Playback(in)
				copy(got, in)
				p.Capture(got)
			}
			assert.Equal(t, in, got)
		})
	}
}
