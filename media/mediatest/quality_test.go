//go:build !race

package mediatest

// Signal processing in one goroutine, which the race detector only slows:
// these tests build without it (scripts/test.sh runs them in a pass of
// their own).

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestQualityIdenticalAndShiftedScoreTop(t *testing.T) {
	x := Speech(t, SpeechSet()[0])
	q, err := Quality(x, x)
	require.NoError(t, err)
	assert.InDelta(t, 5, q.MOS, 1e-9)
	assert.InDelta(t, 1, q.NSIM, 1e-9)
	assert.Len(t, q.Bands, 21)
	assert.GreaterOrEqual(t, len(q.Patches), 10, "a 7 s utterance has more than ten voiced 400 ms patches")

	// Later, quieter and with silence around it, as out of a call: the same.
	const delay = 1234
	d := make([]int16, delay+len(x)+SampleRate/2)
	for i, v := range x {
		d[delay+i] = v / 3
	}
	q, err = Quality(x, d)
	require.NoError(t, err)
	assert.InDelta(t, delay, q.Delay, 3, "global delay (16 kHz resolution)")
	assert.Greater(t, q.MOS, 4.95)
	assert.Greater(t, q.NSIM, 0.995)
}

func TestQualityFallsWithNoise(t *testing.T) {
	x := Speech(t, SpeechSet()[1])
	prevMOS, prevNSIM := 5.0, 1.0
	for _, snr := range []float64{30, 20, 10, 0} {
		q, err := Quality(x, addNoise(x, snr, uint64(snr)))
		require.NoError(t, err)
		t.Logf("SNR %2.0f dB: MOS %.2f NSIM %.3f", snr, q.MOS, q.NSIM)
		assert.Less(t, q.MOS, prevMOS, "SNR %v dB", snr)
		assert.Less(t, q.NSIM, prevNSIM, "SNR %v dB", snr)
		prevMOS, prevNSIM = q.MOS, q.NSIM
	}
	assert.Less(t, prevMOS, 3.0, "speech at 0 dB SNR is poor")
}

func TestQualityFallsWithStretches(t *testing.T) {
	x := Speech(t, SpeechSet()[2])
	prev := 5.0
	for _, period := range []float64{2, 0.5, 0.25} {
		s := stretch(x, period)
		require.Greater(t, len(s), len(x), "stretches were inserted")
		q, err := Quality(x, s)
		require.NoError(t, err)
		t.Logf("5 ms stretch every %.2f s (%d in all): MOS %.2f NSIM %.3f", period, (len(s)-len(x))/(SampleRate/200), q.MOS, q.NSIM)
		assert.Less(t, q.MOS, prev, "stretch every %v s", period)
		prev = q.MOS
		// Every patch still finds its match: the stretches move the
		// speech, per-patch alignment follows it.
		for _, p := range q.Patches {
			assert.GreaterOrEqual(t, p.Deg, 0, "patch at %d matched nothing", p.Ref)
		}
	}
}

// TestQualityFollowsDelaySteps inserts silence into a pause, as a jitter
// buffer that grows its delay where nobody hears it: the score stays at the
// top, and each patch after the step is matched that much later.
func TestQualityFollowsDelaySteps(t *testing.T) {
	x := Speech(t, SpeechSet()[0])
	const frame = SampleRate / 50
	var peak float64
	for f := 0; f+frame <= len(x); f += frame {
		peak = max(peak, meanSquare16(x[f:f+frame]))
	}
	at := -1
	for f := len(x) / 2; f+frame <= len(x); f += frame {
		if meanSquare16(x[f:f+frame]) < peak/1000 { // 30 dB down: a pause
			at = f
			break
		}
	}
	require.Positive(t, at, "a pause in the second half")
	const step = SampleRate / 4
	d := append(append(append([]int16(nil), x[:at]...), make([]int16, step)...), x[at:]...)
	q, err := Quality(x, d)
	require.NoError(t, err)
	assert.Greater(t, q.MOS, 4.95)
	for _, p := range q.Patches {
		want := 0
		if p.Ref > at {
			want = step
		}
		assert.InDelta(t, want, p.Deg-p.Ref, 3, "patch at %d", p.Ref)
	}
}

func TestQualityDegenerateInput(t *testing.T) {
	x := Speech(t, SpeechSet()[3])
	_, err := Quality(x[:SampleRate/20], x)
	assert.ErrorIs(t, err, ErrTooShort, "50 ms reference")
	_, err = Quality(make([]int16, len(x)), x)
	assert.ErrorIs(t, err, ErrTooShort, "silent reference")
	_, err = Quality(x, nil)
	assert.ErrorIs(t, err, ErrTooShort, "nothing received")

	q, err := Quality(x, make([]int16, len(x)))
	require.NoError(t, err)
	assert.Equal(t, 1.0, q.MOS, "silence received")

	other := Speech(t, SpeechSet()[0])
	q, err = Quality(x, other)
	require.NoError(t, err)
	assert.Less(t, q.MOS, 2.5, "different sentence, different voice")
}

// addNoise returns x plus white Gaussian noise at snr dB under x's mean
// power.
func addNoise(x []int16, snr float64, seed uint64) []int16 {
	rng := rand.New(rand.NewPCG(seed, 0x6e6f697365))
	sigma := math.Sqrt(meanSquare16(x) / math.Pow(10, snr/10))
	out := make([]int16, len(x))
	for i, v := range x {
		out[i] = clamp16(float64(v) + sigma*rng.NormFloat64())
	}
	return out
}

func meanSquare16(x []int16) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return s / float64(len(x))
}

// stretch returns x with a 5 ms repeat inserted about every period seconds
// in voiced stretches (a 20 ms frame at least a quarter as loud as the
// loudest): the audible step of a jitter buffer that grows its delay in the
// middle of speech.
func stretch(x []int16, period float64) []int16 {
	const frame, piece = SampleRate / 50, SampleRate / 200
	var peak float64
	for f := 0; f+frame <= len(x); f += frame {
		peak = max(peak, meanSquare16(x[f:f+frame]))
	}
	out := make([]int16, 0, len(x)*11/10)
	next := int(period * SampleRate)
	last := 0
	for f := frame; f+frame <= len(x); f += frame {
		if f < next || meanSquare16(x[f:f+frame]) < peak/16 {
			continue
		}
		out = append(out, x[last:f]...)
		out = append(out, x[f-piece:f]...)
		last = f
		next = f + int(period*SampleRate)
	}
	return append(out, x[last:]...)
}
