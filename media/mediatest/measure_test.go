//go:build !race

package mediatest

// Signal processing in one goroutine, which the race detector only slows:
// these tests build without it (scripts/test.sh runs them in a pass of
// their own).

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDelayFindsShiftAndSNR(t *testing.T) {
	for _, tc := range []struct {
		name string
		sig  []int16
	}{
		{"multitone", MultiTone(3*SampleRate, 1)},
		{"speechlike", SpeechLike(3*SampleRate, 2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const shift = 1234
			out := make([]int16, len(tc.sig)+shift)
			for i, v := range tc.sig {
				out[i+shift] = v / 2 // gain 0.5 must not count as noise
			}
			start := time.Now()
			d, c := Delay(tc.sig, out)
			el := time.Since(start)
			t.Logf("delay search over %d+%d samples: %v", len(tc.sig), len(out), el)
			assert.Equal(t, shift, d)
			assert.Greater(t, c, 0.999)
			assert.Greater(t, SNR(tc.sig, out, d), 40.0)
			assert.Less(t, SNR(tc.sig, out, d+7), 10.0)
		})
	}
}

func TestSNRNoise(t *testing.T) {
	ref := Sine(48000, 1000, 0.5)
	out := make([]int16, len(ref))
	noise := Sine(48000, 1234.5, 0.05) // 20 dB below
	for i := range out {
		out[i] = ref[i] + noise[i]
	}
	assert.InDelta(t, 20, SNR(ref, out, 0), 0.5)
	assert.True(t, math.IsInf(SNR(ref, ref, 0), 1))
}

func TestWindows(t *testing.T) {
	ref := MultiTone(2*SampleRate, 3)
	out := make([]int16, len(ref)+2000)
	copy(out[500:], ref[:SampleRate])
	copy(out[SampleRate+980:], ref[SampleRate:]) // delay grows by 480 halfway
	ws := Windows(ref, out, SampleRate/2, 4800)
	require.Len(t, ws, 4)
	assert.Equal(t, 500, ws[0].Delay)
	assert.Equal(t, 980, ws[3].Delay)
	assert.Greater(t, ws[3].SNR, 40.0)
}

func BenchmarkDelay3s(b *testing.B) {
	ref := MultiTone(3*SampleRate, 1)
	out := make([]int16, len(ref)+4800)
	copy(out[2000:], ref)
	for b.Loop() {
		Delay(ref, out)
	}
}

func TestToneShare(t *testing.T) {
	assert.InDelta(t, 1, ToneShare(Sine(SampleRate, 1000, 0.25), 1000), 0.01)
	assert.Less(t, ToneShare(Sine(SampleRate, 1000, 0.25), 425), 0.01)
	assert.Zero(t, ToneShare(make([]int16, 480), 1000))
}
