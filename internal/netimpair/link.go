// Package netimpair relays UDP datagrams between two endpoints on loopback
// through an impaired path: delay, normally distributed jitter, random and
// Gilbert–Elliott burst loss, and reordering, drawn from a seeded random
// source so that a run repeats. It stands in for netem, which this kernel
// lacks, in front of anything that speaks UDP (dialtone's phones, a browser).
package netimpair

import (
	"math/rand/v2"
	"time"
)

// Link shapes one direction of the path. The zero value passes every
// datagram at once.
type Link struct {
	// Delay is the one-way delay added to every datagram.
	Delay time.Duration
	// Jitter is the standard deviation of a normally distributed delay
	// added to Delay per datagram (the sum is floored at zero). Datagrams
	// keep their order, as in a router's queue: one whose draw would have
	// it overtake the datagram before it leaves right after that one.
	Jitter time.Duration
	// Loss is the probability that a datagram is dropped, independently
	// of the others (0–1).
	Loss float64
	// Burst drops datagrams in bursts; its zero value drops none.
	Burst GilbertElliott
	// Reorder is the probability that a datagram skips the delay line and
	// leaves at once, overtaking those still delayed (netem's reorder).
	Reorder float64
}

// GilbertElliott is the two-state Markov model of bursty loss: in the good
// state a datagram is lost with probability GoodLoss, in the bad state with
// BadLoss; after each datagram the state turns bad with probability P (from
// good) or good with probability R (from bad). The mean time in the bad
// state is 1/R datagrams and the long-run share of bad datagrams
// P/(P+R). The zero value never drops.
type GilbertElliott struct {
	P, R              float64
	GoodLoss, BadLoss float64
}

// Bursts returns the Gilbert model (every datagram in the bad state lost,
// none in the good) that loses a share loss (0–1) of datagrams in bursts of
// meanBurst datagrams on average (≥ 1).
func Bursts(loss, meanBurst float64) GilbertElliott {
	if loss <= 0 || meanBurst < 1 {
		return GilbertElliott{}
	}
	loss = min(loss, 0.99)
	r := 1 / meanBurst
	return GilbertElliott{P: loss * r / (1 - loss), R: r, BadLoss: 1}
}

// verdict is what a link does with one datagram.
type verdict struct {
	drop      bool
	at        time.Time // when it leaves, unless dropped
	reordered bool      // it skipped the delay line
}

// link applies a Link to datagrams in arrival order. It is not safe for
// concurrent use.
type link struct {
	cfg  Link
	rng  *rand.Rand
	bad  bool      // Gilbert–Elliott state
	last time.Time // departure of the last datagram in the delay line
}

func newLink(cfg Link, seed, stream uint64) *link {
	return &link{cfg: cfg, rng: rand.New(rand.NewPCG(seed, stream))}
}

// admit decides the fate of a datagram that arrives at now; one that is
// not lossy is delayed but never dropped, and leaves the loss model's
// state as it was. Every draw is made whatever the outcome, so the loss
// pattern does not depend on the delays and a seed gives the same run.
func (l *link) admit(now time.Time, lossy bool) verdict {
	var uLoss, uBurst, uState float64 = 1, 1, 0
	if lossy {
		uLoss, uBurst, uState = l.rng.Float64(), l.rng.Float64(), l.rng.Float64()
	}
	uReorder := l.rng.Float64()
	jitter := l.rng.NormFloat64()
	if !lossy {
		return l.delay(now, uReorder, jitter)
	}

	ge := l.cfg.Burst
	burstLoss := ge.GoodLoss
	if l.bad {
		burstLoss = ge.BadLoss
	}
	drop := uLoss < l.cfg.Loss || uBurst < burstLoss
	if l.bad {
		l.bad = uState >= ge.R
	} else {
		l.bad = uState < ge.P
	}
	if drop {
		return verdict{drop: true}
	}
	return l.delay(now, uReorder, jitter)
}

// delay gives a datagram that is not dropped its departure.
func (l *link) delay(now time.Time, uReorder, jitter float64) verdict {
	if uReorder < l.cfg.Reorder {
		return verdict{at: now, reordered: true}
	}
	d := l.cfg.Delay + time.Duration(jitter*float64(l.cfg.Jitter))
	at := now.Add(max(0, d))
	if at.Before(l.last) {
		at = l.last
	}
	l.last = at
	return verdict{at: at}
}
