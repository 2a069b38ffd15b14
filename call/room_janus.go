package call

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/dialtone-dev/dialtone/internal/mailbox"
	"github.com/dialtone-dev/dialtone/janus"
	"github.com/dialtone-dev/dialtone/media"
	"github.com/dialtone-dev/dialtone/negotiation"
	"github.com/pion/webrtc/v4"
)

// JanusRoom names a room of a Janus AudioBridge (an audio mixer) for
// Phone.JoinJanus.
type JanusRoom struct {
	// API is the connection to Janus's WebSocket API: URL (such as
	// ws://janus.example:8188/), dialer, keepalive and reconnection.
	API janus.Config
	// Room is the AudioBridge room's ID.
	Room uint64
	// Pin is the room's PIN, if it has one.
	Pin string
	// Create, when set, creates the room if it does not exist, with these
	// options (their Room is this Room; an empty Pin is this Pin). Its
	// Prebuffering left zero is janus.DefaultPrebuffering.
	Create *janus.RoomOptions
}

// janusCloseTimeout bounds the session's destruction on the server when a
// Janus room ends.
const janusCloseTimeout = 5 * time.Second

// JoinJanus joins an AudioBridge room on a Janus server and returns once
// Janus has admitted us; the PeerConnection to the mixer is set up
// afterwards (MemberConnected for each member once both its link and ours
// are up). The Room is the same as a mesh room's, with these differences:
//
//   - members are the room's other participants: Member.User is their
//     Janus participant ID in decimal, DisplayName their display name;
//   - the audio is one stream, Janus's mix of everyone but us, so
//     MemberTalking and MemberStoppedTalking come from Janus's talking
//     events (rooms created with TalkingEvents; Level is not known per
//     member), SetVolume has no effect, and there are no per-member stats
//     (MemberStats) and no text (SendText fails with ErrState);
//   - Mute tells Janus, which mutes us in the mix and tells the others;
//   - the room ends with ReasonKicked when we are kicked, ReasonDestroyed
//     when the room is destroyed, ReasonSignalingLost when the API
//     connection is lost for good (a dropped connection is taken back by
//     itself: RoomReconnecting, then RoomReconnected with the members that
//     changed meanwhile reported just before it).
//
// It fails with ErrUnknownRoom (no such room), ErrForbidden (wrong PIN),
// ErrUnavailable (Janus unreachable or failing), ErrBadRoom (room 0 or a
// bad display name), ErrBusy and ErrInRoom as Join does, and ErrNoOpus in
// a build without cgo.
func (p *Phone) JoinJanus(ctx context.Context, jr JanusRoom, cfg RoomConfig) (*Room, error) {
	name := "janus:" + strconv.FormatUint(jr.Room, 10)
	if !media.OpusAvailable {
		return nil, fmt.Errorf("call: join %s: %w", name, ErrNoOpus)
	}
	if jr.Room == 0 {
		return nil, fmt.Errorf("call: join %s: %w", name, ErrBadRoom)
	}
	return p.joinRoom(ctx, name, cfg, newJanusMixer(jr))
}

// janusMixer is a room's link to a Janus AudioBridge: the API session, run
// by a worker goroutine (its requests block), and the one PeerConnection to
// the mixer, owned by the room's actor like a mesh room's peers.
type janusMixer struct {
	jr     JanusRoom
	ctx    context.Context // canceled when the room ends: aborts a join under way
	cancel context.CancelFunc
	work   *mailbox.Mailbox[func(*janusWorker)]
	wg     sync.WaitGroup // the worker and the event reader
	in     *mixInput      // the mix, in the playback mix

	// Owned by the room's actor.
	bridge    *janus.AudioBridge
	self      uint64
	seq       uint64 // joining order of members
	members   map[uint64]janus.Participant
	s         *session
	connected bool // our PeerConnection to the mixer is up
	reconnect bool // it is reconnecting
}

// janusWorker is the worker goroutine's state.
type janusWorker struct {
	sess   *janus.Session
	bridge *janus.AudioBridge
}

func newJanusMixer(jr JanusRoom) *janusMixer {
	ctx, cancel := context.WithCancel(context.Background())
	return &janusMixer{
		jr:      jr,
		ctx:     ctx,
		cancel:  cancel,
		work:    mailbox.New[func(*janusWorker)](),
		in:      newMixInput(1),
		members: make(map[uint64]janus.Participant),
	}
}

// The room actor's inputs from its Janus link.
type (
	evJanusJoined struct {
		bridge *janus.AudioBridge
		joined janus.Joined
		muted  bool // as joined
	}
	evJanusJoinFailed struct{ err error }
	evJanus           struct{ e janus.BridgeEvent }
	evJanusEnded      struct{ err error } // the session's events ended
	// Events of the PeerConnection to the mixer carry its session: a late
	// one from a closed PeerConnection is ignored.
	evJanusPeerState struct {
		s     *session
		state webrtc.PeerConnectionState
	}
	evJanusICEState struct {
		s     *session
		state webrtc.ICEConnectionState
	}
	evJanusNegFailed struct {
		s   *session
		err error
	}
	evJanusLoss struct {
		s   *session
		pct int
	}
)

// handleJanus handles a Janus room's inputs; it reports false for those
// the mesh code handles for both (timers).
func (r *Room) handleJanus(in input) bool {
	m := r.mixer
	switch in := in.(type) {
	case cmdJoin:
		r.join(in.request)
	case cmdLeave:
		r.end(ReasonLeft, nil)
	case cmdMute:
		if r.sender != nil {
			r.sender.SetMuted(in.on)
		}
		if m.bridge != nil {
			m.mute(r, in.on)
		}
	case cmdText:
		in.do(func() error { return fmt.Errorf("call: text in a Janus room: %w", ErrState) })
	case evMessage, evSignaling:
		// The signaling server has no part in a Janus room.
	case evJanusJoined:
		m.joined(r, in)
	case evJanusJoinFailed:
		r.failJoin(in.err)
		r.end(ReasonError, in.err)
	case evJanus:
		m.event(r, in.e)
	case evJanusEnded:
		err := in.err
		if err == nil {
			err = janus.ErrClosed
		}
		r.end(ReasonSignalingLost, fmt.Errorf("call: Janus session: %w", err))
	case evJanusPeerState:
		if in.s == m.s {
			m.peerState(r, in.state)
		}
	case evJanusICEState:
		if in.s == m.s {
			m.iceState(r, in.state)
		}
	case evJanusNegFailed:
		if in.s == m.s {
			r.end(ReasonICEFailed, in.err)
		}
	case evJanusLoss:
		if in.s == m.s && r.sender != nil {
			r.sender.SetPacketLoss(in.pct)
		}
	default:
		return false
	}
	return true
}

// join has the worker join the room, once Room.join has built the send
// path.
func (m *janusMixer) join(r *Room) {
	muted, display, name, timeout := r.Muted(), r.rcfg.DisplayName, r.name, r.cfg.ConnectTimeout
	m.wg.Add(1)
	go m.runWorker()
	m.work.Put(func(w *janusWorker) {
		ctx, cancel := context.WithTimeout(m.ctx, timeout)
		defer cancel()
		j, err := w.join(ctx, m.jr, display, muted)
		if err != nil {
			r.post(evJanusJoinFailed{err: janusJoinError(name, err)})
			return
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			for e := range w.bridge.Events() {
				r.post(evJanus{e})
			}
			r.post(evJanusEnded{err: w.bridge.Err()})
		}()
		r.post(evJanusJoined{bridge: w.bridge, joined: j, muted: muted})
	})
}

// runWorker runs the Janus requests in order; when the room has ended it
// destroys the session.
func (m *janusMixer) runWorker() {
	defer m.wg.Done()
	var w janusWorker
	for f := range m.work.Out() {
		f(&w)
	}
	if w.sess != nil {
		ctx, cancel := context.WithTimeout(context.Background(), janusCloseTimeout)
		defer cancel()
		_ = w.sess.Close(ctx)
	}
}

// join connects, creates the room if asked to, and joins it.
func (w *janusWorker) join(ctx context.Context, jr JanusRoom, display string, muted bool) (janus.Joined, error) {
	s, err := janus.Connect(ctx, jr.API)
	if err != nil {
		return janus.Joined{}, err
	}
	w.sess = s
	b, err := janus.AttachAudioBridge(ctx, s)
	if err != nil {
		return janus.Joined{}, err
	}
	w.bridge = b
	if jr.Create != nil {
		ok, err := b.Exists(ctx, jr.Room)
		if err != nil {
			return janus.Joined{}, err
		}
		if !ok {
			o := *jr.Create
			o.Room = jr.Room
			if o.Pin == "" {
				o.Pin = jr.Pin
			}
			if _, err := b.Create(ctx, o); err != nil && !errors.Is(err, janus.ErrRoomExists) {
				return janus.Joined{}, err
			}
		}
	}
	return b.Join(ctx, jr.Room, janus.JoinOptions{Display: display, Pin: jr.Pin, Muted: muted})
}

// janusJoinError adds the call package's sentinel to a failed Janus join.
func janusJoinError(name string, err error) error {
	var s error
	switch {
	case errors.Is(err, janus.ErrNoSuchRoom):
		s = ErrUnknownRoom
	case errors.Is(err, janus.ErrUnauthorized):
		s = ErrForbidden
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("call: join %s: %w", name, ErrEnded)
	default:
		s = ErrUnavailable
	}
	return fmt.Errorf("call: join %s: %w: %w", name, s, err)
}

// joined takes the membership Janus granted: the members, the
// PeerConnection to the mixer, the devices.
func (m *janusMixer) joined(r *Room, ev evJanusJoined) {
	if r.isEnded() {
		return // the worker destroys the session
	}
	m.bridge, m.self = ev.bridge, ev.joined.ID
	r.joined = true
	for _, p := range ev.joined.Participants {
		m.addMember(r, p)
	}
	if err := m.startPeer(r); err != nil {
		r.failJoin(err)
		r.end(ReasonError, err)
		return
	}
	if err := r.openAudio(); err != nil {
		r.failJoin(err)
		r.end(ReasonError, err)
		return
	}
	if muted := r.Muted(); muted != ev.muted {
		m.mute(r, muted)
	}
	if req := r.joinReq; req != nil {
		r.joinReq = nil
		req.do(func() error { return nil })
	}
}

// mute tells Janus, in order with the other requests.
func (m *janusMixer) mute(r *Room, on bool) {
	m.work.Put(func(w *janusWorker) {
		ctx, cancel := context.WithTimeout(m.ctx, r.cfg.SendTimeout)
		defer cancel()
		if err := w.bridge.Mute(ctx, on); err != nil {
			r.log.Warn("janus: mute not applied", "muted", on, "err", err)
		}
	})
}

// startPeer builds the PeerConnection to the mixer: the room's one track
// out, the mix in, negotiated through the AudioBridge (our offer, its
// answer) by the same negotiator as calls.
func (m *janusMixer) startPeer(r *Room) error {
	api, err := r.phone.webrtcAPI()
	if err != nil {
		return err
	}
	pcCfg := webrtc.Configuration{ICEServers: r.cfg.ICEServers}
	if pcCfg.ICEServers == nil {
		pcCfg.ICEServers = toWebRTC(r.phone.relayServers())
	}
	if r.cfg.RelayOnly {
		pcCfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := api.NewPeerConnection(pcCfg)
	if err != nil {
		return fmt.Errorf("call: peer connection: %w", err)
	}
	s := &session{pc: pc}
	fail := func(err error) error {
		if s.neg != nil {
			_ = s.neg.Close()
		}
		_ = pc.Close()
		return err
	}
	s.neg, err = negotiation.New(pc, negotiation.Config{
		Send:              m.bridge.Signal,
		Logger:            r.log.With("peer", "janus"),
		DisconnectedGrace: r.cfg.DisconnectedGrace,
		OnFailed:          func(err error) { r.post(evJanusNegFailed{s: s, err: err}) },
		OnICEConnectionStateChange: func(webrtc.ICEConnectionState) {
			r.post(evJanusICEState{s: s, state: pc.ICEConnectionState()})
		},
	})
	if err != nil {
		return fail(fmt.Errorf("call: negotiator: %w", err))
	}
	pc.OnConnectionStateChange(func(webrtc.PeerConnectionState) {
		r.post(evJanusPeerState{s: s, state: pc.ConnectionState()})
	})
	in, log := m.in, r.log
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() != webrtc.RTPCodecTypeAudio {
			return
		}
		rc, err := media.NewTrackReceiver(tr, media.ReceiverConfig{Logger: log})
		if err != nil {
			log.Warn("cannot receive the mix", "codec", tr.Codec().MimeType, "err", err)
			return
		}
		if s.keepReceiver(rc) {
			in.recv.Store(rc)
		}
	})
	// The room's one track: its sender puts the RFC 6464 audio level on
	// every packet once the answer accepts the extension, which is what
	// Janus's talking events are computed from.
	rtpSender, err := pc.AddTrack(r.track)
	if err != nil {
		return fail(fmt.Errorf("call: add track: %w", err))
	}
	s.onLoss = func(pct int) { r.post(evJanusLoss{s: s, pct: pct}) }
	s.rtcpDone = make(chan struct{})
	go s.readRTCP(rtpSender, func() uint32 {
		if enc := rtpSender.GetParameters().Encodings; len(enc) > 0 {
			return uint32(enc[0].SSRC)
		}
		return 0
	})
	m.s = s
	r.mixInputsChanged()
	return nil
}

// event handles one AudioBridge event.
func (m *janusMixer) event(r *Room, e janus.BridgeEvent) {
	if r.isEnded() {
		return
	}
	switch e.Kind {
	case janus.BridgeJoined:
		m.addMember(r, e.Participant)
	case janus.BridgeUpdated:
		m.updateMember(r, e.Participant)
	case janus.BridgeLeft:
		m.removeMember(r, e.ID, ReasonLeft)
	case janus.BridgeKicked:
		if e.ID == m.self {
			r.end(ReasonKicked, nil)
			return
		}
		m.removeMember(r, e.ID, ReasonKicked)
	case janus.BridgeDestroyed:
		r.end(ReasonDestroyed, nil)
	case janus.BridgeTalking, janus.BridgeStoppedTalking:
		if _, ok := m.members[e.ID]; !ok {
			return // ourselves, or a member not known yet
		}
		on := e.Kind == janus.BridgeTalking
		user := janusUser(e.ID)
		r.updateView(user, func(mb *Member) { mb.Talking = on })
		kind := MemberStoppedTalking
		if on {
			kind = MemberTalking
		}
		r.emitMember(kind, user, nil)
	case janus.BridgeSignal:
		if m.s != nil {
			if err := m.s.neg.HandleSignal(r.handOver, e.Signal); err != nil && !errors.Is(err, context.Canceled) {
				r.log.Debug("janus signal not applied", "err", err)
			}
		}
	case janus.BridgeSignalFailed:
		r.end(ReasonError, fmt.Errorf("call: Janus refused our offer: %w", e.Err))
	case janus.BridgeHangup:
		r.end(ReasonError, fmt.Errorf("call: Janus hung up the PeerConnection: %s", e.Reason))
	case janus.BridgeDisconnected:
		r.emit(RoomEvent{Kind: RoomReconnecting})
	case janus.BridgeReclaimed:
		if e.Err != nil {
			r.log.Warn("janus: members after the reconnection not known", "err", e.Err)
		} else {
			m.resync(r, e.Participants)
		}
		r.emit(RoomEvent{Kind: RoomReconnected})
	}
}

// janusUser is a participant's Member.User.
func janusUser(id uint64) string { return strconv.FormatUint(id, 10) }

func (m *janusMixer) addMember(r *Room, p janus.Participant) {
	if p.ID == m.self {
		return
	}
	if _, ok := m.members[p.ID]; ok {
		m.updateMember(r, p)
		return
	}
	m.members[p.ID] = p
	m.seq++
	user := janusUser(p.ID)
	r.mu.Lock()
	r.view[user] = &memberView{Member: Member{User: user, DisplayName: p.Display, Muted: p.Muted, Talking: p.Talking}, session: m.seq}
	r.mu.Unlock()
	r.emitMember(MemberJoined, user, nil)
	if p.Setup && m.connected {
		r.updateView(user, func(mb *Member) { mb.Connected = true })
		r.emitMember(MemberConnected, user, nil)
	}
}

func (m *janusMixer) updateMember(r *Room, p janus.Participant) {
	old, ok := m.members[p.ID]
	if !ok {
		m.addMember(r, p)
		return
	}
	m.members[p.ID] = p
	user := janusUser(p.ID)
	r.updateView(user, func(mb *Member) {
		mb.Muted, mb.DisplayName = p.Muted, p.Display
		if p.Muted {
			// Janus sends no stopped-talking for a member who mutes.
			mb.Talking = false
		}
	})
	if old.Muted != p.Muted {
		kind := MemberUnmuted
		if p.Muted {
			kind = MemberMuted
		}
		r.emitMember(kind, user, nil)
	}
	if p.Setup && !old.Setup && m.connected {
		r.updateView(user, func(mb *Member) { mb.Connected = true })
		r.emitMember(MemberConnected, user, nil)
	}
}

func (m *janusMixer) removeMember(r *Room, id uint64, reason Reason) {
	if _, ok := m.members[id]; !ok {
		return
	}
	delete(m.members, id)
	user := janusUser(id)
	r.mu.Lock()
	last := Member{User: user, Level: media.SilenceDBov}
	if v := r.view[user]; v != nil {
		last = v.Member
		last.Connected, last.Talking, last.Level = false, false, media.SilenceDBov
		delete(r.view, user)
	}
	last.Volume = r.volumeLocked(user)
	r.mu.Unlock()
	r.emit(RoomEvent{Kind: MemberLeft, Member: last, Reason: reason})
}

// resync reports what changed in the room while the API connection was
// down (Janus's events of that time are lost).
func (m *janusMixer) resync(r *Room, now []janus.Participant) {
	seen := make(map[uint64]bool, len(now))
	for _, p := range now {
		seen[p.ID] = true
	}
	for id := range m.members {
		if !seen[id] {
			m.removeMember(r, id, ReasonGone)
		}
	}
	for _, p := range now {
		m.addMember(r, p) // updates a known member
	}
}

func (m *janusMixer) peerState(r *Room, st webrtc.PeerConnectionState) {
	if st != webrtc.PeerConnectionStateConnected || m.connected {
		return
	}
	m.connected = true
	for id, p := range m.members {
		if p.Setup {
			user := janusUser(id)
			r.updateView(user, func(mb *Member) { mb.Connected = true })
			r.emitMember(MemberConnected, user, nil)
		}
	}
}

// iceState reports the mixer's link going and coming back as every
// member's (they are all heard through it).
func (m *janusMixer) iceState(r *Room, st webrtc.ICEConnectionState) {
	if !m.connected {
		return
	}
	var kind RoomEventKind
	switch st {
	case webrtc.ICEConnectionStateDisconnected, webrtc.ICEConnectionStateFailed:
		if m.reconnect {
			return
		}
		m.reconnect, kind = true, MemberReconnecting
	case webrtc.ICEConnectionStateConnected, webrtc.ICEConnectionStateCompleted:
		if !m.reconnect {
			return
		}
		m.reconnect, kind = false, MemberReconnected
	default:
		return
	}
	for id, p := range m.members {
		if p.Setup {
			user := janusUser(id)
			r.updateView(user, func(mb *Member) { mb.Connected = kind == MemberReconnected })
			r.emitMember(kind, user, nil)
		}
	}
}

// close ends the Janus link when the room ends: the PeerConnection closes
// off the actor, and the worker destroys the session (which leaves the
// room) after any request still queued; release waits for both.
func (m *janusMixer) close(r *Room) {
	m.cancel()
	m.in.recv.Store(nil)
	if s := m.s; s != nil {
		m.s = nil
		r.closers.Add(1)
		go func() {
			defer r.closers.Done()
			s.close(r.log)
		}()
	}
	m.work.Close()
	r.closers.Add(1)
	go func() {
		defer r.closers.Done()
		m.wg.Wait()
	}()
}
