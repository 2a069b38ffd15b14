package negotiation

import "sync/atomic"

// Counters is a snapshot of what a Negotiator has done so far.
type Counters struct {
	OffersSent        uint64 // offers sent (including ICE restart offers)
	AnswersSent       uint64 // answers sent
	OffersReceived    uint64 // remote offers applied
	AnswersReceived   uint64 // remote answers applied
	Rollbacks         uint64 // polite side: own unapplied offer dropped for a colliding remote offer
	IgnoredOffers     uint64 // impolite side: colliding remote offers ignored
	Restarts          uint64 // ICE restart offers created
	CandidatesSent    uint64 // local candidates sent
	CandidatesApplied uint64 // remote candidates handed to pion
	CandidatesQueued  uint64 // remote candidates that had to wait for a description
	CandidatesHeld    uint64 // remote candidates of a far-side ICE restart held until its checks reached us
	CandidatesDropped uint64 // remote candidates dropped (ignored offer, stale generation, unknown m-line, overflow)
}

type counters struct {
	offersSent, answersSent, offersReceived, answersReceived               atomic.Uint64
	rollbacks, ignoredOffers, restarts                                     atomic.Uint64
	candidatesSent, candidatesApplied, candidatesQueued, candidatesDropped atomic.Uint64
	candidatesHeld                                                         atomic.Uint64
}

func (c *counters) snapshot() Counters {
	return Counters{
		OffersSent:        c.offersSent.Load(),
		AnswersSent:       c.answersSent.Load(),
		OffersReceived:    c.offersReceived.Load(),
		AnswersReceived:   c.answersReceived.Load(),
		Rollbacks:         c.rollbacks.Load(),
		IgnoredOffers:     c.ignoredOffers.Load(),
		Restarts:          c.restarts.Load(),
		CandidatesSent:    c.candidatesSent.Load(),
		CandidatesApplied: c.candidatesApplied.Load(),
		CandidatesQueued:  c.candidatesQueued.Load(),
		CandidatesHeld:    c.candidatesHeld.Load(),
		CandidatesDropped: c.candidatesDropped.Load(),
	}
}
