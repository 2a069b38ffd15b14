package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dialtone-dev/dialtone/signaling"
)

// hub is the routing core: who is connected, what is pending for whom.
// A mutex guards it; critical sections only touch maps and do non-blocking
// channel sends. Calls out (push hooks) happen on their own goroutines.
type hub struct {
	srv *Server
	cfg *Config
	log *slog.Logger
	now func() time.Time

	ctx    context.Context // cancelled by Close: stops push calls
	cancel context.CancelFunc
	conns  sync.WaitGroup // attached conns until their carrier released them
	pushes sync.WaitGroup

	mu        sync.Mutex
	closing   bool
	nextID    uint64
	users     map[string]*conn
	live      map[*conn]struct{} // every attached conn, replaced ones too, until released
	pending   map[string][]*pendingCall
	attaching map[string]int // users whose connection is being attached (claimed, not yet live)
	lastSweep time.Time
	stats     Stats

	metrics *metrics
	bufs    bufPool
	limits  *limits

	// Rooms (see room.go): the store, the memberships of this node's
	// users (guarded by mu) and the grace removals under way.
	rooms   roomStore
	members map[string]*localMember
	roomOps sync.WaitGroup

	// Cluster (nil broker: single node). See broker.go.
	broker    Broker
	node      string
	outbox    *outbox
	joined    chan struct{}  // closed once the broker accepted the node (at once without one)
	joining   sync.WaitGroup // the join loop
	joinErr   error          // guarded by mu: why the last join attempt failed
	leaveOnce sync.Once
}

// pendingCall holds the messages of one call for a user who is not connected.
type pendingCall struct {
	from, call string
	deadline   time.Time
	msgs       []signaling.Message
	waitingOK  bool // `waiting` already sent to the caller
}

func newHub(s *Server) *hub {
	ctx, cancel := context.WithCancel(context.Background())
	h := &hub{
		srv: s, cfg: &s.cfg, log: s.cfg.Logger, now: time.Now,
		ctx: ctx, cancel: cancel,
		users:     make(map[string]*conn),
		live:      make(map[*conn]struct{}),
		pending:   make(map[string][]*pendingCall),
		attaching: make(map[string]int),
		broker:    s.cfg.Broker,
		node:      s.cfg.NodeID,
		joined:    make(chan struct{}),
		members:   make(map[string]*localMember),
	}
	h.rooms = localRooms{newRoomTable()}
	if h.broker != nil {
		h.rooms = h.broker
	}
	h.metrics = newMetrics(h)
	h.limits = newLimits(h.cfg, time.Now)
	return h
}

func (h *hub) newConn(user string, kill func()) *conn {
	h.mu.Lock()
	h.nextID++
	id := h.nextID
	h.mu.Unlock()
	return &conn{
		id:   id,
		user: user,
		out:  make(chan *outMsg, h.cfg.SendQueue),
		bufs: &h.bufs,
		done: make(chan struct{}),
		kill: kill,
	}
}

// attach makes c the user's live conn: `ready` first, then whatever was
// pending for the user, in order. An older conn of the user is ended with
// "replaced". The carrier must call release(c) when it is done with c.
func (h *hub) attach(c *conn) error {
	ready, err := signaling.NewMessage(signaling.TypeReady, c.user, "", h.srv.ready(c.user))
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.attaching[c.user]++
	h.mu.Unlock()
	prev, err := h.claim(c)
	if err != nil {
		h.mu.Lock()
		h.attachedLocked(c.user)
		h.mu.Unlock()
		h.log.Warn("signaling: connection refused", "user", c.user, "err", err)
		return err
	}
	c.lim = h.limits.user(c.user)
	h.mu.Lock()
	h.attachedLocked(c.user)
	if h.closing {
		h.mu.Unlock()
		h.unclaim(c)
		h.limits.leave(c.user)
		return ErrServerClosed
	}
	old := h.users[c.user]
	h.users[c.user] = c
	h.live[c] = struct{}{}
	h.conns.Add(1)
	h.stats.Connects++
	c.enqueue(ready)
	flushed := h.flushLocked(c)
	h.mu.Unlock()
	h.announce(c, prev)
	h.watchExpiry(c)

	if old != nil {
		h.mu.Lock()
		h.stats.Replaced++
		h.mu.Unlock()
		h.metrics.errorInc(signaling.CodeReplaced)
		old.end(signaling.CodeReplaced, "another connection of this user took over")
		h.log.Info("signaling: connection replaced", "user", c.user, "old", old.id, "new", c.id)
	}
	h.log.Debug("signaling: attached", "user", c.user, "conn", c.id, "pending", flushed)
	return nil
}

// attachedLocked ends the attaching of a connection of user. Until then
// messages the cluster delivers for the user are held for it.
func (h *hub) attachedLocked(user string) {
	if h.attaching[user]--; h.attaching[user] <= 0 {
		delete(h.attaching, user)
	}
}

// flushLocked moves the user's pending messages into c's queue, dropping
// stale calls, and tells each caller `waiting` if not done yet.
func (h *hub) flushLocked(c *conn) int {
	calls := h.pending[c.user]
	delete(h.pending, c.user)
	now := h.now()
	n := 0
	for _, pc := range calls {
		if !now.Before(pc.deadline) {
			h.stats.Expired += uint64(len(pc.msgs))
			continue
		}
		for _, m := range pc.msgs {
			if !c.enqueue(m) {
				h.endSlowLocked(c)
				return n
			}
			n++
			h.stats.Delivered++
		}
		if !pc.waitingOK {
			pc.waitingOK = true
			h.notifyLocked(pc.from, signaling.TypeWaiting, c.user, pc.call, nil)
		}
	}
	return n
}

// detach removes c from routing and ends it quietly (if not ended yet).
func (h *hub) detach(c *conn) {
	h.mu.Lock()
	if h.users[c.user] == c {
		delete(h.users, c.user)
	}
	h.mu.Unlock()
	c.end("", "")
}

// release is called once by the carrier when it no longer uses c.
func (h *hub) release(c *conn) {
	h.detach(c)
	h.mu.Lock()
	_, ok := h.live[c]
	delete(h.live, c)
	h.watchGoneLocked(c)
	h.mu.Unlock()
	if ok {
		if c.expiry != nil {
			c.expiry.Stop()
		}
		h.unclaim(c)
		h.limits.leave(c.user)
		h.conns.Done()
	}
	if c.addr != "" {
		h.limits.done(c.addr)
	}
}

// handle processes one frame received on c, on c's reading goroutine. It
// blocks only to pace a user over its message rate (up to RateWait).
func (h *hub) handle(c *conn, raw []byte) {
	h.handleFrame(c, raw, nil)
}

// handleFrame is handle for a frame read into buf (raw is *buf), which it
// takes over: the decoded message's data points into buf, and buf goes back
// to the pool once the message has been written to its recipient.
//
// A message over the user's rate makes it wait (and with it the reading of
// the conn) up to RateWait; see limits.go.
func (h *hub) handleFrame(c *conn, raw []byte, buf *[]byte) {
	c.seq++
	if c.isDone() {
		h.bufs.put(buf)
		return
	}
	decode := signaling.Decode
	if buf != nil {
		decode = signaling.DecodeShared
	}
	m, err := decode(raw, h.cfg.MaxMessageSize)
	if err != nil {
		h.bufs.put(buf)
		code := signaling.CodeMalformed
		switch {
		case errors.Is(err, signaling.ErrTooLarge):
			code = signaling.CodeTooLarge
		case errors.Is(err, signaling.ErrMissingType):
			code = signaling.CodeMissingType
		case errors.Is(err, signaling.ErrUnknownType):
			code = signaling.CodeUnknownType
		}
		h.reject(c, m, code, err.Error())
		return
	}
	if !h.handleMessage(c, m, buf) {
		h.bufs.put(buf)
	}
}

// handleMessage acts on a decoded message; true when it took over buf.
func (h *hub) handleMessage(c *conn, m signaling.Message, buf *[]byte) bool {
	if m.Type.ServerOnly() {
		h.reject(c, m, signaling.CodeForbiddenType, fmt.Sprintf("%q is sent by the server only", m.Type))
		return false
	}
	m.From = c.user // never trust the client's from
	switch m.Type {
	case signaling.TypeJoin, signaling.TypeLeave, signaling.TypeMute:
		h.handleRoom(c, m)
		return false
	}
	if m.Type == signaling.TypeRelay {
		if !h.charge(c, m) {
			return false
		}
		rc, err := signaling.NewMessage(signaling.TypeRelayConfig, c.user, m.Call, h.srv.relayConfig(c.user))
		if err == nil {
			h.mu.Lock()
			h.sendLocked(c, rc)
			h.stats.Relay++
			h.mu.Unlock()
		}
		return false
	}
	switch {
	case m.To == "":
		h.reject(c, m, signaling.CodeMissingTo, "a "+string(m.Type)+" needs \"to\"")
		return false
	case m.Call == "":
		h.reject(c, m, signaling.CodeMissingCall, "a "+string(m.Type)+" needs \"call\"")
		return false
	case ValidateUser(m.To) != nil:
		h.reject(c, m, signaling.CodeBadRecipient, "\"to\" is not a valid user ID")
		return false
	}
	if m.Type == signaling.TypeRoomSignal {
		h.mu.Lock()
		ok := h.inRoomLocked(c.user, m.Call)
		h.mu.Unlock()
		if !ok {
			h.answer(c, m, signaling.CodeNotMember, "not a member of this room")
			return false
		}
	}
	if !h.charge(c, m) {
		return false
	}
	h.route(c, m, buf)
	return true
}

// route delivers m (already validated, from set) to its recipient or
// handles the recipient's absence. It takes over buf (m.Data may point
// into it; nil if not).
func (h *hub) route(c *conn, m signaling.Message, buf *[]byte) {
	h.mu.Lock()
	if dst := h.users[m.To]; dst != nil {
		if !h.roomPeerLocked(dst, m) {
			h.refusePeerLocked(m)
			h.mu.Unlock()
			h.bufs.put(buf)
			return
		}
		if !h.inboundOK(dst) {
			h.mu.Unlock()
			h.bufs.put(buf)
			h.rejectRate(c, m, "the recipient is receiving more than it may; message dropped")
			return
		}
		// With nothing queued for dst, write it from here: the message
		// cannot overtake an earlier one, and no writer has to be woken.
		if d := dst.direct; d != nil && dst.queued.Load() == 0 && d.claim() {
			h.routedLocked(c, dst, m)
			h.mu.Unlock()
			d.write(m)
			h.bufs.put(buf)
			return
		}
		if dst.enqueueBuf(m, buf) {
			h.routedLocked(c, dst, m)
			h.mu.Unlock()
			return
		}
		// Only a conn that ended meanwhile gets here (inboundOK keeps
		// room in the queue): handle the user as absent.
	}
	defer h.mu.Unlock()
	if h.broker != nil {
		h.routeRemoteLocked(m)
		return
	}
	h.absentLocked(c, m)
}

// routedLocked counts a message handed to its recipient's conn dst and
// answers an invite `waiting` (and gives dst the credits to answer it).
func (h *hub) routedLocked(c, dst *conn, m signaling.Message) {
	h.stats.Routed++
	h.metrics.routedInc(m.Type)
	if m.Type == signaling.TypeInvite {
		dst.lim.grant(m.From, m.Call)
		h.sendLocked(c, signaling.Message{Type: signaling.TypeWaiting, From: m.To, To: c.user, Call: m.Call})
	}
}

// reconnectHold is how long a message of a call is kept for a recipient
// connected nowhere, and delivered if it connects again (to any node of
// the cluster) meanwhile: a hang-up or an answer sent while the peer's
// connection is being re-established then arrives. Longer than a client's
// reconnection to another node after its own died.
const reconnectHold = 15 * time.Second

// absentLocked handles m for a recipient connected nowhere: keep it for a
// push (invite), a call already pending, or (another message of a call)
// reconnectHold, else answer an invite's sender (c, nil if it is gone)
// `offline` and drop anything else without a word:
// a present recipient does not answer a `hangup` either, so the answer
// must not tell who is online.
func (h *hub) absentLocked(c *conn, m signaling.Message) {
	now := h.now()
	h.sweepLocked(now)
	if h.cfg.Pusher != nil && m.Type == signaling.TypeInvite {
		if h.pendingCountLocked(m.To) >= h.cfg.MaxPending {
			h.stats.Offline++
			h.sendLocked(c, signaling.Message{Type: signaling.TypeOffline, From: m.To, To: m.From, Call: m.Call})
			return
		}
		pc := &pendingCall{from: m.From, call: m.Call, deadline: now.Add(h.cfg.PendingTTL), msgs: []signaling.Message{m}}
		h.pending[m.To] = append(h.pending[m.To], pc)
		h.stats.Pending++
		h.startPushLocked(m, pc)
		return
	}
	if pc := h.findPendingLocked(m.To, m.From, m.Call); pc != nil && now.Before(pc.deadline) {
		if h.pendingCountLocked(m.To) < h.cfg.MaxPending {
			pc.msgs = append(pc.msgs, m)
			h.stats.Pending++
		} else {
			h.stats.Dropped++
			h.log.Warn("signaling: pending queue full, message dropped", "user", m.To, "type", m.Type)
		}
		return
	}
	if m.Type != signaling.TypeInvite {
		h.holdLocked(m)
		return
	}
	h.stats.Offline++
	h.sendLocked(c, signaling.Message{Type: signaling.TypeOffline, From: m.To, To: m.From, Call: m.Call})
}

// holdLocked keeps m, a message of a call for a user connected nowhere
// (most likely reconnecting: its node restarting, its network changing),
// for reconnectHold. The sender was told `waiting` when the call began.
func (h *hub) holdLocked(m signaling.Message) {
	if m.Call == "" || !m.Type.Routed() {
		return
	}
	now := h.now()
	h.sweepLocked(now)
	if h.appendPendingLocked(m) { // joins the call's held messages
		return
	}
	if h.pendingCountLocked(m.To) >= h.cfg.MaxPending {
		h.stats.Dropped++
		return
	}
	pc := &pendingCall{from: m.From, call: m.Call, deadline: now.Add(reconnectHold), msgs: []signaling.Message{m}, waitingOK: true}
	h.pending[m.To] = append(h.pending[m.To], pc)
	h.stats.Pending++
}

func (h *hub) startPushLocked(m signaling.Message, pc *pendingCall) {
	var inv signaling.Invite
	_ = m.Unmarshal(&inv) // display info is best effort
	p := Push{User: m.To, From: m.From, Call: m.Call, Invite: inv, Expires: pc.deadline}
	h.pushes.Add(1)
	go func() {
		defer h.pushes.Done()
		ctx, cancel := context.WithTimeout(h.ctx, h.cfg.PushTimeout)
		err := h.cfg.Pusher.Push(ctx, p)
		cancel()
		h.mu.Lock()
		defer h.mu.Unlock()
		h.metrics.pushInc(err == nil)
		if err != nil {
			h.stats.PushFailed++
			h.log.Warn("signaling: push failed", "user", p.User, "call", p.Call, "err", err)
		} else {
			h.stats.PushOK++
		}
		if !h.removePendingLocked(p.User, pc, err != nil) {
			return // delivered or expired meanwhile: the push result no longer matters
		}
		if err != nil {
			h.notifyLocked(p.From, signaling.TypePushFailed, p.User, p.Call,
				signaling.Error{Code: signaling.CodePushFailed, Message: "could not wake the callee"})
			return
		}
		if !pc.waitingOK {
			pc.waitingOK = true
			h.notifyLocked(p.From, signaling.TypeWaiting, p.User, p.Call, nil)
		}
	}()
}

// removePendingLocked reports whether pc is still pending for user, and
// removes it if remove is set.
func (h *hub) removePendingLocked(user string, pc *pendingCall, remove bool) bool {
	calls := h.pending[user]
	for i, x := range calls {
		if x != pc {
			continue
		}
		if !h.now().Before(pc.deadline) {
			return false
		}
		if remove {
			calls = append(calls[:i:i], calls[i+1:]...)
			if len(calls) == 0 {
				delete(h.pending, user)
			} else {
				h.pending[user] = calls
			}
		}
		return true
	}
	return false
}

func (h *hub) findPendingLocked(user, from, call string) *pendingCall {
	calls := h.pending[user]
	for i := len(calls) - 1; i >= 0; i-- {
		if calls[i].from == from && calls[i].call == call {
			return calls[i]
		}
	}
	return nil
}

func (h *hub) pendingCountLocked(user string) int {
	n := 0
	for _, pc := range h.pending[user] {
		n += len(pc.msgs)
	}
	return n
}

// sweepLocked drops expired pending calls, at most a few times per TTL.
func (h *hub) sweepLocked(now time.Time) {
	if now.Sub(h.lastSweep) < h.cfg.PendingTTL/4 {
		return
	}
	h.lastSweep = now
	for user, calls := range h.pending {
		kept := calls[:0]
		for _, pc := range calls {
			if now.Before(pc.deadline) {
				kept = append(kept, pc)
			} else {
				h.stats.Expired += uint64(len(pc.msgs))
			}
		}
		if len(kept) == 0 {
			delete(h.pending, user)
		} else {
			h.pending[user] = kept
		}
	}
}

// notifyLocked sends a server message about user `about` to `to`'s current
// conn, if any.
func (h *hub) notifyLocked(to string, t signaling.Type, about, call string, data any) {
	c := h.users[to]
	if c == nil && h.broker == nil {
		return
	}
	m, err := signaling.NewMessage(t, to, call, data)
	if err != nil {
		return
	}
	m.From = about
	if c == nil {
		h.notifyRemoteLocked(m)
		return
	}
	h.sendLocked(c, m)
}

// sendLocked queues m on c (nil: nobody to tell).
func (h *hub) sendLocked(c *conn, m signaling.Message) {
	if c == nil {
		return
	}
	if m.To == "" {
		m.To = c.user
	}
	if !c.enqueue(m) {
		h.endSlowLocked(c)
	}
}

// endSlowLocked cuts off a conn whose queue is full.
func (h *hub) endSlowLocked(c *conn) {
	if h.users[c.user] == c {
		delete(h.users, c.user)
	}
	if c.end(signaling.CodeSlowConsumer, "send queue full") {
		h.stats.SlowConsumers++
		h.metrics.errorInc(signaling.CodeSlowConsumer)
		h.log.Warn("signaling: slow consumer cut off", "user", c.user, "conn", c.id)
	}
}

// reject answers a rejected message with `error` and closes the conn when
// it keeps sending rejected input.
func (h *hub) reject(c *conn, m signaling.Message, code, text string) {
	e, _ := signaling.NewMessage(signaling.TypeError, c.user, m.Call,
		signaling.Error{Code: code, Message: text, Rejected: m.Type})
	h.mu.Lock()
	h.stats.Rejected++
	h.sendLocked(c, e)
	h.mu.Unlock()
	h.metrics.errorInc(code)
	if c.lim != nil && !c.lim.strikes.Allow() {
		h.mu.Lock()
		if h.users[c.user] == c {
			delete(h.users, c.user)
		}
		h.stats.Abusive++
		h.mu.Unlock()
		h.metrics.errorInc(signaling.CodeAbusive)
		c.end(signaling.CodeAbusive, "too many rejected messages")
		h.log.Warn("signaling: abusive connection closed", "user", c.user, "conn", c.id, "last", code)
	}
}

// beginClose stops accepting conns and ends the live ones with "shutdown".
func (h *hub) beginClose() {
	h.mu.Lock()
	h.closing = true
	live := make([]*conn, 0, len(h.live))
	for c := range h.live {
		live = append(live, c)
	}
	h.users = make(map[string]*conn)
	h.mu.Unlock()
	for _, c := range live {
		c.end(signaling.CodeShutdown, "server shutting down")
	}
}

// killAll forcibly tears down every carrier still running.
func (h *hub) killAll() {
	h.mu.Lock()
	live := make([]*conn, 0, len(h.live))
	for c := range h.live {
		live = append(live, c)
	}
	h.mu.Unlock()
	for _, c := range live {
		if c.kill != nil {
			c.kill()
		}
	}
}
