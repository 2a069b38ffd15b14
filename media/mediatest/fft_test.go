//go:build !race

package mediatest

// Signal processing in one goroutine, which the race detector only slows:
// these tests build without it (scripts/test.sh runs them in a pass of
// their own).

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// Convolve is the direct sum Σ h[k]·x[i−k], truncated to len(x).
func TestConvolve(t *testing.T) {
	x := []float64{1, -2, 3, 0.5, 0, 4, -1}
	h := []float64{0.5, 0.25, -1}
	got := Convolve(x, h)
	assert.Len(t, got, len(x))
	for i := range x {
		var want float64
		for k, hk := range h {
			if i-k >= 0 {
				want += hk * x[i-k]
			}
		}
		assert.InDelta(t, want, got[i], 1e-9, "sample %d", i)
	}
}
