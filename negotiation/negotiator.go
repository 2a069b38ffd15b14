package negotiation

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dialtone-dev/dialtone/internal/mailbox"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Negotiator runs perfect negotiation, trickle ICE and ICE restarts for one
// PeerConnection. Create it with New; all its methods are safe for
// concurrent use.
type Negotiator struct {
	pc       *webrtc.PeerConnection
	cfg      Config
	log      *slog.Logger
	inbox    *mailbox.Mailbox[func()] // posting never blocks: pion callbacks never wait on the negotiator
	quit     chan struct{}
	loopDone chan struct{}
	done     chan struct{}

	closeOnce sync.Once
	doneOnce  sync.Once
	errMu     sync.Mutex
	err       error

	count counters

	// exchanges counts the offer/answer exchanges the actor has begun
	// applying (see beginExchange). pion's negotiationneeded handler reads
	// it, so that the actor can tell an event pion fired before an
	// exchange from one it fired after.
	exchanges atomic.Uint64

	// Owned by the actor goroutine (run) only.
	pendingOffer    *webrtc.SessionDescription // polite: sent but not applied
	pendingRestart  bool                       // pendingOffer is an ICE restart offer
	wantNegotiation bool                       // negotiation needed while busy
	wantRestart     bool                       // ICE restart needed while busy
	remoteUfrag     string                     // ufrag of the applied remote description
	remoteParsed    *sdp.SessionDescription    // the applied remote description, parsed
	pastUfrags      map[string]struct{}        // ufrags of earlier remote descriptions
	ignoredUfrags   map[string]struct{}        // ufrags of ignored remote offers
	queue           []queuedCandidate          // remote candidates waiting for a description
	iceState        webrtc.ICEConnectionState
	graceTimer      *time.Timer
	graceSeq        uint64
	holding         bool                      // candidates of a far-side ICE restart are held (restart_hold.go)
	held            []webrtc.ICECandidateInit // the held candidates, in arrival order
	holdTimer       *time.Timer               // ends the hold
	holdPoll        *time.Timer               // next look for the far side's checks
	holdSeq         uint64
	failedRestarts  int
	midSeq          int
	gaveUp          bool
	// setup is our DTLS role as SDP writes it ("active": client,
	// "passive": server), fixed by the first offer/answer exchange; "" until
	// then. See keepSetup.
	setup string
}

// New attaches a Negotiator to pc. It takes over pc's OnNegotiationNeeded,
// OnICECandidate, OnICEConnectionStateChange and OnSignalingStateChange
// handlers; the owner keeps OnConnectionStateChange, OnTrack and
// OnDataChannel. Create the Negotiator before adding tracks or data
// channels, or call Negotiate afterwards. Close the Negotiator before
// closing pc.
func New(pc *webrtc.PeerConnection, cfg Config) (*Negotiator, error) {
	if pc == nil {
		return nil, ErrNilPeerConnection
	}
	if cfg.Send == nil {
		return nil, ErrNoSend
	}
	cfg = cfg.withDefaults()
	n := &Negotiator{
		pc:            pc,
		cfg:           cfg,
		log:           cfg.Logger.With("polite", cfg.Polite),
		inbox:         mailbox.New[func()](),
		quit:          make(chan struct{}),
		loopDone:      make(chan struct{}),
		done:          make(chan struct{}),
		pastUfrags:    map[string]struct{}{},
		ignoredUfrags: map[string]struct{}{},
		iceState:      pc.ICEConnectionState(),
	}
	// pion calls these from its own goroutines; they only post events.
	pc.OnNegotiationNeeded(n.postNegotiationNeeded)
	pc.OnICECandidate(func(c *webrtc.ICECandidate) { n.post(func() { n.onLocalCandidate(c) }) })
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) { n.post(func() { n.onICEState(s) }) })
	pc.OnSignalingStateChange(func(s webrtc.SignalingState) {
		n.post(func() { n.log.Debug("signaling state", "state", s) })
	})
	go n.run()
	if len(pc.GetTransceivers()) > 0 && pc.CurrentLocalDescription() == nil {
		// pion may have fired negotiationneeded before we were listening.
		n.postNegotiationNeeded()
	}
	return n, nil
}

// HandleSignal applies one Signal from the far side. It waits until the
// negotiator has processed it (or ctx ends; the signal is then still
// processed later) and returns what went wrong with it: ErrEmptySignal,
// ErrInvalidDescription, ErrUnexpectedAnswer, ErrInvalidCandidate,
// ErrUnknownMLine or a wrapped pion error. A bad signal leaves the
// negotiator usable. A colliding offer that the impolite side ignores, and a
// candidate that has to wait for its description, are not errors.
//
// HandleSignal must not be called from inside Config.Send of the far
// side's negotiator synchronously (two negotiators would wait on each
// other): deliver signals asynchronously, as a network would.
func (n *Negotiator) HandleSignal(ctx context.Context, s Signal) error {
	if (s.Description == nil) == (s.Candidate == nil) {
		return ErrEmptySignal
	}
	reply := make(chan error, 1)
	if !n.post(func() { reply <- n.handleSignal(s) }) {
		return ErrClosed
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-n.loopDone:
		return ErrClosed
	}
}

// RestartICE asks for an ICE restart (new ufrag and password) and the
// renegotiation that carries it. It does not block. If a negotiation is in
// progress the restart follows it.
func (n *Negotiator) RestartICE() {
	n.post(func() { n.restartICE("requested") })
}

// Negotiate asks for an offer now, as if the PeerConnection had fired
// negotiationneeded (for example after a Send failure, or for tracks added
// before New). It does not block.
func (n *Negotiator) Negotiate() {
	n.post(func() { n.negotiate(false) })
}

// Counters returns a snapshot of the negotiator's counters.
func (n *Negotiator) Counters() Counters { return n.count.snapshot() }

// Done is closed when the negotiator gives up (ICE failed after the allowed
// restarts) or is closed. Err tells which.
func (n *Negotiator) Done() <-chan struct{} { return n.done }

// Err returns nil while the negotiator works, an error wrapping ErrICEFailed
// after it gave up, or ErrClosed after Close.
func (n *Negotiator) Err() error {
	n.errMu.Lock()
	defer n.errMu.Unlock()
	return n.err
}

// Close stops the negotiator's goroutine and timers and detaches it from the
// PeerConnection. It does not close the PeerConnection. It is idempotent.
func (n *Negotiator) Close() error {
	n.closeOnce.Do(func() {
		n.pc.OnNegotiationNeeded(func() {})
		n.pc.OnICECandidate(func(*webrtc.ICECandidate) {})
		n.pc.OnICEConnectionStateChange(func(webrtc.ICEConnectionState) {})
		n.pc.OnSignalingStateChange(func(webrtc.SignalingState) {})
		close(n.quit)
		n.inbox.Abandon()
		<-n.loopDone
		if n.graceTimer != nil {
			n.graceTimer.Stop()
		}
		if n.holdTimer != nil {
			n.holdTimer.Stop()
		}
		if n.holdPoll != nil {
			n.holdPoll.Stop()
		}
		n.finish(ErrClosed)
	})
	return nil
}

func (n *Negotiator) finish(err error) {
	n.doneOnce.Do(func() {
		n.errMu.Lock()
		n.err = err
		n.errMu.Unlock()
		close(n.done)
	})
}

func (n *Negotiator) post(f func()) bool { return n.inbox.Put(f) }

// run is the actor. It returns once the inbox's Out is closed (after Close
// abandons it), so the inbox's goroutine has ended when loopDone closes.
func (n *Negotiator) run() {
	defer close(n.loopDone)
	for f := range n.inbox.Out() {
		select {
		case <-n.quit:
			continue // closing: drop what is left
		default:
		}
		f()
	}
}

// busy reports whether an offer/answer exchange is in progress.
func (n *Negotiator) busy() bool {
	return n.pendingOffer != nil || n.pc.SignalingState() != webrtc.SignalingStateStable
}

// negotiationNeeded is pion's negotiationneeded event, stamped when pion
// fired it.
type negotiationNeeded struct {
	exchanges uint64 // exchanges begun (see beginExchange)
	stable    bool   // pion's signaling state was stable
}

// postNegotiationNeeded posts a negotiationneeded event, stamped with what
// onNegotiationNeeded needs to tell whether it is stale. It runs on pion's
// goroutine.
func (n *Negotiator) postNegotiationNeeded() {
	ev := negotiationNeeded{
		exchanges: n.exchanges.Load(),
		stable:    n.pc.SignalingState() == webrtc.SignalingStateStable,
	}
	n.post(func() { n.onNegotiationNeeded(ev) })
}

// beginExchange is called on the actor just before the first
// SetLocalDescription or SetRemoteDescription of an exchange that is to end
// in stable. An event stamped before this point is superseded once the
// exchange completes (see onNegotiationNeeded). An exchange that fails may
// never return pion to stable: the returned undo then keeps the events of
// before it valid.
func (n *Negotiator) beginExchange() (undo func()) {
	n.exchanges.Add(1)
	return func() { n.exchanges.Add(^uint64(0)) }
}

// onNegotiationNeeded handles pion's negotiationneeded. pion checks
// whether negotiation is needed on its own goroutine, in stable, then sets
// its negotiation-needed flag and fires; whenever an exchange returns it to
// stable it clears the flag and checks again, firing anew if negotiation is
// still needed. So an event whose check may predate an exchange is left to
// the re-check at the end of that exchange: acting on it would send a spare
// offer (for example for our new track, checked just before a remote offer
// arrived that our answer then put the track in). Such an event is one
// that:
//   - pion fired once an exchange was under way (no longer stable), its
//     check having been made before the exchange began;
//   - was fired before an exchange that the actor has begun since;
//   - arrives while an exchange is in progress (our offer is out, or pion
//     is not in stable).
func (n *Negotiator) onNegotiationNeeded(ev negotiationNeeded) {
	if !ev.stable || ev.exchanges < n.exchanges.Load() {
		n.log.Debug("negotiationneeded from before an exchange: left to pion's re-check")
		return
	}
	if n.cfg.WaitForOffer && n.pc.CurrentRemoteDescription() == nil {
		// The far side makes the first offer; our tracks join its m-lines
		// in our answer (pion's re-check after it fires again for anything
		// left over).
		n.log.Debug("negotiationneeded before the first remote offer: waiting for it")
		return
	}
	if n.busy() {
		n.log.Debug("negotiationneeded while busy: left to pion's re-check")
		return
	}
	n.negotiate(false)
}

// negotiate creates and sends an offer. The impolite side applies it at
// once; the polite side keeps it unapplied until the answer arrives, so that
// it can still drop it (our rollback, see the package documentation).
func (n *Negotiator) negotiate(restart bool) {
	if n.pc.ConnectionState() == webrtc.PeerConnectionStateClosed {
		return
	}
	if n.busy() {
		n.wantNegotiation = true
		n.wantRestart = n.wantRestart || restart
		return
	}
	if restart && n.pc.CurrentRemoteDescription() == nil {
		restart = false // nothing to restart yet; the first offer has fresh credentials
	}
	n.wantNegotiation = false
	n.wantRestart = false
	if n.cfg.Polite {
		n.assignPoliteMids()
	}
	offer, err := n.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: restart})
	if err != nil {
		n.log.Warn("create offer", "err", err)
		return
	}
	if n.cfg.Polite {
		n.pendingOffer = &offer
		n.pendingRestart = restart
	} else if err := n.pc.SetLocalDescription(offer); err != nil {
		n.log.Warn("set local offer", "err", err)
		return
	}
	n.count.offersSent.Add(1)
	if restart {
		n.count.restarts.Add(1)
	}
	n.log.Debug("sending offer", "restart", restart)
	if err := n.cfg.Send(Signal{Description: &offer}); err != nil {
		n.log.Warn("send offer", "err", err)
		if n.cfg.Polite {
			// Nothing applied yet: forget the offer so the next
			// Negotiate can try again.
			n.pendingOffer = nil
			n.wantNegotiation = true
			n.wantRestart = n.wantRestart || restart
		}
	}
}

// assignPoliteMids gives new transceivers mids of the polite side's own
// namespace ("p1", "p2", ...) before CreateOffer would number them. pion
// cannot take back a mid that CreateOffer assigned, and matches a remote
// m-line to a local transceiver by mid regardless of its kind; with numeric
// mids a dropped (rolled back) polite offer could leave, say, a video
// transceiver holding mid "1" while the impolite side's colliding offer uses
// "1" for audio. Non-numeric mids never collide with the numbers pion (or a
// browser) picks on the other side, so the remote m-lines get transceivers of
// their own and ours are offered again afterwards.
func (n *Negotiator) assignPoliteMids() {
	used := map[string]bool{}
	trs := n.pc.GetTransceivers()
	for _, tr := range trs {
		used[tr.Mid()] = true
	}
	for _, tr := range trs {
		if tr.Mid() != "" {
			continue
		}
		for {
			n.midSeq++
			mid := "p" + strconv.Itoa(n.midSeq)
			if used[mid] {
				continue
			}
			if err := tr.SetMid(mid); err != nil {
				n.log.Debug("assign mid", "err", err) // pion assigned one meanwhile
			}
			break
		}
	}
}

// afterStable starts whatever waited for the exchange to finish.
func (n *Negotiator) afterStable() {
	if n.busy() {
		return
	}
	switch {
	case n.wantRestart:
		n.negotiate(true)
	case n.wantNegotiation:
		n.negotiate(false)
	}
}

func (n *Negotiator) restartICE(reason string) {
	if n.pc.CurrentRemoteDescription() == nil {
		n.log.Debug("ICE restart skipped: not negotiated yet", "reason", reason)
		return
	}
	n.log.Debug("ICE restart", "reason", reason)
	n.negotiate(true)
}

func (n *Negotiator) handleSignal(s Signal) error {
	if s.Candidate != nil {
		return n.handleCandidate(*s.Candidate)
	}
	return n.handleDescription(*s.Description)
}

func (n *Negotiator) handleDescription(desc webrtc.SessionDescription) error {
	parsed, err := desc.Unmarshal()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidDescription, err)
	}
	ufrag := descriptionUfrag(parsed)
	if ufrag == "" {
		return fmt.Errorf("%w: no ice-ufrag", ErrInvalidDescription)
	}
	switch desc.Type {
	case webrtc.SDPTypeOffer:
		return n.handleOffer(desc, parsed, ufrag)
	case webrtc.SDPTypeAnswer:
		return n.handleAnswer(desc, parsed, ufrag)
	default:
		return fmt.Errorf("%w: unsupported type %q", ErrInvalidDescription, desc.Type)
	}
}

func (n *Negotiator) handleOffer(offer webrtc.SessionDescription, parsed *sdp.SessionDescription, ufrag string) error {
	collision := n.busy()
	if collision && !n.cfg.Polite {
		n.count.ignoredOffers.Add(1)
		if ufrag != n.remoteUfrag {
			// Its candidates belong to a generation that never starts.
			n.ignoredUfrags[ufrag] = struct{}{}
		}
		n.log.Debug("ignoring colliding offer")
		return nil
	}
	if collision {
		if n.pendingOffer == nil {
			// Our offer is applied (only after a failed answer); pion
			// cannot roll it back.
			return fmt.Errorf("negotiation: offer in signaling state %s", n.pc.SignalingState())
		}
		n.log.Debug("rolling back unapplied local offer")
		n.count.rollbacks.Add(1)
		n.pendingOffer = nil
		// No wantNegotiation: pion re-checks negotiation-needed when it
		// returns to stable after our answer and fires again only if
		// something of ours is still unnegotiated.
		if n.pendingRestart {
			n.wantRestart = true
		}
	}
	// A far-side ICE restart: its candidates may have to wait until its
	// checks reach us (restart_hold.go), those in the offer too.
	hold := n.remoteUfrag != "" && ufrag != n.remoteUfrag && n.holdsRemoteRestart(parsed)
	var inOffer []webrtc.ICECandidateInit
	if hold {
		var err error
		if offer.SDP, inOffer, err = takeCandidates(parsed, offer.SDP, ufrag); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidDescription, err)
		}
	}
	undo := n.beginExchange()
	if err := n.pc.SetRemoteDescription(offer); err != nil {
		undo()
		return fmt.Errorf("negotiation: set remote offer: %w", err)
	}
	n.count.offersReceived.Add(1)
	n.remoteParsed = parsed
	if n.setRemoteUfrag(ufrag) {
		// The remote side restarted ICE; pion restarted ours with it.
		n.wantRestart = false
		n.stopGrace()
		if hold {
			n.startHold()
		}
	}
	for _, c := range inOffer {
		if err := n.addCandidate(c); err != nil {
			n.log.Warn("candidate of the offer", "err", err)
		}
	}
	n.flushCandidates()
	answer, err := n.pc.CreateAnswer(nil)
	if err != nil {
		undo()
		return fmt.Errorf("negotiation: create answer: %w", err)
	}
	if err := n.pc.SetLocalDescription(answer); err != nil {
		undo()
		return fmt.Errorf("negotiation: set local answer: %w", err)
	}
	if n.setup == "" {
		n.setup = setupOf(answer.SDP)
	} else {
		// pion refuses a local answer other than the one it made, so the
		// correction goes to the far side only.
		answer.SDP = keepSetup(answer.SDP, n.setup)
	}
	n.count.answersSent.Add(1)
	if err := n.cfg.Send(Signal{Description: &answer}); err != nil {
		n.log.Warn("send answer", "err", err)
	}
	n.afterStable()
	return nil
}

func (n *Negotiator) handleAnswer(answer webrtc.SessionDescription, parsed *sdp.SessionDescription, ufrag string) error {
	var undo func()
	if n.cfg.Polite && n.pendingOffer != nil {
		offerParsed, err := n.pendingOffer.Unmarshal()
		if err != nil {
			return fmt.Errorf("negotiation: own offer: %w", err)
		}
		if len(offerParsed.MediaDescriptions) != len(parsed.MediaDescriptions) {
			return fmt.Errorf("%w: answer has %d m-lines, offer %d", ErrInvalidDescription,
				len(parsed.MediaDescriptions), len(offerParsed.MediaDescriptions))
		}
		offer := *n.pendingOffer
		n.pendingOffer = nil
		undo = n.beginExchange()
		if err := n.pc.SetLocalDescription(offer); err != nil {
			undo()
			n.wantNegotiation = true
			n.afterStable()
			return fmt.Errorf("negotiation: set deferred local offer: %w", err)
		}
	} else if n.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
		return fmt.Errorf("%w (signaling state %s)", ErrUnexpectedAnswer, n.pc.SignalingState())
	} else {
		undo = n.beginExchange()
	}
	if err := n.pc.SetRemoteDescription(answer); err != nil {
		undo()
		return fmt.Errorf("negotiation: set remote answer: %w", err)
	}
	n.count.answersReceived.Add(1)
	if n.setup == "" {
		// The answerer took the role its answer names; ours is the other.
		switch setupOf(answer.SDP) {
		case "active":
			n.setup = "passive"
		case "passive":
			n.setup = "active"
		}
	}
	n.remoteParsed = parsed
	n.setRemoteUfrag(ufrag)
	n.flushCandidates()
	n.afterStable()
	return nil
}

// setRemoteUfrag records the ufrag of a newly applied remote description and
// reports whether it changed (an ICE restart by the far side).
func (n *Negotiator) setRemoteUfrag(ufrag string) bool {
	delete(n.ignoredUfrags, ufrag)
	if ufrag == n.remoteUfrag {
		return false
	}
	old := n.remoteUfrag
	n.remoteUfrag = ufrag
	if old == "" {
		return false
	}
	n.pastUfrags[old] = struct{}{}
	n.dropHeld()
	return true
}

func (n *Negotiator) handleCandidate(c webrtc.ICECandidateInit) error {
	ufrag, skip, err := parseCandidate(c)
	if err != nil {
		return err
	}
	if skip {
		return nil
	}
	if _, ok := n.ignoredUfrags[ufrag]; ok {
		n.count.candidatesDropped.Add(1)
		return nil
	}
	if _, ok := n.pastUfrags[ufrag]; ok && ufrag != n.remoteUfrag {
		n.count.candidatesDropped.Add(1)
		return nil
	}
	if n.remoteParsed == nil || (ufrag != "" && ufrag != n.remoteUfrag) {
		n.count.candidatesQueued.Add(1)
		if len(n.queue) >= maxQueuedCandidates {
			n.queue = n.queue[1:]
			n.count.candidatesDropped.Add(1)
		}
		n.queue = append(n.queue, queuedCandidate{init: c, ufrag: ufrag})
		return nil
	}
	return n.addCandidate(c)
}

func (n *Negotiator) addCandidate(c webrtc.ICECandidateInit) error {
	if err := checkMLine(c, n.remoteParsed); err != nil {
		n.count.candidatesDropped.Add(1)
		return err
	}
	if n.holding {
		n.hold(c)
		return nil
	}
	if err := n.pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("negotiation: add candidate: %w", err)
	}
	n.count.candidatesApplied.Add(1)
	return nil
}

// flushCandidates applies, in arrival order, the queued candidates of the
// remote description just set, drops those of dead generations and keeps
// those of generations still to come.
func (n *Negotiator) flushCandidates() {
	if n.remoteParsed == nil || len(n.queue) == 0 {
		return
	}
	keep := n.queue[:0]
	for _, q := range n.queue {
		_, ignored := n.ignoredUfrags[q.ufrag]
		_, past := n.pastUfrags[q.ufrag]
		switch {
		case q.ufrag == "" || q.ufrag == n.remoteUfrag:
			if err := n.addCandidate(q.init); err != nil {
				n.log.Warn("queued candidate", "err", err)
			}
		case ignored || past:
			n.count.candidatesDropped.Add(1)
		default:
			keep = append(keep, q)
		}
	}
	clear(n.queue[len(keep):])
	n.queue = keep
}

func (n *Negotiator) onLocalCandidate(c *webrtc.ICECandidate) {
	if c == nil {
		return
	}
	init := localCandidateInit(c)
	n.count.candidatesSent.Add(1)
	if err := n.cfg.Send(Signal{Candidate: &init}); err != nil {
		n.log.Warn("send candidate", "err", err)
	}
}

func (n *Negotiator) onICEState(s webrtc.ICEConnectionState) {
	n.iceState = s
	n.log.Debug("ICE state", "state", s)
	if n.cfg.OnICEConnectionStateChange != nil {
		n.cfg.OnICEConnectionStateChange(s)
	}
	switch s {
	case webrtc.ICEConnectionStateDisconnected:
		if n.cfg.DisconnectedGrace > 0 && n.graceTimer == nil {
			n.graceSeq++
			seq := n.graceSeq
			n.graceTimer = time.AfterFunc(n.cfg.DisconnectedGrace, func() {
				n.post(func() { n.onGrace(seq) })
			})
		}
	case webrtc.ICEConnectionStateConnected, webrtc.ICEConnectionStateCompleted:
		n.stopGrace()
		n.failedRestarts = 0
		if n.holding && n.connectedNow() {
			// The far side's checks reached us: it has our answer.
			n.log.Debug("remote ICE restart: connected, candidates released")
			n.releaseHeld()
		}
	case webrtc.ICEConnectionStateFailed:
		n.stopGrace()
		if n.gaveUp {
			return
		}
		if n.failedRestarts < n.cfg.MaxFailedRestarts {
			n.failedRestarts++
			n.restartICE("failed")
			return
		}
		n.gaveUp = true
		err := fmt.Errorf("%w after %d restart(s)", ErrICEFailed, n.failedRestarts)
		n.log.Warn("giving up", "err", err)
		n.finish(err)
		if n.cfg.OnFailed != nil {
			n.cfg.OnFailed(err)
		}
	default:
	}
}

func (n *Negotiator) stopGrace() {
	if n.graceTimer != nil {
		n.graceTimer.Stop()
		n.graceTimer = nil
	}
	n.graceSeq++
}

func (n *Negotiator) onGrace(seq uint64) {
	if seq != n.graceSeq {
		return
	}
	n.graceTimer = nil
	if n.iceState == webrtc.ICEConnectionStateDisconnected && !n.gaveUp {
		n.restartICE("disconnected")
	}
}

// setupOf returns the first a=setup value of an SDP ("" if none).
func setupOf(sdpText string) string {
	for line := range strings.Lines(sdpText) {
		if v, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "a=setup:"); ok {
			return v
		}
	}
	return ""
}

// keepSetup rewrites every a=setup of our answer to the DTLS role we have
// held since the first exchange. pion answers a re-offer from its
// configuration (active, the client, unless the offer names a role), not
// from the DTLS association it has: when we made the first offer and the
// far side answered active, we are the DTLS server, and a later offer from
// the far side (browsers re-offer actpass) got an answer saying active,
// which Chrome refuses ("Failed to set SSL role for the transport"). pion
// sets up DTLS once, from the first exchange, and never reads the role of
// a later answer, so correcting what the far side is told is enough (pion
// refuses a local answer it did not make: its own copy keeps its text).
func keepSetup(sdpText, setup string) string {
	var b strings.Builder
	b.Grow(len(sdpText))
	for line := range strings.Lines(sdpText) {
		body := strings.TrimRight(line, "\r\n")
		if v, ok := strings.CutPrefix(body, "a=setup:"); ok && v != setup {
			b.WriteString("a=setup:" + setup + line[len(body):])
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}
