package negotiation

import (
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// When the far side restarts ICE by offering and we are the controlling ICE
// agent (we made the first offer; RFC 8445 §6.1.1 keeps the roles across
// restarts), pion starts checking the far side's new candidates as soon as
// our answer is made, and nominates the first pair that answers, once: it
// never repeats USE-CANDIDATE. Those checks can reach the far side before
// it has applied our answer. Firefox answers such early checks but keeps
// only the first request from each address until the answer is applied
// (nICEr's pre-answer queue) and drops the rest, the nominating one
// included: its new ICE generation then never completes, it keeps sending
// on the old one, which our restarted agent has closed, and its audio and
// data stop reaching us for good while ours still reaches it. (libwebrtc's
// controlling side puts USE-CANDIDATE on every check, so it recovers.)
//
// So the negotiator holds back the far side's candidates of such a restart
// until the far side's own checks have reached us: those can only come
// once it has our answer. pion learns the far side's address from the
// first of them (a peer-reflexive remote candidate; the restart cleared
// all others, so any remote candidate pion has is one); the negotiator
// looks for one every holdPollInterval and then hands the held candidates
// to pion, which replaces the peer-reflexive candidate with the signaled
// one of the same address, checks and nominates at once. (Left alone,
// pion would nominate the peer-reflexive pair only after its acceptance
// wait, 1 s by default.) ICE connecting ends the hold too. If the far
// side's checks cannot reach us on their own (a NAT on our side that opens
// only to our own checks), the candidates are handed over after
// Config.RemoteRestartHold anyway.

// holdPollInterval is how often a hold looks whether the far side's checks
// have reached pion.
const holdPollInterval = 20 * time.Millisecond

// holdsRemoteRestart reports whether the candidates of a far-side ICE
// restart offered in d are to be held: holding is on, we are the
// controlling agent, and the far side is a full agent (an ICE-lite one
// never checks, so holding would only wait out the hold).
func (n *Negotiator) holdsRemoteRestart(d *sdp.SessionDescription) bool {
	if n.cfg.RemoteRestartHold < 0 {
		return false
	}
	if _, lite := d.Attribute(sdp.AttrKeyICELite); lite {
		return false
	}
	return n.pc.SCTP().Transport().ICETransport().Role() == webrtc.ICERoleControlling
}

// startHold starts holding the candidates of the remote description just
// applied (a far-side ICE restart), until ICE connects or the hold ends.
func (n *Negotiator) startHold() {
	n.holding = true
	n.holdSeq++
	seq := n.holdSeq
	n.holdTimer = time.AfterFunc(n.cfg.RemoteRestartHold, func() {
		n.post(func() {
			if seq == n.holdSeq && n.holding {
				n.log.Debug("remote ICE restart: candidates released after the hold")
				n.releaseHeld()
			}
		})
	})
	n.armHoldPoll(seq)
	n.log.Debug("remote ICE restart: holding its candidates until its checks reach us")
}

// armHoldPoll schedules the next look at pion's remote candidates.
func (n *Negotiator) armHoldPoll(seq uint64) {
	n.holdPoll = time.AfterFunc(holdPollInterval, func() {
		n.post(func() { n.pollHold(seq) })
	})
}

// pollHold releases the held candidates once pion has a remote candidate:
// the far side's checks of the new generation have reached us.
func (n *Negotiator) pollHold(seq uint64) {
	if seq != n.holdSeq || !n.holding {
		return
	}
	for _, s := range n.pc.GetStats() {
		if c, ok := s.(webrtc.ICECandidateStats); ok && c.Type == webrtc.StatsTypeRemoteCandidate {
			n.log.Debug("remote ICE restart: its checks reached us, candidates released")
			n.releaseHeld()
			return
		}
	}
	n.armHoldPoll(seq)
}

// hold keeps a remote candidate of the held generation.
func (n *Negotiator) hold(c webrtc.ICECandidateInit) {
	n.count.candidatesHeld.Add(1)
	n.held = append(n.held, c)
}

// releaseHeld ends the hold and hands the held candidates to pion, in
// arrival order.
func (n *Negotiator) releaseHeld() {
	held := n.held
	n.stopHold()
	for _, c := range held {
		if err := n.addCandidate(c); err != nil {
			n.log.Warn("held candidate", "err", err)
		}
	}
}

// dropHeld ends the hold and forgets its candidates: their generation is
// over.
func (n *Negotiator) dropHeld() {
	n.count.candidatesDropped.Add(uint64(len(n.held)))
	n.stopHold()
}

func (n *Negotiator) stopHold() {
	if n.holdTimer != nil {
		n.holdTimer.Stop()
		n.holdTimer = nil
	}
	if n.holdPoll != nil {
		n.holdPoll.Stop()
		n.holdPoll = nil
	}
	n.holdSeq++
	n.holding = false
	n.held = nil
}

// takeCandidates removes the candidates from a parsed remote description
// (so that pion does not start checking them when it is applied) and
// returns them as trickled candidates of the generation ufrag, with the
// description's new text. Without candidates the text is left as it was.
func takeCandidates(d *sdp.SessionDescription, text, ufrag string) (string, []webrtc.ICECandidateInit, error) {
	var out []webrtc.ICECandidateInit
	for i, m := range d.MediaDescriptions {
		mid, _ := m.Attribute(sdp.AttrKeyMID)
		kept := m.Attributes[:0]
		for _, a := range m.Attributes {
			switch a.Key {
			case sdp.AttrKeyCandidate:
				index := uint16(min(i, 1<<16-1))
				c := webrtc.ICECandidateInit{Candidate: "candidate:" + a.Value, SDPMLineIndex: &index, UsernameFragment: &ufrag}
				if mid != "" {
					c.SDPMid = &mid
				}
				out = append(out, c)
			case sdp.AttrKeyEndOfCandidates:
			default:
				kept = append(kept, a)
			}
		}
		m.Attributes = kept
	}
	if len(out) == 0 {
		return text, nil, nil
	}
	b, err := d.Marshal()
	if err != nil {
		return "", nil, err
	}
	return string(b), out, nil
}

// connectedNow reports whether pion's ICE is connected at this moment (a
// state event may be older than a restart applied since).
func (n *Negotiator) connectedNow() bool {
	s := n.pc.ICEConnectionState()
	return s == webrtc.ICEConnectionStateConnected || s == webrtc.ICEConnectionStateCompleted
}
