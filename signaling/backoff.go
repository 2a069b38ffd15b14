package signaling

import (
	"math/rand/v2"
	"time"
)

// Backoff is the reconnection schedule: attempt n waits
// min(Max, Initial·Multiplier^(n-1)), randomised by ±Jitter/2 of itself so a
// server restart is not met by every client at the same instant.
type Backoff struct {
	// Initial is the first wait. Default 250 ms.
	Initial time.Duration
	// Max caps the wait. Default 30 s.
	Max time.Duration
	// Multiplier grows the wait per attempt. Default 2.
	Multiplier float64
	// Jitter is the randomised fraction (0..1) of each wait. Default 0.5.
	Jitter float64
}

func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = 250 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 30 * time.Second
	}
	if b.Max < b.Initial {
		b.Max = b.Initial
	}
	if b.Multiplier < 1 {
		b.Multiplier = 2
	}
	if b.Jitter <= 0 || b.Jitter > 1 {
		b.Jitter = 0.5
	}
	return b
}

// Delay returns the wait before attempt n (n >= 1), jittered with rnd (a
// value in [0,1)).
func (b Backoff) Delay(n int, rnd float64) time.Duration {
	b = b.withDefaults()
	d := float64(b.Initial)
	for i := 1; i < n && d < float64(b.Max); i++ {
		d *= b.Multiplier
	}
	if d > float64(b.Max) {
		d = float64(b.Max)
	}
	d *= 1 - b.Jitter/2 + b.Jitter*rnd
	return time.Duration(d)
}

func jitter() float64 { return rand.Float64() }
