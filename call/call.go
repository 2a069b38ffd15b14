package call

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dialtone-dev/dialtone/internal/mailbox"
	"github.com/dialtone-dev/dialtone/media/apm"
	"github.com/dialtone-dev/dialtone/negotiation"
	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/pion/webrtc/v4"
)

// Call is one call, outgoing (from Phone.Dial) or incoming (from
// Phone.Incoming). It is an actor: one goroutine owns its state, and
// signaling messages, network callbacks, timers and the methods below all
// become events on its inbox, handled one at a time in order. Methods are
// safe for concurrent use and never block on the network for long.
type Call struct {
	id       string
	peer     string
	outgoing bool
	display  string
	crossed  atomic.Bool
	phone    *Phone
	cfg      Config
	log      *slog.Logger

	inbox     *mailbox.Mailbox[input]
	events    *mailbox.Mailbox[Event]
	subscribe sync.Once     // Events registers the queue with the phone once
	done      chan struct{} // closed when ended and every resource is released
	stopped   chan struct{} // closed when the actor goroutine has returned

	mu     sync.Mutex // guards the snapshot below, read by State, Reason, Stats
	state  State
	reason Reason
	err    error
	stats  Stats
	muted  bool
	// giveUp stops watching the context given to Dial; called once the
	// call is connected or ended.
	giveUp func() bool

	// Owned by the actor goroutine.
	audio   *callAudio
	media   *session
	relay   relayWait
	timers  map[timerKind]*time.Timer
	early   []negotiation.Signal // signals that arrived before media existed
	closing chan struct{}        // closed when the detached session has been closed
	texts   []cmdText            // SendText calls waiting for the data channel to open
	dtmf    []cmdDTMF            // SendDTMF calls waiting for the call to connect
	rec     *Recording           // the recording, if any (waiting for media or running)
}

func newCall(p *Phone, id, peer string, outgoing bool) *Call {
	c := &Call{
		id:       id,
		peer:     peer,
		outgoing: outgoing,
		phone:    p,
		cfg:      p.cfg,
		log:      p.log.With("call", id, "peer", peer),
		inbox:    mailbox.New[input](),
		events:   mailbox.New[Event](),
		done:     make(chan struct{}),
		stopped:  make(chan struct{}),
		timers:   make(map[timerKind]*time.Timer),
	}
	if outgoing {
		c.state = Idle
	} else {
		c.state = Ringing
	}
	return c
}

// ID is the call's ID, shared by both ends.
func (c *Call) ID() string { return c.id }

// Peer is the other party's user ID.
func (c *Call) Peer() string { return c.peer }

// Outgoing reports whether this phone placed the call.
func (c *Call) Outgoing() bool { return c.outgoing }

// DisplayName is the caller's display name for an incoming call, or the one
// we sent for an outgoing call.
func (c *Call) DisplayName() string { return c.display }

// Crossed reports that this call met a call of ours to the same peer: both
// users dialled each other at once. Both phones keep the call with the
// lower ID and answer it automatically: the caller's own Dial returns it
// when the peer's invite was already ringing here, or else it arrives on
// Incoming already answered while our Dial's call ends `cancelled`.
func (c *Call) Crossed() bool { return c.crossed.Load() }

// State is the call's current state.
func (c *Call) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Reason is why the call ended, or "" while it has not.
func (c *Call) Reason() Reason {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// Err is the error behind an end with ReasonError (or another failure with
// a known cause), else nil.
func (c *Call) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Stats is the latest statistics sample.
func (c *Call) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Muted reports whether the microphone is muted.
func (c *Call) Muted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.muted
}

// Events delivers every event of the call, in order, from its creation on,
// however late the first read or slow the reader: nothing is dropped and
// the call never waits for the reader. The Ended state event is the last
// one; the channel is closed after it, once the call has released its
// resources (Done). Events is meant for one reader.
//
// The events wait in a queue on the Call itself. A program that never
// calls Events (an answering loop that only Accepts and Waits) keeps them
// only as long as it keeps the Call: once the call has ended and the Call
// is unreachable, they go with it. Once Events has been called, read it to
// the Ended event or to its close; a reader that walks away earlier leaves
// the rest queued until Phone.Close, which drops every event not yet read
// (Events called after Close returns a closed channel).
func (c *Call) Events() <-chan Event {
	c.subscribe.Do(func() { c.phone.watchEvents(c.events) })
	return c.events.Out()
}

// Done is closed when the call has ended and released its audio device
// (after any end tone has finished playing).
func (c *Call) Done() <-chan struct{} { return c.done }

// Wait blocks until the call is done or ctx ends, and returns the end
// reason.
func (c *Call) Wait(ctx context.Context) (Reason, error) {
	select {
	case <-c.done:
		return c.Reason(), nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Accept answers an incoming ringing call. It returns once the answer is
// sent and media set-up has begun; the call then goes Connecting →
// Connected (watch Events). It fails with ErrEnded if the call ended first
// (the caller cancelled) and ErrState if the call is not ringing.
//
// Like every method that takes a context, Accept returns ctx's error when
// ctx ends before the call has acted on it, and then the command never
// runs: an Accept that timed out does not answer the call later.
func (c *Call) Accept(ctx context.Context) error {
	return c.ask(ctx, func(r *request) input { return cmdAccept{r} })
}

// Decline refuses an incoming ringing call; the caller's call ends
// `declined`.
func (c *Call) Decline(ctx context.Context) error {
	return c.ask(ctx, func(r *request) input { return cmdDecline{r} })
}

// Hangup ends the call from this side: a ringing outgoing call is
// cancelled, an incoming ringing call declined, a live one hung up. It does
// not wait for the end tone or device release (use Wait).
func (c *Call) Hangup() {
	c.post(cmdHangup{reason: ReasonHangup})
}

// Mute stops (true) or resumes (false) sending microphone audio. While
// muted the far end hears silence (comfort noise) and RTP timestamps keep
// running.
func (c *Call) Mute(on bool) {
	c.mu.Lock()
	c.muted = on
	c.mu.Unlock()
	c.post(cmdMute{on: on})
}

// SetProcessing switches the parts of the microphone's processing (echo
// cancellation, noise suppression, gain control, high-pass filter) for the
// rest of the call, from the next frame; see Config.Processing.
func (c *Call) SetProcessing(cfg apm.Config) {
	c.post(cmdProcess{cfg: cfg})
}

// SetInput switches the microphone mid-call, by device ID or name ("" =
// the system default, followed when it changes). No renegotiation: the
// far end hears at most a frame or two of glitch.
func (c *Call) SetInput(ctx context.Context, device string) error {
	return c.ask(ctx, func(r *request) input { return cmdDevice{capture: true, device: device, request: r} })
}

// SetOutput switches the speaker mid-call, like SetInput.
func (c *Call) SetOutput(ctx context.Context, device string) error {
	return c.ask(ctx, func(r *request) input { return cmdDevice{capture: false, device: device, request: r} })
}

// SendText sends a text message over the call's data channel. Called while
// the call is still connecting (or just connected, before the data channel
// has opened), it waits for the channel, as long as ctx lets it; it fails
// with ErrState before the call is answered and ErrEnded after it ended.
func (c *Call) SendText(ctx context.Context, text string) error {
	return c.ask(ctx, func(r *request) input { return cmdText{text: text, request: r} })
}

// SendDTMF sends DTMF digits (0-9, *, #, A-D) as RFC 4733 telephone events.
// Like SendText, called while the call is connecting (right after Accept,
// or while it reconnects) it waits for the media path, as long as ctx lets
// it; it fails with ErrState before the call is answered and ErrEnded after
// it ended. It returns once the digits are queued for sending (each plays
// for Config.DTMFDuration).
func (c *Call) SendDTMF(ctx context.Context, digits string) error {
	for _, d := range digits {
		if !validDTMF(d) {
			return fmt.Errorf("call: %w: %q", ErrBadDTMF, d)
		}
	}
	return c.ask(ctx, func(r *request) input { return cmdDTMF{digits: digits, request: r} })
}

func validDTMF(d rune) bool {
	return (d >= '0' && d <= '9') || d == '*' || d == '#' || (d >= 'A' && d <= 'D')
}

// request is a command a method waits for. Exactly one side claims it:
// the actor when it runs the command, or the caller when its context ends
// first. A command whose caller gave up therefore never runs later.
type request struct {
	ctx   context.Context
	reply chan error // buffered: the actor never waits for the caller
	state atomic.Int32
}

const (
	requestPending int32 = iota
	requestTaken
	requestWithdrawn
)

func newRequest(ctx context.Context) *request {
	return &request{ctx: ctx, reply: make(chan error, 1)}
}

// do runs f for the actor and replies with its result, unless the caller
// has given up (then f does not run).
func (r *request) do(f func() error) {
	if r.ctx.Err() != nil {
		if r.state.CompareAndSwap(requestPending, requestWithdrawn) {
			r.reply <- r.ctx.Err()
		}
		return
	}
	if r.state.CompareAndSwap(requestPending, requestTaken) {
		r.reply <- f()
	}
}

// withdrawn reports that the caller has given up on r.
func (r *request) withdrawn() bool { return r.state.Load() == requestWithdrawn }

// ask posts a command and waits for its result, or for ctx.
func (c *Call) ask(ctx context.Context, mk func(*request) input) error {
	return ask(ctx, c.inbox, c.stopped, mk)
}

// ask posts the command mk makes to an actor's inbox (a Call's or a
// Room's) and waits for its result, for the actor to stop (stopped), or
// for ctx; a command the actor has not taken yet when ctx ends is
// withdrawn.
func ask(ctx context.Context, inbox *mailbox.Mailbox[input], stopped <-chan struct{}, mk func(*request) input) error {
	r := newRequest(ctx)
	if !inbox.Put(mk(r)) {
		return ErrEnded
	}
	select {
	case err := <-r.reply:
		return err
	case <-stopped:
		select {
		case err := <-r.reply:
			return err
		default:
			return ErrEnded
		}
	case <-ctx.Done():
		if r.state.CompareAndSwap(requestPending, requestWithdrawn) {
			return ctx.Err()
		}
		// The actor took it first: it is running and replies at once.
		return <-r.reply
	}
}

func (c *Call) post(in input) { c.inbox.Put(in) }

func (c *Call) ended() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == Ended
}

// ringingOut reports an outgoing call that has not been answered yet.
func (c *Call) ringingOut() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == Idle || c.state == Dialing || c.state == Waiting
}

func (c *Call) start() {
	c.emit(Event{Kind: EventState, State: c.state})
	c.phone.actors.Add(1)
	go func() {
		defer c.phone.actors.Done()
		c.run()
	}()
}

// abandon releases the event queue when the phone closes and nobody reads.
func (c *Call) abandon() {
	c.events.Abandon()
	c.inbox.Abandon()
}

// The actor.

type input any

type (
	cmdDial    struct{}
	cmdGiveUp  struct{} // the context given to Dial ended
	cmdAccept  struct{ *request }
	cmdDecline struct{ *request }
	cmdHangup  struct{ reason Reason }
	cmdMute    struct{ on bool }
	cmdProcess struct{ cfg apm.Config }
	cmdText    struct {
		*request
		text string
	}
	cmdDTMF struct {
		*request
		digits string
	}
	cmdDevice struct {
		*request
		capture bool
		device  string
	}
	cmdRecord struct {
		*request
		rec *Recording
	}
	cmdStopRecord struct{ rec *Recording }

	evInvited   struct{}
	evMessage   struct{ m signaling.Message }
	evSignaling struct{ status signaling.Status }
	evTimer     struct{ kind timerKind }
	evPeerState struct{ state webrtc.PeerConnectionState }
	evICEState  struct{ state webrtc.ICEConnectionState }
	evNegFailed struct{ err error }
	evGathered  struct{}            // ICE gathering completed
	evProbed    struct{ err error } // what the TURN relay answered our own allocation (probeRelay)
	evText      struct{ text string }
	evDTMF      struct{ digit rune }
	evTalking   struct {
		remote, on bool
		level      float64
	}
	evToneDone   struct{}
	evTextOpen   struct{}
	evTrackBound struct{} // pion bound the send track: queued DTMF may go
)

type timerKind int

const (
	timerRing timerKind = iota + 1
	timerConnect
	timerRelay
	timerRelayRefresh
	timerSignaling
	timerStats
	timerEndTone
)

func (c *Call) run() {
	defer close(c.stopped)
	defer c.inbox.Abandon()
	for in := range c.inbox.Out() {
		c.handle(in)
		if c.finished() {
			return
		}
	}
}

// finished reports that the call has ended and its end tone is over: the
// actor can release everything and stop.
func (c *Call) finished() bool {
	if c.State() != Ended || c.timers[timerEndTone] != nil {
		return false
	}
	c.release()
	return true
}

func (c *Call) handle(in input) {
	switch in := in.(type) {
	case cmdDial:
		c.dial()
	case evInvited:
		c.send(signaling.TypeRinging, nil)
		c.refreshRelay()
		// Our own guard: if the caller's cancel never reaches us, stop
		// ringing a little after the caller would have given up.
		c.arm(timerRing, c.cfg.RingTimeout+c.cfg.RingTimeout/4)
	case cmdGiveUp:
		switch c.State() {
		case Idle, Dialing, Waiting, Connecting:
			c.hangup(ReasonCancelled)
		}
	case cmdAccept:
		in.do(c.accept)
	case cmdDecline:
		in.do(c.decline)
	case cmdHangup:
		c.hangup(in.reason)
	case cmdMute:
		c.setMuted(in.on)
	case cmdProcess:
		c.setProcessing(in.cfg)
	case cmdText:
		c.sendText(in)
	case evTextOpen:
		c.flushText()
	case cmdDTMF:
		c.sendDTMF(in)
	case cmdDevice:
		in.do(func() error { return c.setDevice(in.capture, in.device) })
	case cmdRecord:
		in.do(func() error { return c.record(in.rec) })
	case cmdStopRecord:
		c.stopRecording(in.rec)
	case evMessage:
		c.onMessage(in.m)
	case evSignaling:
		c.onSignaling(in.status)
	case evTimer:
		c.onTimer(in.kind)
	case evPeerState:
		c.onPeerState(in.state)
	case evICEState:
		c.onICEState(in.state)
	case evNegFailed:
		if c.State() != Ended {
			c.fail(ReasonICEFailed, in.err, true)
		}
	case evText:
		c.emit(Event{Kind: EventText, Text: in.text})
	case evDTMF:
		c.emit(Event{Kind: EventDTMF, Digit: in.digit})
	case evTalking:
		c.emit(Event{Kind: EventTalking, Remote: in.remote, Talking: in.on, Level: in.level})
	case evToneDone:
		c.disarm(timerEndTone)
	case evTrackBound:
		c.flushDTMF()
	case evGathered:
		c.onGathered()
	case evProbed:
		c.onProbed(in.err)
	}
}

func (c *Call) dial() {
	c.setState(Dialing)
	if err := c.openAudio(); err != nil {
		c.fail(ReasonError, err, true)
		return
	}
	// Phone.Dial has sent the invite.
	c.refreshRelay()
	// If the server never answers waiting/offline, the ring timer still
	// bounds the attempt.
	c.arm(timerRing, c.cfg.RingTimeout)
}

func (c *Call) accept() error {
	switch c.State() {
	case Ringing:
	case Ended:
		return ErrEnded
	default:
		return fmt.Errorf("call: accept in state %s: %w", c.State(), ErrState)
	}
	c.disarm(timerRing)
	if err := c.openAudio(); err != nil {
		c.fail(ReasonError, err, true)
		return err
	}
	// accept goes out before our first signal: the outbox keeps order.
	c.send(signaling.TypeAccept, nil)
	if err := c.startMedia(); err != nil {
		c.fail(ReasonError, err, true)
		return err
	}
	c.setState(Connecting)
	c.arm(timerConnect, c.cfg.ConnectTimeout)
	return nil
}

func (c *Call) decline() error {
	switch c.State() {
	case Ringing:
	case Ended:
		return ErrEnded
	default:
		return fmt.Errorf("call: decline in state %s: %w", c.State(), ErrState)
	}
	c.send(signaling.TypeDecline, signaling.Hangup{Reason: string(ReasonDeclined)})
	c.end(ReasonDeclined, nil)
	return nil
}

// hangup ends the call from our side with the message the state calls for.
func (c *Call) hangup(reason Reason) {
	switch c.State() {
	case Ended:
		return
	case Idle, Dialing, Waiting:
		c.send(signaling.TypeCancel, signaling.Hangup{Reason: string(reason)})
		if reason == ReasonHangup {
			reason = ReasonCancelled
		}
	case Ringing:
		c.send(signaling.TypeDecline, signaling.Hangup{Reason: string(ReasonDeclined)})
		if reason == ReasonHangup {
			reason = ReasonDeclined
		}
	default:
		c.send(signaling.TypeHangup, signaling.Hangup{Reason: string(reason)})
	}
	c.end(reason, nil)
}

// fail ends the call with a failure; tell says whether the peer must hear
// about it (a hangup or cancel carrying the reason).
func (c *Call) fail(reason Reason, err error, tell bool) {
	if c.State() == Ended {
		return
	}
	if tell {
		switch c.State() {
		case Idle, Dialing, Waiting:
			c.send(signaling.TypeCancel, signaling.Hangup{Reason: string(reason)})
		case Ringing:
			c.send(signaling.TypeDecline, signaling.Hangup{Reason: string(reason)})
		default:
			c.send(signaling.TypeHangup, signaling.Hangup{Reason: string(reason)})
		}
	}
	if err != nil {
		c.log.Warn("call failed", "reason", reason, "err", err)
	}
	c.end(reason, err)
}

func (c *Call) onMessage(m signaling.Message) {
	st := c.State()
	if st == Ended {
		// A terminal state is never overwritten by a late message.
		return
	}
	switch m.Type {
	case signaling.TypeWaiting, signaling.TypeRinging:
		if c.outgoing && st == Dialing {
			c.setState(Waiting)
			c.playTone(toneRingback)
			c.arm(timerRing, c.cfg.RingTimeout)
		}
	case signaling.TypeOffline:
		if c.outgoing && (st == Dialing || st == Waiting) {
			c.end(ReasonOffline, nil)
		}
	case signaling.TypePushFailed:
		if c.outgoing && (st == Dialing || st == Waiting) {
			c.end(ReasonPushFailed, nil)
		}
	case signaling.TypeBusy:
		if c.outgoing && (st == Dialing || st == Waiting) {
			c.end(ReasonBusy, nil)
		}
	case signaling.TypeDecline:
		if c.outgoing && (st == Dialing || st == Waiting) {
			c.end(ReasonDeclined, nil)
		}
	case signaling.TypeAccept:
		if !c.outgoing || (st != Dialing && st != Waiting) {
			return
		}
		c.disarm(timerRing)
		c.stopTone()
		if err := c.startMedia(); err != nil {
			c.fail(ReasonError, err, true)
			return
		}
		c.setState(Connecting)
		c.arm(timerConnect, c.cfg.ConnectTimeout)
	case signaling.TypeCancel:
		if !c.outgoing {
			reason := ReasonCancelled
			if r := hangupReason(m); r == ReasonNoAnswer {
				reason = ReasonNoAnswer
			}
			c.end(reason, nil)
		}
	case signaling.TypeHangup:
		reason := ReasonRemoteHangup
		switch r := hangupReason(m); r {
		case ReasonICEFailed, ReasonConnectTimeout, ReasonRelayFailed:
			// Both ends report the same network failure.
			reason = r
		}
		c.end(reason, nil)
	case signaling.TypeSignal:
		var sig negotiation.Signal
		if err := json.Unmarshal(m.Data, &sig); err != nil {
			c.log.Warn("bad signal ignored", "err", err)
			return
		}
		if c.media == nil {
			if len(c.early) < 256 {
				c.early = append(c.early, sig)
			}
			return
		}
		c.handleSignal(sig)
	case signaling.TypeError:
		var e signaling.Error
		_ = m.Unmarshal(&e)
		if e.Code == signaling.CodeRateLimited {
			// Dropped for a rate limit, not refused: the WebSocket
			// transport sends it again after the server's delay, and the
			// call's timers bound the wait.
			c.log.Info("server delayed a message of this call (rate limit)", "rejected", e.Rejected)
			return
		}
		c.log.Warn("server rejected a message of this call", "code", e.Code, "msg", e.Message, "rejected", e.Rejected)
		if st == Dialing && e.Rejected == signaling.TypeInvite {
			c.end(ReasonError, e)
		}
	case signaling.TypeReady:
		// Reconnected: the outbox flushes by itself; `ready` carries fresh
		// relay credentials.
		c.applyRelay()
	case signaling.TypeRelayConfig:
		c.onRelayConfig(m)
	}
}

func hangupReason(m signaling.Message) Reason {
	var h signaling.Hangup
	if len(m.Data) == 0 || m.Unmarshal(&h) != nil {
		return ""
	}
	return Reason(h.Reason)
}

func (c *Call) handleSignal(sig negotiation.Signal) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.media.neg.HandleSignal(ctx, sig); err != nil {
		c.log.Debug("signal not applied", "err", err)
	}
}

func (c *Call) onSignaling(st signaling.Status) {
	switch st.State {
	case signaling.StateDown:
		// Media that already flows does not need signaling; a call still
		// being set up does. Give the connection a bounded time to return.
		if s := c.State(); s != Connected && s != Reconnecting && s != Ended {
			c.arm(timerSignaling, c.cfg.SignalingGrace)
		}
	case signaling.StateUp:
		c.disarm(timerSignaling)
	case signaling.StateClosed:
		reason := ReasonSignalingLost
		if errors.Is(st.Err, signaling.ErrUnauthorized) {
			reason = ReasonUnauthorized
		}
		// A connected call survives the loss of signaling, but it can no
		// longer be hung up remotely; everything else ends now.
		if s := c.State(); s != Connected && s != Reconnecting {
			c.fail(reason, st.Err, false)
		}
	}
}

func (c *Call) onTimer(k timerKind) {
	if c.timers[k] == nil {
		return // disarmed after it fired
	}
	delete(c.timers, k)
	switch k {
	case timerRing:
		switch c.State() {
		case Dialing, Waiting:
			c.send(signaling.TypeCancel, signaling.Hangup{Reason: string(ReasonNoAnswer)})
			c.end(ReasonNoAnswer, nil)
		case Ringing:
			c.end(ReasonNoAnswer, nil)
		}
	case timerConnect:
		if s := c.State(); s == Connecting {
			c.fail(ReasonConnectTimeout, nil, true)
		}
	case timerSignaling:
		if s := c.State(); s != Connected && s != Reconnecting && s != Ended {
			c.fail(ReasonSignalingLost, nil, false)
		}
	case timerRelay:
		c.relayTimedOut()
	case timerRelayRefresh:
		c.refreshLiveRelay()
	case timerStats:
		c.sampleStats()
		if c.State() != Ended {
			c.arm(timerStats, c.cfg.StatsInterval)
		}
	case timerEndTone:
		c.stopTone()
	}
}

func (c *Call) onPeerState(s webrtc.PeerConnectionState) {
	switch s {
	case webrtc.PeerConnectionStateConnected:
		switch c.State() {
		case Connecting:
			c.disarm(timerConnect)
			c.connected()
			c.arm(timerStats, c.cfg.StatsInterval)
			c.armRelayRefresh()
		case Reconnecting:
			c.connected()
		}
	}
}

func (c *Call) onICEState(s webrtc.ICEConnectionState) {
	switch s {
	case webrtc.ICEConnectionStateDisconnected, webrtc.ICEConnectionStateFailed:
		if c.State() == Connected {
			c.setState(Reconnecting)
		}
	case webrtc.ICEConnectionStateConnected, webrtc.ICEConnectionStateCompleted:
		if c.State() == Reconnecting {
			c.connected()
		}
	}
}

// send queues a message of this call for the peer.
func (c *Call) send(t signaling.Type, data any) {
	m, err := signaling.NewMessage(t, c.peer, c.id, data)
	if err != nil {
		c.log.Error("cannot encode message", "type", t, "err", err)
		return
	}
	c.phone.post(m)
}

func (c *Call) setState(s State) {
	c.mu.Lock()
	if c.state == s || c.state == Ended {
		c.mu.Unlock()
		return
	}
	c.state = s
	c.mu.Unlock()
	c.log.Debug("state", "state", s)
	c.emit(Event{Kind: EventState, State: s})
}

// connected moves the call to Connected: Dial's context no longer matters,
// and the DTMF digits that waited for the media path leave.
func (c *Call) connected() {
	c.setState(Connected)
	c.stopGiveUp()
	c.flushDTMF()
}

func (c *Call) stopGiveUp() {
	c.mu.Lock()
	stop := c.giveUp
	c.giveUp = nil
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// watchDial ends the call `cancelled` if ctx ends before it is connected.
func (c *Call) watchDial(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() { c.post(cmdGiveUp{}) })
	c.mu.Lock()
	if c.state >= Connected {
		c.mu.Unlock()
		stop()
		return
	}
	c.giveUp = stop
	c.mu.Unlock()
}

// end moves the call to Ended with reason. A terminal state is never
// overwritten: the first reason wins.
func (c *Call) end(reason Reason, err error) {
	c.mu.Lock()
	if c.state == Ended {
		c.mu.Unlock()
		return
	}
	c.state, c.reason, c.err = Ended, reason, err
	c.mu.Unlock()
	c.log.Info("call ended", "reason", reason, "err", err)
	for k := range c.timers {
		c.disarm(k)
	}
	c.stopGiveUp()
	for _, t := range c.texts {
		t.do(func() error { return ErrEnded })
	}
	c.texts = nil
	for _, d := range c.dtmf {
		d.do(func() error { return ErrEnded })
	}
	c.dtmf = nil
	c.stopRecording(c.rec)
	c.emit(Event{Kind: EventState, State: Ended, Reason: reason, Err: err})
	c.phone.forget(c)
	// Closing a PeerConnection can take seconds (an unreachable TURN
	// server's allocation must time out); it must not hold the actor or the
	// end event. release waits for it.
	if s := c.detachMedia(); s != nil {
		c.closing = make(chan struct{})
		go func() {
			defer close(c.closing)
			s.close(c.log)
		}()
	}
	switch reason {
	case ReasonBusy:
		c.playEndTone(toneBusy)
	case ReasonOffline, ReasonPushFailed, ReasonError, ReasonConnectTimeout, ReasonICEFailed, ReasonRelayFailed, ReasonSignalingLost, ReasonUnauthorized:
		c.playEndTone(toneError)
	default:
		c.stopTone()
	}
}

// release frees everything still held once the end tone is over.
func (c *Call) release() {
	if c.closing != nil {
		<-c.closing
	}
	if c.relay.probeDone != nil {
		<-c.relay.probeDone
	}
	c.closeAudio()
	c.events.Close()
	select {
	case <-c.done:
	default:
		close(c.done)
	}
}

// emit queues e for Events. Nothing follows the Ended event: a talking,
// DTMF or text event the actor handles after the end is dropped, so a
// reader may stop at Ended.
func (c *Call) emit(e Event) {
	if e.Kind != EventState && c.State() == Ended {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	c.events.Put(e)
}

func (c *Call) arm(k timerKind, d time.Duration) {
	c.disarm(k)
	if d <= 0 {
		return
	}
	c.timers[k] = time.AfterFunc(d, func() { c.inbox.Put(evTimer{kind: k}) })
}

func (c *Call) disarm(k timerKind) {
	if t := c.timers[k]; t != nil {
		t.Stop()
		delete(c.timers, k)
	}
}
