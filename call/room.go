package call

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/dialtone-dev/dialtone/internal/mailbox"
	"github.com/dialtone-dev/dialtone/media"
	"github.com/dialtone-dev/dialtone/media/apm"
	"github.com/dialtone-dev/dialtone/negotiation"
	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/pion/webrtc/v4"
)

// RoomConfig configures one membership of a room (Phone.Join).
type RoomConfig struct {
	// DisplayName is the name the other members see (default
	// Config.DisplayName). At most signaling.MaxDisplayNameLength bytes,
	// no control characters.
	DisplayName string
	// Muted joins with the microphone muted (see Room.Mute).
	Muted bool
}

// Room is this phone's membership of a group call: every member hears
// every other. It is an actor like Call: one goroutine owns its state, and
// the room's signaling messages, the peer connections' callbacks, timers
// and the methods below become events on its inbox, handled in order.
// Methods are safe for concurrent use.
//
// The media is a mesh: one PeerConnection per other member. The
// microphone is encoded once per frame and codec in use, and the same
// packets go to every member of that codec; each member's audio has its
// own jitter buffer and decoder, and the playback device plays the mix.
type Room struct {
	name  string
	phone *Phone
	cfg   Config
	rcfg  RoomConfig
	log   *slog.Logger

	inbox     *mailbox.Mailbox[input]
	events    *mailbox.Mailbox[RoomEvent]
	subscribe sync.Once
	done      chan struct{} // closed when ended and every resource is released
	stopped   chan struct{} // closed when the actor goroutine has returned

	mu      sync.Mutex // guards the snapshot below
	view    map[string]*memberView
	volumes map[string]float64
	muted   bool
	ended   bool
	reason  Reason
	err     error

	// Owned by the actor goroutine.
	roster    *signaling.Roster
	joinReq   *request // Join's, until the member list or a refusal
	joined    bool     // the server confirmed the membership
	rejoining bool     // a join after a signaling reconnect is out
	down      bool     // the signaling connection is down
	peers     map[string]*roomPeer
	early     map[string][]signaling.RoomSignal // room-signals before their member
	audio     *roomAudio
	track     *media.Track
	sender    *media.Sender
	timers    map[timerKind]*time.Timer
	closers   sync.WaitGroup  // peer connections being closed
	handOver  context.Context // ended: HandleSignal queues the signal and returns at once
	// mixer is the link to a Janus AudioBridge (Phone.JoinJanus), nil in
	// a mesh room. Set before start.
	mixer *janusMixer
}

// memberView is what Members shows of a member, kept by the actor.
type memberView struct {
	Member
	session uint64
	in      *mixInput // nil until its peer exists
}

// Join joins room name (created by the first join) and returns once the
// server has confirmed the membership; the media with each member is set
// up afterwards (MemberConnected). ctx bounds the join only.
//
// Join fails with ErrBadRoom for a name signaling.ValidRoom refuses,
// ErrNoRooms when the server speaks protocol version 1, ErrBusy while the
// phone has a live call and ErrInRoom while it is in a room (this or
// another), and with the server's refusals: ErrRoomFull, ErrForbidden,
// ErrUnknownRoom, ErrInRoom (the user is in another room elsewhere),
// ErrUnavailable.
func (p *Phone) Join(ctx context.Context, name string, cfg RoomConfig) (*Room, error) {
	if !signaling.ValidRoom(name) {
		return nil, fmt.Errorf("call: join %q: %w", name, ErrBadRoom)
	}
	if v := p.tr.Ready().Protocol; v < 2 {
		return nil, fmt.Errorf("call: join %s: %w (protocol %d)", name, ErrNoRooms, v)
	}
	return p.joinRoom(ctx, name, cfg, nil)
}

// joinRoom makes this phone a member of room name, carried by mixer (nil:
// a mesh over the signaling server): the checks every room shares (display
// name, busy policy), then the room's actor, which answers once it is in
// or refused.
func (p *Phone) joinRoom(ctx context.Context, name string, cfg RoomConfig, mixer *janusMixer) (*Room, error) {
	if cfg.DisplayName == "" {
		cfg.DisplayName = p.cfg.DisplayName
	}
	if !signaling.ValidDisplayName(cfg.DisplayName) {
		return nil, fmt.Errorf("call: join %s: display name: %w", name, ErrBadRoom)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	if live := p.liveLocked(); live != nil {
		p.mu.Unlock()
		return nil, fmt.Errorf("call: join %s: %w (call %s is %s)", name, ErrBusy, live.id, live.State())
	}
	if p.room != nil {
		other := p.room.name
		p.mu.Unlock()
		return nil, fmt.Errorf("call: join %s: %w (%s)", name, ErrInRoom, other)
	}
	r := newRoom(p, name, cfg)
	r.mixer = mixer
	p.room = r
	r.start()
	p.mu.Unlock()

	// The actor answers once the room has (the member list, or a
	// refusal), or the room ended first (Phone.Close).
	if err := r.ask(ctx, func(q *request) input { return cmdJoin{q} }); err != nil {
		r.post(cmdLeave{})
		<-r.done
		return nil, err
	}
	return r, nil
}

func newRoom(p *Phone, name string, cfg RoomConfig) *Room {
	handOver, cancel := context.WithCancel(context.Background())
	cancel()
	return &Room{
		handOver: handOver,
		name:     name,
		phone:    p,
		cfg:      p.cfg,
		rcfg:     cfg,
		log:      p.log.With("room", name),
		inbox:    mailbox.New[input](),
		events:   mailbox.New[RoomEvent](),
		done:     make(chan struct{}),
		stopped:  make(chan struct{}),
		view:     make(map[string]*memberView),
		volumes:  make(map[string]float64),
		muted:    cfg.Muted,
		roster:   signaling.NewRoster(name, p.User()),
		peers:    make(map[string]*roomPeer),
		early:    make(map[string][]signaling.RoomSignal),
		timers:   make(map[timerKind]*time.Timer),
	}
}

// Name is the room's name.
func (r *Room) Name() string { return r.name }

// Members returns the other members, in joining order.
func (r *Room) Members() []Member {
	r.mu.Lock()
	views := make([]*memberView, 0, len(r.view))
	for _, v := range r.view {
		views = append(views, v)
	}
	r.mu.Unlock()
	slices.SortFunc(views, func(a, b *memberView) int { return cmp.Compare(a.session, b.session) })
	out := make([]Member, 0, len(views))
	for _, v := range views {
		out = append(out, r.member(v))
	}
	return out
}

// member is v's Member with its live level and volume.
func (r *Room) member(v *memberView) Member {
	r.mu.Lock()
	m, in := v.Member, v.in
	m.Volume = r.volumeLocked(m.User)
	r.mu.Unlock()
	m.Level = media.SilenceDBov
	if in != nil {
		if rc := in.recv.Load(); rc != nil {
			m.Level = rc.Level()
		}
	}
	return m
}

func (r *Room) volumeLocked(user string) float64 {
	if g, ok := r.volumes[user]; ok {
		return g
	}
	return 1
}

// Events delivers every event of the room, in order, from Join on,
// however late the first read or slow the reader; RoomEnded is the last,
// and the channel is closed after it once the room has released its
// resources (Done). Like Call.Events, once called it should be read to
// the end; Phone.Close releases what a reader left behind.
func (r *Room) Events() <-chan RoomEvent {
	r.subscribe.Do(func() { r.phone.watchEvents(r.events) })
	return r.events.Out()
}

// Done is closed when the room has ended and released its audio devices
// and peer connections.
func (r *Room) Done() <-chan struct{} { return r.done }

// Reason is why the room ended, or "" while it has not.
func (r *Room) Reason() Reason {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reason
}

// Err is the error behind a failed end, else nil.
func (r *Room) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Muted reports whether our microphone is muted.
func (r *Room) Muted() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.muted
}

// Mute stops (true) or resumes (false) sending our microphone to every
// member, and tells the server, which tells the members (MemberMuted).
// While muted the members hear silence and RTP timestamps keep running.
func (r *Room) Mute(on bool) {
	r.mu.Lock()
	r.muted = on
	r.mu.Unlock()
	r.post(cmdMute{on: on})
}

// SetProcessing switches the parts of the microphone's processing (echo
// cancellation, noise suppression, gain control, high-pass filter) for the
// rest of the membership, from the next frame; see Config.Processing.
func (r *Room) SetProcessing(cfg apm.Config) {
	r.post(cmdProcess{cfg: cfg})
}

// SetVolume sets the gain user's audio is mixed with (1: as received, 0:
// silent, 2: twice as loud, clipped). It holds for the member's whole
// membership, and is kept for a member who has not joined yet.
func (r *Room) SetVolume(user string, gain float64) {
	gain = max(0, gain)
	r.mu.Lock()
	r.volumes[user] = gain
	var in *mixInput
	if v := r.view[user]; v != nil {
		in = v.in
	}
	r.mu.Unlock()
	if in != nil {
		in.setGain(gain)
	}
}

// SendText sends text to every member on the peer connections' data
// channels. A member whose channel is not open yet (it is still
// connecting) gets it once it opens. It fails with ErrEnded once the room
// has ended.
func (r *Room) SendText(ctx context.Context, text string) error {
	return r.ask(ctx, func(q *request) input { return cmdText{text: text, request: q} })
}

// Leave leaves the room: the server and the members are told, every peer
// connection is closed and the devices released. It returns once that is
// done (Done), or when ctx ends first (the leave goes on).
func (r *Room) Leave(ctx context.Context) error {
	r.post(cmdLeave{})
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Room) post(in input) { r.inbox.Put(in) }

// ask posts a command and waits for its result, or for ctx.
func (r *Room) ask(ctx context.Context, mk func(*request) input) error {
	return ask(ctx, r.inbox, r.stopped, mk)
}

func (r *Room) isEnded() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ended
}

func (r *Room) start() {
	r.phone.actors.Add(1)
	go func() {
		defer r.phone.actors.Done()
		defer close(r.stopped)
		defer r.inbox.Abandon()
		for in := range r.inbox.Out() {
			r.handle(in)
			if r.isEnded() {
				r.release()
				return
			}
		}
	}()
}

// abandon releases the event queue when the phone closes and nobody reads.
func (r *Room) abandon() {
	r.events.Abandon()
	r.inbox.Abandon()
}

// The actor's inputs, besides cmdMute, cmdText, evMessage, evSignaling
// and evTimer shared with Call.
type (
	cmdJoin  struct{ *request }
	cmdLeave struct{}

	// Events of one peer connection carry the member's user and session
	// and the pair's attempt: a late one from a closed peer connection is
	// ignored.
	evMemberPeer struct {
		user    string
		session uint64
		attempt uint32
	}
	evRoomPeerState struct {
		evMemberPeer
		state webrtc.PeerConnectionState
	}
	evRoomICEState struct {
		evMemberPeer
		state webrtc.ICEConnectionState
	}
	evRoomNegFailed struct {
		evMemberPeer
		err error
	}
	evRoomTalking struct {
		evMemberPeer
		on    bool
		level float64
	}
	evRoomText struct {
		evMemberPeer
		text string
	}
	evRoomTextOpen    struct{ evMemberPeer }
	evRoomPeerTimeout struct{ evMemberPeer }
	evRoomPeerRetry   struct{ evMemberPeer }
	evRoomLoss        struct {
		evMemberPeer
		pct int
	}
)

func (r *Room) handle(in input) {
	if r.mixer != nil && r.handleJanus(in) {
		return
	}
	switch in := in.(type) {
	case cmdJoin:
		r.join(in.request)
	case cmdLeave:
		r.leave()
	case cmdProcess:
		r.cfg.Processing = &in.cfg
		if r.audio != nil {
			if err := r.audio.proc.SetConfig(in.cfg); err != nil {
				r.log.Warn("audio processing", "err", err)
			}
		}
	case cmdMute:
		if r.sender != nil {
			r.sender.SetMuted(in.on)
		}
		// After a join still unanswered too: the server handles our
		// messages in order, so the mute follows the membership.
		if r.joined || r.joinReq != nil {
			r.send(signaling.TypeMute, "", signaling.Mute{Muted: in.on})
		}
	case cmdText:
		in.do(func() error { return r.sendText(in.text) })
	case cmdRecord:
		in.do(func() error { return r.record(in.rec) })
	case cmdStopRecord:
		r.stopRecording(in.rec)
	case evMessage:
		r.onMessage(in.m)
	case evSignaling:
		r.onSignaling(in.status)
	case evTimer:
		r.onTimer(in.kind)
	case evRoomPeerState:
		r.onPeerState(in.evMemberPeer, in.state)
	case evRoomICEState:
		r.onICEState(in.evMemberPeer, in.state)
	case evRoomNegFailed:
		if p := r.peer(in.evMemberPeer); p != nil {
			r.peerFailed(p, in.err)
		}
	case evRoomPeerTimeout:
		if p := r.peer(in.evMemberPeer); p != nil && !p.connected && p.s != nil {
			r.peerFailed(p, fmt.Errorf("call: no media with %s within %v", p.member.User, r.cfg.ConnectTimeout))
		}
	case evRoomPeerRetry:
		if p := r.peer(in.evMemberPeer); p != nil && p.s == nil && !r.isEnded() {
			r.startOver(p, p.attempt+1)
		}
	case evRoomTalking:
		if r.peer(in.evMemberPeer) != nil {
			r.updateView(in.user, func(m *Member) { m.Talking = in.on })
			kind := MemberStoppedTalking
			if in.on {
				kind = MemberTalking
			}
			r.emitMember(kind, in.user, func(e *RoomEvent) { e.Level = in.level })
		}
	case evRoomText:
		if r.peer(in.evMemberPeer) != nil {
			r.emitMember(MemberText, in.user, func(e *RoomEvent) { e.Text = in.text })
		}
	case evRoomTextOpen:
		if p := r.peer(in.evMemberPeer); p != nil {
			r.flushText(p)
		}
	case evRoomLoss:
		if p := r.peer(in.evMemberPeer); p != nil {
			p.loss = in.pct
			r.reportLoss(p)
		}
	}
}

// peerFailed gives up on the peer connection with a member, which stays
// in the room unheard until the pair starts over: the offerer of the pair
// makes a new peer connection after a pause (pairRetryDelay), and the
// other side follows when its first signal comes (onRoomSignal).
func (r *Room) peerFailed(p *roomPeer, err error) {
	r.log.Warn("peer connection failed", "member", p.member.User, "attempt", p.attempt, "err", err)
	r.closePeer(p)
	p.failures++
	r.updateView(p.member.User, func(m *Member) { m.Connected, m.Talking = false, false })
	r.emitMember(MemberFailed, p.member.User, func(e *RoomEvent) { e.Err = err })
	if p.offerer {
		id := evMemberPeer{user: p.member.User, session: p.member.Session, attempt: p.attempt}
		p.retryTimer = time.AfterFunc(pairRetryDelay(p.failures), func() { r.inbox.Put(evRoomPeerRetry{id}) })
	}
}

// startOver replaces the pair's peer connection with member p by a new
// one, attempt attempt.
func (r *Room) startOver(p *roomPeer, attempt uint32) {
	live := p.s != nil && p.connected
	r.closePeer(p)
	np, err := r.newPeer(p.member, attempt, p.in)
	if err != nil {
		r.log.Warn("cannot set up the peer connection", "member", p.member.User, "err", err)
		p.attempt = attempt // its signals are not for the one that failed
		r.peerFailed(p, err)
		return
	}
	np.failures, np.texts, np.loss = p.failures, p.texts, p.loss
	r.peers[p.member.User] = np
	r.log.Info("peer connection started over", "member", p.member.User, "attempt", attempt)
	if live {
		// The far side gave up on a peer connection that still worked
		// here (or that was restarting ICE: MemberReconnecting is out).
		np.reconnecting = true
		if !p.reconnecting {
			r.updateView(p.member.User, func(m *Member) { m.Connected = false })
			r.emitMember(MemberReconnecting, p.member.User, nil)
		}
	}
}

// join builds the send path and asks the server (a Janus room: the
// mixer) to let us in.
func (r *Room) join(req *request) {
	if r.isEnded() {
		req.do(func() error { return ErrEnded })
		return
	}
	if err := r.openSender(); err != nil {
		req.do(func() error { return err })
		r.end(ReasonError, err)
		return
	}
	r.joinReq = req
	if r.mixer != nil {
		r.mixer.join(r)
		return
	}
	r.phone.askRelay()
	r.sendJoin()
	r.arm(timerConnect, r.cfg.ConnectTimeout)
	// While the server answers: the peer connections need it as soon as
	// the member list arrives.
	if _, err := r.phone.roomCertificate(); err != nil {
		r.log.Warn("no DTLS certificate yet", "err", err)
	}
}

func (r *Room) sendJoin() {
	r.send(signaling.TypeJoin, "", signaling.Join{DisplayName: r.rcfg.DisplayName, Muted: r.Muted()})
}

func (r *Room) leave() {
	if r.isEnded() {
		return
	}
	// Sent even before the member list came back: the server handles our
	// messages in order, so this leave follows the join it may have
	// accepted.
	r.send(signaling.TypeLeave, "", nil)
	r.end(ReasonLeft, nil)
}

func (r *Room) onSignaling(st signaling.Status) {
	switch st.State {
	case signaling.StateDown:
		r.down = true
		if r.joined {
			r.emit(RoomEvent{Kind: RoomReconnecting})
		}
	case signaling.StateUp:
		if !r.down {
			return
		}
		r.down = false
		if r.joined || r.joinReq != nil {
			// Take the membership back (within the server's grace the
			// members and our peer connections carry on); the roster holds
			// the events that beat the member list.
			r.roster.Rejoin()
			r.rejoining = r.joined
			r.sendJoin()
		}
	case signaling.StateClosed:
		reason := ReasonSignalingLost
		if errors.Is(st.Err, signaling.ErrUnauthorized) {
			reason = ReasonUnauthorized
		}
		err := st.Err
		if err == nil {
			err = signaling.ErrClosed
		}
		r.failJoin(fmt.Errorf("call: join %s: %w", r.name, err))
		r.end(reason, st.Err)
	}
}

func (r *Room) onTimer(k timerKind) {
	if r.timers[k] == nil {
		return
	}
	delete(r.timers, k)
	switch k {
	case timerConnect:
		if !r.joined {
			err := fmt.Errorf("call: join %s: no answer from the server within %v", r.name, r.cfg.ConnectTimeout)
			r.failJoin(err)
			r.end(ReasonConnectTimeout, err)
		}
	case timerStats:
		r.sampleStats()
		r.arm(timerStats, r.cfg.StatsInterval)
	case timerRelay:
		r.phone.askRelay() // the answer arms the next refresh (onRelayConfig)
	}
}

// failJoin answers a Join still waiting with err.
func (r *Room) failJoin(err error) {
	if r.joinReq != nil {
		r.joinReq.do(func() error { return err })
		r.joinReq = nil
	}
}

func (r *Room) onMessage(m signaling.Message) {
	if r.isEnded() {
		return
	}
	switch m.Type {
	case signaling.TypeMembers, signaling.TypeMemberJoined, signaling.TypeMemberLeft, signaling.TypeMemberUpdated:
		r.onRoster(m)
	case signaling.TypeRoomSignal:
		r.onRoomSignal(m)
	case signaling.TypeError:
		r.onError(m)
	case signaling.TypeReady, signaling.TypeRelayConfig:
		r.onRelayConfig()
	}
}

func (r *Room) onRoster(m signaling.Message) {
	changes, err := r.roster.Apply(m)
	if err != nil {
		r.log.Warn("bad room message ignored", "type", m.Type, "err", err)
		return
	}
	first := m.Type == signaling.TypeMembers && !r.joined
	if m.Type == signaling.TypeMembers {
		r.disarm(timerConnect)
		r.joined = true
	}
	for _, ch := range changes {
		if ch.Member.User == r.phone.User() {
			if ch.Type == signaling.TypeMemberLeft {
				// The server removed us (past its grace).
				r.end(ReasonGone, nil)
				return
			}
			continue
		}
		switch ch.Type {
		case signaling.TypeMemberJoined:
			r.memberJoined(ch.Member)
		case signaling.TypeMemberLeft:
			r.memberLeft(ch.Member, ch.Reason)
		case signaling.TypeMemberUpdated:
			r.memberUpdated(ch.Member)
		}
	}
	if first {
		// The devices open once the peer connections are under way: a
		// refused join never touches them, and opening them does not
		// delay the offers.
		if err := r.openAudio(); err != nil {
			r.send(signaling.TypeLeave, "", nil)
			r.failJoin(err)
			r.end(ReasonError, err)
			return
		}
		r.arm(timerStats, r.cfg.StatsInterval)
		r.armRelayRefresh()
	}
	if m.Type == signaling.TypeMembers {
		if r.joinReq != nil {
			req := r.joinReq
			r.joinReq = nil
			req.do(func() error { return nil })
			if req.withdrawn() {
				// Join's caller gave up and leaves.
				return
			}
		}
		if r.rejoining {
			r.rejoining = false
			r.emit(RoomEvent{Kind: RoomReconnected})
		}
	}
}

func (r *Room) memberJoined(m signaling.Member) {
	if old := r.peers[m.User]; old != nil {
		// A new membership of a member whose leave we never saw.
		delete(r.peers, m.User)
		r.closePeer(old)
	}
	r.mu.Lock()
	v := &memberView{Member: Member{User: m.User, DisplayName: m.DisplayName, Muted: m.Muted}, session: m.Session}
	r.view[m.User] = v
	r.mu.Unlock()
	r.emitMember(MemberJoined, m.User, nil)
	p, err := r.newPeer(m, 0, nil)
	if err != nil {
		r.log.Warn("cannot set up the peer connection", "member", m.User, "err", err)
		r.emitMember(MemberFailed, m.User, func(e *RoomEvent) { e.Err = err })
		return
	}
	r.peers[m.User] = p
	r.mu.Lock()
	v.in = p.in
	r.mu.Unlock()
	r.mixInputsChanged()
	held := r.early[m.User]
	delete(r.early, m.User)
	for _, rs := range held {
		if rs.Session == m.Session {
			r.routeSignal(r.peers[m.User], rs)
		}
	}
}

func (r *Room) memberLeft(m signaling.Member, why string) {
	delete(r.early, m.User)
	if p := r.peers[m.User]; p != nil && p.member.Session == m.Session {
		delete(r.peers, m.User)
		r.closePeer(p)
		r.mixInputsChanged()
	}
	last := Member{User: m.User, DisplayName: m.DisplayName, Muted: m.Muted, Level: media.SilenceDBov}
	r.mu.Lock()
	if v := r.view[m.User]; v != nil && v.session == m.Session {
		last = v.Member
		last.Connected, last.Talking = false, false
		delete(r.view, m.User)
	}
	last.Volume = r.volumeLocked(m.User)
	r.mu.Unlock()
	reason := Reason(why)
	if reason == "" {
		reason = ReasonGone // it left while our own membership was lost
	}
	r.emit(RoomEvent{Kind: MemberLeft, Member: last, Reason: reason})
}

func (r *Room) memberUpdated(m signaling.Member) {
	var was bool
	r.updateView(m.User, func(v *Member) {
		was = v.Muted
		v.Muted, v.DisplayName = m.Muted, m.DisplayName
	})
	if was != m.Muted {
		kind := MemberUnmuted
		if m.Muted {
			kind = MemberMuted
		}
		r.emitMember(kind, m.User, nil)
	}
}

func (r *Room) onRoomSignal(m signaling.Message) {
	var rs signaling.RoomSignal
	if err := m.Unmarshal(&rs); err != nil {
		r.log.Warn("bad room-signal ignored", "from", m.From, "err", err)
		return
	}
	if m.From == "" || rs.PeerSession != r.roster.Session() {
		// For an earlier membership of ours (or before our member list).
		return
	}
	p := r.peers[m.From]
	if p == nil || p.member.Session != rs.Session {
		if known, ok := r.roster.Member(m.From); ok && known.Session == rs.Session {
			return // its peer connection failed: nothing to apply it to
		}
		// The member-joined that names this session has not arrived yet
		// (it may travel through another server node).
		q, held := r.early[m.From]
		if len(q) < maxEarlySignals && (held || len(r.early) < maxEarlySignals) {
			r.early[m.From] = append(q, rs)
		}
		return
	}
	r.routeSignal(p, rs)
}

// routeSignal applies a signal of the pair with p's member to the peer
// connection of its attempt: one of an earlier attempt is dropped, one of
// a later attempt starts the pair over first.
func (r *Room) routeSignal(p *roomPeer, rs signaling.RoomSignal) {
	switch {
	case rs.Attempt < p.attempt:
		return
	case rs.Attempt > p.attempt:
		if r.isEnded() {
			return
		}
		r.startOver(p, rs.Attempt)
		p = r.peers[p.member.User]
	}
	r.applySignal(p, rs)
}

// maxEarlySignals bounds the room-signals held per user before its
// member-joined (an offer and its trickled candidates), and the users
// they are held for.
const maxEarlySignals = 64

func (r *Room) applySignal(p *roomPeer, rs signaling.RoomSignal) {
	if p.s == nil {
		return
	}
	var sig negotiation.Signal
	if err := json.Unmarshal(rs.Signal, &sig); err != nil {
		r.log.Warn("bad room-signal ignored", "from", p.member.User, "err", err)
		return
	}
	// Handed over without waiting: the negotiator applies its signals in
	// order whatever the context, and one member's SetRemoteDescription
	// must not hold up the signals of the others, whose set-ups run in
	// parallel when we join.
	if err := p.s.neg.HandleSignal(r.handOver, sig); err != nil && !errors.Is(err, context.Canceled) {
		r.log.Debug("room signal not applied", "from", p.member.User, "err", err)
	}
}

func (r *Room) onError(m signaling.Message) {
	var e signaling.Error
	_ = m.Unmarshal(&e)
	if e.Code == signaling.CodeRateLimited {
		r.log.Info("server delayed a room message (rate limit)", "rejected", e.Rejected)
		return
	}
	if e.Rejected != signaling.TypeJoin {
		// A mute or room-signal refused (not-member, peer-not-member): the
		// roster's events follow and settle it.
		r.log.Info("server refused a room message", "code", e.Code, "rejected", e.Rejected, "msg", e.Message)
		return
	}
	err := fmt.Errorf("call: join %s: %w", r.name, e)
	if s := joinError(e.Code); s != nil {
		err = fmt.Errorf("call: join %s: %w: %w", r.name, s, e)
	}
	r.failJoin(err)
	r.end(ReasonError, err)
}

// joinError is the sentinel error for the server's refusal of a join.
func joinError(code string) error {
	switch code {
	case signaling.CodeRoomFull:
		return ErrRoomFull
	case signaling.CodeForbidden:
		return ErrForbidden
	case signaling.CodeUnknownRoom:
		return ErrUnknownRoom
	case signaling.CodeInRoom:
		return ErrInRoom
	case signaling.CodeBadRoom, signaling.CodeMalformed:
		return ErrBadRoom
	case signaling.CodeUnavailable:
		return ErrUnavailable
	}
	return nil
}

// send queues a room message (to a member, or to the server when to is "").
func (r *Room) send(t signaling.Type, to string, data any) {
	m, err := signaling.NewMessage(t, to, r.name, data)
	if err != nil {
		r.log.Error("cannot encode message", "type", t, "err", err)
		return
	}
	r.phone.post(m)
}

// peer returns the peer of an event, if it is still the member's current
// one.
func (r *Room) peer(id evMemberPeer) *roomPeer {
	p := r.peers[id.user]
	if p == nil || p.member.Session != id.session || p.attempt != id.attempt {
		return nil
	}
	return p
}

func (r *Room) updateView(user string, f func(*Member)) {
	r.mu.Lock()
	if v := r.view[user]; v != nil {
		f(&v.Member)
	}
	r.mu.Unlock()
}

// emitMember emits an event about user's current state.
func (r *Room) emitMember(kind RoomEventKind, user string, f func(*RoomEvent)) {
	r.mu.Lock()
	v := r.view[user]
	r.mu.Unlock()
	e := RoomEvent{Kind: kind}
	if v != nil {
		e.Member = r.member(v)
	} else {
		e.Member = Member{User: user, Level: media.SilenceDBov, Volume: 1}
	}
	if f != nil {
		f(&e)
	}
	r.emit(e)
}

// emit queues e for Events. Nothing follows RoomEnded.
func (r *Room) emit(e RoomEvent) {
	if e.Kind != RoomEnded && r.isEnded() {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	r.events.Put(e)
}

// end ends the room with reason; the first reason wins. The actor then
// releases everything (release).
func (r *Room) end(reason Reason, err error) {
	r.mu.Lock()
	if r.ended {
		r.mu.Unlock()
		return
	}
	r.ended, r.reason, r.err = true, reason, err
	r.mu.Unlock()
	r.log.Info("room ended", "reason", reason, "err", err)
	for k := range r.timers {
		r.disarm(k)
	}
	r.failJoin(ErrEnded)
	r.stopRecording(nil)
	r.events.Put(RoomEvent{Kind: RoomEnded, Time: time.Now(), Reason: reason, Err: err})
	r.phone.forgetRoom(r)
	for user, p := range r.peers {
		delete(r.peers, user)
		r.closePeer(p)
	}
	if r.mixer != nil {
		r.mixer.close(r)
	}
	r.mixInputsChanged()
}

// release frees what is still held once the room has ended: the peer
// connections being closed, the sender, the devices.
func (r *Room) release() {
	r.closers.Wait()
	if r.sender != nil {
		_ = r.sender.Close()
	}
	if a := r.audio; a != nil {
		r.audio = nil
		a.sender.Store(nil)
		a.inputs.Store(nil)
		if err := a.dev.Close(); err != nil {
			r.log.Debug("closing audio", "err", err)
		}
		a.proc.Close()
	}
	r.events.Close()
	close(r.done)
}

func (r *Room) arm(k timerKind, d time.Duration) {
	r.disarm(k)
	if d <= 0 {
		return
	}
	r.timers[k] = time.AfterFunc(d, func() { r.inbox.Put(evTimer{kind: k}) })
}

func (r *Room) disarm(k timerKind) {
	if t := r.timers[k]; t != nil {
		t.Stop()
		delete(r.timers, k)
	}
}

// forgetRoom removes an ended room: its later messages are ignored and
// the phone may dial or join again.
func (p *Phone) forgetRoom(r *Room) {
	p.mu.Lock()
	if p.room == r {
		p.room = nil
	}
	p.mu.Unlock()
}

// roomMessage reports whether m belongs to the phone's room, and hands it
// over if so: the room messages (their `call` is the room's name) and the
// server's refusals of them.
func (p *Phone) roomMessage(m signaling.Message) bool {
	switch m.Type {
	case signaling.TypeMembers, signaling.TypeMemberJoined, signaling.TypeMemberLeft,
		signaling.TypeMemberUpdated, signaling.TypeRoomSignal:
	case signaling.TypeError:
		var e signaling.Error
		if m.Unmarshal(&e) != nil {
			return false
		}
		switch e.Rejected {
		case signaling.TypeJoin, signaling.TypeLeave, signaling.TypeMute, signaling.TypeRoomSignal:
		default:
			return false
		}
	default:
		return false
	}
	p.mu.Lock()
	r := p.room
	p.mu.Unlock()
	if r == nil || r.name != m.Call {
		p.log.Debug("message for a room we are not in ignored", "type", m.Type, "room", m.Call, "from", m.From)
		return true
	}
	r.post(evMessage{m})
	return true
}

// jsonSignal encodes a negotiation signal for RoomSignal.Signal.
func jsonSignal(sig negotiation.Signal) (json.RawMessage, error) { return json.Marshal(sig) }
