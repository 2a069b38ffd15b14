package negotiation

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// reorder rewrites the queue of a held link.
func (l *link) reorder(f func([]timedSignal) []timedSignal) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.q = f(l.q)
}

func (l *link) queued() []timedSignal {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]timedSignal(nil), l.q...)
}

// candidatesFirst puts every candidate, shuffled and each sent twice, ahead
// of the descriptions.
func candidatesFirst(r *rand.Rand) func([]timedSignal) []timedSignal {
	return func(q []timedSignal) []timedSignal {
		var cands, descs []timedSignal
		for _, s := range q {
			if s.s.Candidate != nil {
				cands = append(cands, s, s)
			} else {
				descs = append(descs, s)
			}
		}
		r.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
		return append(cands, descs...)
	}
}

// holdUntilGathered waits until p's held link has a description and all of
// p's candidates.
func holdUntilGathered(t *testing.T, p *peer) {
	t.Helper()
	require.Eventually(t, func() bool {
		if p.pc.ICEGatheringState() != webrtc.ICEGatheringStateComplete {
			return false
		}
		var descs, cands int
		for _, s := range p.out.queued() {
			if s.s.Candidate != nil {
				cands++
			} else {
				descs++
			}
		}
		return descs > 0 && uint64(cands) == p.n.Counters().CandidatesSent && cands > 0
	}, 10*time.Second, time.Millisecond)
}

// TestCandidatesBeforeDescription: every candidate reaches the far side
// before the description it belongs to, shuffled and duplicated, in both
// directions; they are queued, applied after the description, and the
// peers connect.
func TestCandidatesBeforeDescription(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	a, b := newPair(t, pairOptions{})
	a.out.hold()
	b.out.hold()
	var aTracks []webrtc.TrackLocal
	require.NoError(t, addTrack(t, &aTracks, "a0")(a))
	holdUntilGathered(t, a)
	a.out.reorder(candidatesFirst(r))
	a.out.release(0)
	// b answers, then gathers.
	holdUntilGathered(t, b)
	b.out.reorder(candidatesFirst(r))
	b.out.release(0)
	converged(t, a, b, aTracks, nil)
	assert.Positive(t, a.n.Counters().CandidatesQueued, "impolite queued")
	assert.Positive(t, b.n.Counters().CandidatesQueued, "polite queued")
	assert.Positive(t, b.n.Counters().CandidatesApplied)
}

// TestCandidatesNewGeneration: after an ICE restart offer, the candidates of
// the new generation (new ufrag) reach the far side before the offer that
// carries the ufrag. They must wait for it rather than be dropped, and the
// restart succeeds.
func TestCandidatesNewGeneration(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for _, name := range []string{"impolite restarts", "polite restarts"} {
		t.Run(name, func(t *testing.T) {
			a, b := newPair(t, pairOptions{})
			var aTracks []webrtc.TrackLocal
			require.NoError(t, addTrack(t, &aTracks, "a0")(a))
			e := newEcho(t, a, b)
			converged(t, a, b, aTracks, nil)
			from, to := a, b
			if name == "polite restarts" {
				from, to = b, a
			}
			oldUfrag := localUfrag(t, from.pc)
			queued := to.n.Counters().CandidatesQueued
			sent := from.n.Counters().CandidatesSent
			from.out.hold()
			from.n.RestartICE()
			require.Eventually(t, func() bool {
				var desc bool
				var cands int
				for _, s := range from.out.queued() {
					desc = desc || s.s.Description != nil
					if s.s.Candidate != nil {
						cands++
					}
				}
				return desc && cands > 0 && uint64(cands) == from.n.Counters().CandidatesSent-sent &&
					from.pc.ICEGatheringState() == webrtc.ICEGatheringStateComplete
			}, 10*time.Second, time.Millisecond)
			from.out.reorder(candidatesFirst(r))
			from.out.release(0)
			converged(t, a, b, aTracks, nil)
			assert.NotEqual(t, oldUfrag, localUfrag(t, from.pc))
			assert.Greater(t, to.n.Counters().CandidatesQueued, queued, "new-generation candidates waited")
			e.ping(t, "after restart", 10*time.Second)
		})
	}
}

// TestCandidatesOfIgnoredOffer: when both sides restart ICE at once, the
// polite side's restart offer is ignored by the impolite side; the
// candidates the polite side gathered for it (its agent restarted in
// CreateOffer) arrive afterwards and are dropped quietly, without errors.
func TestCandidatesOfIgnoredOffer(t *testing.T) {
	a, b := newPair(t, pairOptions{})
	var aTracks []webrtc.TrackLocal
	require.NoError(t, addTrack(t, &aTracks, "a0")(a))
	converged(t, a, b, aTracks, nil)
	dropped := a.n.Counters().CandidatesDropped
	offers := [2]uint64{a.n.Counters().OffersSent, b.n.Counters().OffersSent}
	sent := b.n.Counters().CandidatesSent
	a.out.hold()
	b.out.hold()
	a.n.RestartICE()
	b.n.RestartICE()
	require.Eventually(t, func() bool {
		return a.n.Counters().OffersSent > offers[0] && b.n.Counters().OffersSent > offers[1] &&
			b.n.Counters().CandidatesSent > sent
	}, 10*time.Second, time.Millisecond)
	ignoredGen := b.n.Counters().CandidatesSent - sent
	a.out.release(0)
	b.out.release(time.Millisecond)
	converged(t, a, b, aTracks, nil)
	assert.Equal(t, uint64(1), a.n.Counters().IgnoredOffers)
	assert.GreaterOrEqual(t, a.n.Counters().CandidatesDropped-dropped, ignoredGen, "candidates of the ignored offer dropped")
}
