package main

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/media/mediatest"
	"github.com/stretchr/testify/assert"
)

// TestFindBeeps checks the beep detector the browser test relies on, on
// synthetic signals: a beep train like Chrome's fake microphone is found
// with its period and frequency; a steady tone, silence and noise are not
// mistaken for one.
func TestFindBeeps(t *testing.T) {
	const n = 3 * 48000
	rng := rand.New(rand.NewPCG(1, 2))
	noise := func(amp float64) []int16 {
		p := make([]int16, n)
		for i := range p {
			p[i] = int16(amp * (rng.Float64()*2 - 1))
		}
		return p
	}
	beeps := noise(30)
	for start := 7000; start+960 < n; start += 24000 { // 20 ms at 400 Hz every 500 ms
		for i := range 960 {
			beeps[start+i] += int16(12000 * math.Sin(2*math.Pi*400*float64(i)/48000))
		}
	}
	tone := make([]int16, n)
	for i := range tone {
		tone[i] = int16(8000 * math.Sin(2*math.Pi*1000*float64(i)/48000))
	}

	r := findBeeps(beeps)
	assert.Equal(t, 6, r.Bursts)
	assert.Equal(t, 500*time.Millisecond, r.Period)
	assert.InDelta(t, 400, r.Freq, 5)
	assert.Greater(t, r.Purity, 0.5)

	assert.LessOrEqual(t, findBeeps(tone).Bursts, 1, "a steady tone is one burst at most")
	assert.Zero(t, findBeeps(make([]int16, n)).Bursts, "silence")
	assert.Less(t, findBeeps(noise(3000)).Purity, 0.05, "noise has no dominant frequency")
	assert.InDelta(t, 1, mediatest.ToneShare(tone[:48000], 1000), 0.01)
	assert.Less(t, mediatest.ToneShare(tone[:48000], 400), 0.01)
}
