// Package negotiation runs the offer/answer life of one
// *webrtc.PeerConnection: perfect negotiation with a polite and an impolite
// side, trickle ICE with buffering per ICE generation, and ICE restarts when
// the connection degrades. It knows nothing about calls, users or sockets: it
// talks to the far side through Config.Send and HandleSignal, whose payload
// (Signal) is exactly the `data` of a `signal` wire message.
//
// # Perfect negotiation
//
// Both sides create offers whenever the PeerConnection fires
// negotiationneeded (a track or data channel added, mid-call too), or when
// ICE is restarted. When two offers cross ("glare"), the W3C pattern
// decides: the impolite side ignores the colliding remote offer (counted in
// Counters.IgnoredOffers) and keeps waiting for its answer; the polite side
// rolls back its own offer (Counters.Rollbacks), answers the remote one, and
// offers again afterwards if anything of its own is still unnegotiated. The
// polite side must be exactly one of the two (Config.Polite).
//
// # How rollback works on pion
//
// pion/webrtc v4.2.20 has no rollback: SetLocalDescription(rollback) from
// have-local-offer is rejected, and so is SetRemoteDescription(offer) in
// have-local-offer. This package therefore never lets the polite side enter
// have-local-offer while an offer can still collide:
//
//   - The polite side creates its offer (CreateOffer) and sends it, but does
//     not apply it. The PeerConnection stays in "stable"; the negotiator
//     remembers the unapplied offer.
//   - When the answer arrives, the polite side applies its stored offer
//     (SetLocalDescription) and then the answer (SetRemoteDescription), back
//     to back on the negotiator's goroutine, so nothing can come in between.
//     Before that it checks the answer parses and has as many m-lines as the
//     offer, so a bad answer is rejected while rollback is still possible.
//   - When a remote offer arrives instead, the collision is resolved by
//     simply forgetting the unapplied offer — that is the rollback — and
//     answering the remote offer as usual.
//
// The impolite side never needs rollback and applies its offers at once
// (ordinary trickle: it gathers while the offer travels).
//
// Consequences, checked by experiment and by the glare tests:
//
//   - The polite side gathers ICE candidates only once its offer is applied,
//     i.e. after the answer arrives (pion gathers on SetLocalDescription). On
//     loopback this costs nothing measurable (see BenchmarkSetup).
//   - CreateOffer assigns mids to new transceivers and pion can neither take
//     a mid back nor refuse to match a remote m-line to a transceiver of
//     another kind that happens to hold the same mid. Had the dropped offer
//     numbered a new video transceiver "1" while the colliding remote offer
//     used "1" for audio, the answer would put video in an audio m-line. So
//     before each offer the polite side names its new transceivers itself,
//     "p1", "p2", … (a namespace that pion's and browsers' numeric mids never
//     use). After a rollback the remote m-lines get transceivers of their
//     own, and pion's negotiation-needed check (rerun when the answer
//     returns the connection to stable) makes the polite side offer its own
//     tracks again: a glare can cost the polite side one extra offer
//     (a browser, whose rollback clears such a mid, would instead merge two
//     same-kind tracks into one m-line). The glare tests mix audio and video
//     to prove the m-lines never get mixed up.
//   - CreateOffer(ICERestart) restarts pion's ICE agent immediately (new
//     ufrag/pwd, remote credentials and candidates cleared, gathering
//     restarted) even though the offer is not applied. If that restart
//     offer is rolled back, the answer the polite side then creates carries
//     the agent's current credentials: SetRemoteDescription(offer) sees the
//     remote credentials "changed" (they were cleared) and restarts the agent
//     once more, so the answer has fresh credentials and the far side
//     adopts them. Candidates the polite side trickled for the dropped offer
//     carry its ufrag, which the impolite side records when it ignores the
//     offer, and drops quietly. If the remote offer was not itself an ICE
//     restart, the polite side restarts again after the exchange so that both
//     sides have new credentials.
//
// # Trickle ICE
//
// Local candidates are sent as they are gathered, each with its
// usernameFragment (pion's ToJSON omits it; the negotiator fills it in).
// Remote candidates are handled in order:
//
//   - before any remote description they are queued, in arrival order, and
//     applied right after the description is set;
//   - a candidate whose ufrag belongs to a newer ICE generation (it overtook
//     the restart offer or answer that carries that ufrag) waits for that
//     description instead of being dropped, as pion would;
//   - candidates of an ignored offer or of an earlier generation are dropped
//     quietly (Counters.CandidatesDropped); duplicates are harmless;
//   - candidates of a far-side ICE restart may be held a moment (see ICE
//     restart);
//   - a candidate that does not parse (ErrInvalidCandidate) or names an
//     m-line the remote description lacks (ErrUnknownMLine) is an error.
//
// # ICE restart
//
// When ICE reports "disconnected" and stays so for Config.DisconnectedGrace,
// the negotiator restarts ICE (new ufrag/pwd) and renegotiates; if both
// sides do so at once, perfect negotiation resolves the collision and one
// restart serves both. When ICE reports "failed", it restarts up to
// Config.MaxFailedRestarts more times; after that it gives up: Config.OnFailed
// is called with an error wrapping ErrICEFailed, Done is closed and Err
// returns the error. RestartICE restarts on request.
//
// When the far side restarts ICE with an offer and this side is the
// controlling ICE agent (it made the first offer; the roles hold across
// restarts), the far side's new candidates, trickled or in the offer, are
// held back from pion until the far side's own checks have reached us,
// which proves it has applied our answer, or for Config.RemoteRestartHold
// at most (Counters.CandidatesHeld). pion nominates a pair once and never
// repeats it; a check, and above all that nomination, reaching a browser
// before our answer can be lost there: Firefox then never moves its media
// to the restarted connection, and nothing it sends reaches us again.
// Held candidates cost the restart about one poll of pion's candidates
// (20 ms) once the far side's first check arrives.
//
// # Concurrency
//
// One goroutine owns all negotiation state. pion callbacks and API calls
// only post events to its unbounded inbox and never call pion synchronously
// from inside a pion callback. Config callbacks are called from that
// goroutine. Close stops the goroutine and the timers.
//
// # Known limits
//
//   - pion's negotiation-needed check is not atomic with
//     SetRemoteDescription (it reads the signaling state, then the
//     transceivers, while SetRemoteDescription changes the state first and
//     adds transceivers after). So pion can, rarely, fire negotiationneeded
//     for a transceiver the answer being made is about to cover. The result
//     is one spare, harmless offer (seen once in a few thousand glare rounds
//     under load).
//   - pion makes that check on a goroutine of its own, and the event it
//     fires can be a check made before an exchange that has since covered
//     what it found missing (a track added just before the remote offer
//     arrived, answered into that offer's m-line). Events fired before the
//     negotiator began applying the exchange, or while it was under way, are
//     left to pion's re-check at its end; one whose check ran before the
//     exchange but which pion fired only after it looks like a fresh one, and
//     pion fires no other while its flag stays set, so it is acted on: one
//     spare offer after the answer (no glare), seen about once in a thousand
//     call set-ups with WaitForOffer under -race on a loaded machine.
//   - If Config.Send fails for an impolite offer, the offer stays applied and
//     unanswered until the far side offers or the owner closes; a failed
//     polite offer is forgotten and Negotiate retries it.
//   - An answer that parses and matches the offer's m-lines but that pion
//     still rejects leaves that side in have-local-offer (pion cannot roll
//     back an applied offer); a later valid answer still completes it. No
//     timer bounds an unanswered offer: the owner's connect timeout does.
//   - There is no end-of-candidates signal: pion does not need one, so none
//     is sent, and a received one is accepted and ignored.
package negotiation
