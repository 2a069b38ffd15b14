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
)

// TestProbeToneNoNearRepeat: no stretch of the probe correlates with the
// probe a little later (10 ms to the 1 s MouthToEar searches by default)
// anywhere near as well as a codec's output correlates with its input
// (about 0.93 through Opus and a mixer). Otherwise a delay search can lock
// onto the near-repeat and report the true delay plus its lag, and every
// window then matches there above goodCorr.
func TestProbeToneNoNearRepeat(t *testing.T) {
	const maxCorr = 0.5
	for _, seed := range []uint64{3, 9} {
		sig := ProbeTone(6*SampleRate, seed)
		for _, n := range []int{samplesOf(500 * time.Millisecond), samplesOf(2 * time.Second)} {
			for from := 0; from+n+SampleRate <= len(sig); from += SampleRate {
				lag, c := worstSelfCorrelation(sig[from:from+n+SampleRate], n, samplesOf(10*time.Millisecond))
				assert.Less(t, c, maxCorr, "seed %d, %v from %v: correlates with itself %v later",
					seed, durationOf(n), durationOf(from), durationOf(lag))
			}
		}
	}
}

// worstSelfCorrelation returns the lag in [minLag, len(s)-n] at which
// s[:n] correlates best (normalised) with s[lag:lag+n], and that
// correlation.
func worstSelfCorrelation(s []int16, n, minLag int) (int, float64) {
	size := 1
	for size < 2*len(s) {
		size <<= 1
	}
	a := make([]complex128, size)
	b := make([]complex128, size)
	for i, v := range s[:n] {
		a[i] = complex(float64(v), 0)
	}
	for i, v := range s {
		b[i] = complex(float64(v), 0)
	}
	fft(a, false)
	fft(b, false)
	for i := range a {
		a[i] = b[i] * complex(real(a[i]), -imag(a[i]))
	}
	fft(a, true)
	// Energy of every n-sample stretch of s, by prefix sums.
	sum := make([]float64, len(s)+1)
	for i, v := range s {
		sum[i+1] = sum[i] + float64(v)*float64(v)
	}
	ref := sum[n]
	best, at := math.Inf(-1), 0
	for l := minLag; l+n <= len(s); l++ {
		c := real(a[l]) / math.Sqrt(ref*(sum[l+n]-sum[l]))
		if c > best {
			best, at = c, l
		}
	}
	return at, best
}
