package server

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/dialtone-dev/dialtone/signaling"
)

// Rooms: the server keeps who is in which room and relays `room-signal`
// between members; media goes peer to peer (a mesh).
//
//   - The membership lives in a room store: the Broker of a cluster (every
//     node sees the same rooms), or a table in the server's memory without
//     one. Each change (join, leave, mute, removal) is one atomic step of
//     the store, which checks the room's size there: of two joins racing
//     for the last seat on two nodes, exactly one gets it, and the other
//     is answered `room-full`. Every change increments the room's Seq, so
//     the member list a joiner gets and the events the others get are
//     totally ordered even when they travel through different nodes.
//   - A user is in at most one room at a time (a join of another room is
//     answered `in-room`); the membership belongs to the user, and the
//     node of its connection watches it.
//   - A member whose connection ends stays a member for RoomGrace. Its
//     client takes the membership back by sending `join` again after it
//     reconnected, on any node (answered `members` with resumed set; the
//     others are told nothing). When the grace ends first, the node that
//     held the connection removes the member and the others get
//     `member-left` with reason "gone". Members held by a node that left
//     the cluster are removed (also "gone") by the next change of their
//     room, on any node.
//   - Room messages run on the sending connection's reading goroutine,
//     store call included: what a client sends after `join` is handled
//     after the join, and a slow store slows down that connection only.
//     `join`, `leave` and `mute` draw on the user's message budget like
//     any message.

// RoomMember is one member of a room as a room store records it: the
// protocol's member and the connection that holds the membership.
type RoomMember struct {
	signaling.Member
	Owner Presence `json:"owner"`
}

// RoomOutcome says what a room store did.
type RoomOutcome string

// Room store outcomes.
const (
	// RoomJoined: the user joined; Member.Session is its new session.
	RoomJoined RoomOutcome = "joined"
	// RoomResumed: the user was a member already; it now belongs to the
	// new owner, with the new display name and muted flag (Changed when
	// either changed).
	RoomResumed RoomOutcome = "resumed"
	// RoomFull: the room had its maximum number of members; nothing
	// changed.
	RoomFull RoomOutcome = "full"
	// RoomOther: the user is a member of another room (RoomResult.Other);
	// nothing changed.
	RoomOther RoomOutcome = "other"
	// RoomLeft: the member was removed; Member is what it was.
	RoomLeft RoomOutcome = "left"
	// RoomUpdated: the member's muted flag was set (Changed when it
	// changed).
	RoomUpdated RoomOutcome = "updated"
	// RoomNotMember: the user is not a member of the room (or, for a
	// removal with an owner, not through that owner); nothing changed.
	RoomNotMember RoomOutcome = "not-member"
)

// RoomChange is one member removal a room store made on its own.
type RoomChange struct {
	Seq    uint64     `json:"seq"`
	Member RoomMember `json:"member"`
}

// RoomResult is what a room store call did and the room after it.
type RoomResult struct {
	Outcome RoomOutcome
	// Seq is the room's change counter after the call.
	Seq uint64
	// Member is the member concerned, as recorded.
	Member RoomMember
	// Changed is set when a resume or an update changed the member (and
	// incremented Seq).
	Changed bool
	// Members lists the room's members after the call, in joining order.
	Members []RoomMember
	// Other is the room the user is in, for RoomOther.
	Other string
	// Gone lists the members removed before the call because the node
	// holding them has left the cluster.
	Gone []RoomChange
}

// roomStore keeps room membership: a Broker for a cluster, localRooms for
// a single node.
type roomStore interface {
	JoinRoom(ctx context.Context, room string, m RoomMember, max int) (RoomResult, error)
	LeaveRoom(ctx context.Context, room, user string, owner Presence) (RoomResult, error)
	MuteRoom(ctx context.Context, room, user string, muted bool) (RoomResult, error)
}

// roomTable is a room store in memory: a single node's (localRooms) and
// MemoryBroker's. alive tells whether a member's owner node is still in
// the cluster.
type roomTable struct {
	mu     sync.Mutex
	rooms  map[string]*roomEntry
	userIn map[string]string // user → room
}

type roomEntry struct {
	seq     uint64
	members []RoomMember // in joining order
}

func newRoomTable() *roomTable {
	return &roomTable{rooms: make(map[string]*roomEntry), userIn: make(map[string]string)}
}

// pruneLocked removes the members whose node is gone.
func (t *roomTable) pruneLocked(room string, r *roomEntry, alive func(string) bool) []RoomChange {
	var gone []RoomChange
	kept := r.members[:0]
	for _, m := range r.members {
		if alive(m.Owner.Node) {
			kept = append(kept, m)
			continue
		}
		r.seq++
		gone = append(gone, RoomChange{Seq: r.seq, Member: m})
		if t.userIn[m.User] == room {
			delete(t.userIn, m.User)
		}
	}
	r.members = kept
	return gone
}

// holdsLocked reports whether user is a member of room through a live
// node.
func (t *roomTable) holdsLocked(room, user string, alive func(string) bool) bool {
	r := t.rooms[room]
	if r == nil {
		return false
	}
	for _, m := range r.members {
		if m.User == user {
			return alive(m.Owner.Node)
		}
	}
	return false
}

func (t *roomTable) resultLocked(o RoomOutcome, r *roomEntry, m RoomMember, gone []RoomChange) RoomResult {
	return RoomResult{Outcome: o, Seq: r.seq, Member: m, Members: slices.Clone(r.members), Gone: gone}
}

// entryLocked returns room's entry, created empty, and drops it again
// when it is left empty (done).
func (t *roomTable) entryLocked(room string) (*roomEntry, func()) {
	r := t.rooms[room]
	if r == nil {
		r = &roomEntry{}
		t.rooms[room] = r
	}
	return r, func() {
		if len(r.members) == 0 {
			delete(t.rooms, room)
		}
	}
}

func (t *roomTable) join(room string, m RoomMember, max int, alive func(string) bool) RoomResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, done := t.entryLocked(room)
	defer done()
	gone := t.pruneLocked(room, r, alive)
	if other, ok := t.userIn[m.User]; ok && other != room && t.holdsLocked(other, m.User, alive) {
		res := t.resultLocked(RoomOther, r, m, gone)
		res.Other = other
		return res
	}
	for i, cur := range r.members {
		if cur.User != m.User {
			continue
		}
		m.Session = cur.Session
		changed := cur.DisplayName != m.DisplayName || cur.Muted != m.Muted
		if changed {
			r.seq++
		}
		r.members[i] = m
		res := t.resultLocked(RoomResumed, r, m, gone)
		res.Changed = changed
		return res
	}
	if len(r.members) >= max {
		return t.resultLocked(RoomFull, r, m, gone)
	}
	r.seq++
	m.Session = r.seq
	r.members = append(r.members, m)
	t.userIn[m.User] = room
	return t.resultLocked(RoomJoined, r, m, gone)
}

func (t *roomTable) leave(room, user string, owner Presence, alive func(string) bool) RoomResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, done := t.entryLocked(room)
	defer done()
	gone := t.pruneLocked(room, r, alive)
	for i, cur := range r.members {
		if cur.User != user || (owner != Presence{} && cur.Owner != owner) {
			continue
		}
		r.members = slices.Delete(r.members, i, i+1)
		r.seq++
		if t.userIn[user] == room {
			delete(t.userIn, user)
		}
		return t.resultLocked(RoomLeft, r, cur, gone)
	}
	return t.resultLocked(RoomNotMember, r, RoomMember{Member: signaling.Member{User: user}}, gone)
}

func (t *roomTable) mute(room, user string, muted bool, alive func(string) bool) RoomResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, done := t.entryLocked(room)
	defer done()
	gone := t.pruneLocked(room, r, alive)
	for i, cur := range r.members {
		if cur.User != user {
			continue
		}
		changed := cur.Muted != muted
		if changed {
			r.seq++
			r.members[i].Muted = muted
		}
		res := t.resultLocked(RoomUpdated, r, r.members[i], gone)
		res.Changed = changed
		return res
	}
	return t.resultLocked(RoomNotMember, r, RoomMember{Member: signaling.Member{User: user}}, gone)
}

// localRooms is the room store of a server without a Broker.
type localRooms struct{ t *roomTable }

func always(string) bool { return true }

func (l localRooms) JoinRoom(_ context.Context, room string, m RoomMember, max int) (RoomResult, error) {
	return l.t.join(room, m, max, always), nil
}

func (l localRooms) LeaveRoom(_ context.Context, room, user string, owner Presence) (RoomResult, error) {
	return l.t.leave(room, user, owner, always), nil
}

func (l localRooms) MuteRoom(_ context.Context, room, user string, muted bool) (RoomResult, error) {
	return l.t.mute(room, user, muted, always), nil
}

// localMember is a membership watched by this node: its user's connection
// is (or, during the grace, was) here.
type localMember struct {
	room  string
	conn  uint64      // the conn that joined
	grace *time.Timer // running while the conn is gone
}

// handleRoom acts on a `join`, `leave` or `mute` from c (m.From set).
func (h *hub) handleRoom(c *conn, m signaling.Message) {
	room := m.Call
	if !signaling.ValidRoom(room) {
		h.reject(c, m, signaling.CodeBadRoom, "a room name is 1 to 64 letters, digits, '-', '_' or '.'")
		return
	}
	var j signaling.Join
	var mu signaling.Mute
	switch m.Type {
	case signaling.TypeJoin:
		if len(m.Data) > 0 && m.Unmarshal(&j) != nil {
			h.reject(c, m, signaling.CodeMalformed, "join data is not a join")
			return
		}
		if !signaling.ValidDisplayName(j.DisplayName) {
			h.reject(c, m, signaling.CodeMalformed, "the display name is over 128 bytes or has control characters")
			return
		}
	case signaling.TypeMute:
		if m.Unmarshal(&mu) != nil {
			h.reject(c, m, signaling.CodeMalformed, "mute needs data {\"muted\": true|false}")
			return
		}
	}
	if !h.charge(c, m) {
		return
	}
	switch m.Type {
	case signaling.TypeJoin:
		h.joinRoom(c, m, j)
	case signaling.TypeLeave:
		h.leaveRoom(c, m)
	case signaling.TypeMute:
		h.muteRoom(c, m, mu.Muted)
	}
}

func (h *hub) joinRoom(c *conn, m signaling.Message, j signaling.Join) {
	room := m.Call
	if hook := h.cfg.RoomJoin; hook != nil {
		ctx, cancel := context.WithTimeout(h.ctx, h.cfg.RoomJoinTimeout)
		err := hook(ctx, c.user, room)
		cancel()
		if err != nil {
			code, text := signaling.CodeForbidden, "not allowed to join this room"
			if errors.Is(err, ErrUnknownRoom) {
				code, text = signaling.CodeUnknownRoom, "no such room"
			}
			h.log.Debug("signaling: join refused", "user", c.user, "room", room, "err", err)
			h.answer(c, m, code, text)
			return
		}
	}
	res, ok := h.roomOp(c, m, "join", func(ctx context.Context) (RoomResult, error) {
		return h.rooms.JoinRoom(ctx, room, RoomMember{
			Member: signaling.Member{User: c.user, DisplayName: j.DisplayName, Muted: j.Muted},
			Owner:  Presence{Node: h.node, Conn: c.id},
		}, h.cfg.MaxRoomSize)
	})
	if !ok {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tellGoneLocked(room, res, c.user)
	switch res.Outcome {
	case RoomFull:
		h.answerLocked(c, m, signaling.CodeRoomFull, "the room is full")
		return
	case RoomOther:
		h.answerLocked(c, m, signaling.CodeInRoom, "already a member of room "+res.Other+": leave it first")
		return
	case RoomJoined, RoomResumed:
	default:
		h.answerLocked(c, m, signaling.CodeUnavailable, "unexpected answer from the room store")
		return
	}
	if lm := h.members[c.user]; lm != nil && lm.grace != nil {
		lm.grace.Stop()
	}
	h.members[c.user] = &localMember{room: room, conn: c.id}
	list := signaling.Members{Seq: res.Seq, Session: res.Member.Session, Resumed: res.Outcome == RoomResumed}
	for _, x := range res.Members {
		list.Members = append(list.Members, x.Member)
	}
	if ms, err := signaling.NewMessage(signaling.TypeMembers, c.user, room, list); err == nil {
		h.sendLocked(c, ms)
	}
	switch {
	case res.Outcome == RoomJoined:
		h.tellMembersLocked(room, res.Members, signaling.TypeMemberJoined, signaling.MemberEvent{Seq: res.Seq, Member: res.Member.Member})
	case res.Changed:
		h.tellMembersLocked(room, res.Members, signaling.TypeMemberUpdated, signaling.MemberEvent{Seq: res.Seq, Member: res.Member.Member})
	}
	if c.isDone() {
		// c ended while the store worked: its release found no
		// membership to watch.
		h.watchGoneLocked(c)
	}
}

// roomOp runs one room store call for c's message m within
// clusterOpTimeout; when the store fails, it answers m `unavailable` and
// reports false.
func (h *hub) roomOp(c *conn, m signaling.Message, op string, f func(context.Context) (RoomResult, error)) (RoomResult, bool) {
	ctx, cancel := context.WithTimeout(h.ctx, clusterOpTimeout)
	res, err := f(ctx)
	cancel()
	if err != nil {
		h.log.Warn("signaling: room store", "op", op, "room", m.Call, "err", err)
		h.answer(c, m, signaling.CodeUnavailable, "the room store is unreachable; try again")
		return RoomResult{}, false
	}
	return res, true
}

func (h *hub) leaveRoom(c *conn, m signaling.Message) {
	room := m.Call
	res, ok := h.roomOp(c, m, "leave", func(ctx context.Context) (RoomResult, error) {
		return h.rooms.LeaveRoom(ctx, room, c.user, Presence{})
	})
	if !ok {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tellGoneLocked(room, res, c.user)
	if res.Outcome != RoomLeft {
		h.answerLocked(c, m, signaling.CodeNotMember, "not a member of this room")
		return
	}
	if lm := h.members[c.user]; lm != nil && lm.room == room {
		if lm.grace != nil {
			lm.grace.Stop()
		}
		delete(h.members, c.user)
	}
	ev := signaling.MemberEvent{Seq: res.Seq, Member: res.Member.Member, Reason: signaling.LeftLeave}
	if ml, err := signaling.NewMessage(signaling.TypeMemberLeft, c.user, room, ev); err == nil {
		ml.From = c.user
		h.sendLocked(c, ml)
	}
	h.tellMembersLocked(room, res.Members, signaling.TypeMemberLeft, ev)
}

func (h *hub) muteRoom(c *conn, m signaling.Message, muted bool) {
	room := m.Call
	res, ok := h.roomOp(c, m, "mute", func(ctx context.Context) (RoomResult, error) {
		return h.rooms.MuteRoom(ctx, room, c.user, muted)
	})
	if !ok {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tellGoneLocked(room, res, "")
	if res.Outcome != RoomUpdated {
		h.answerLocked(c, m, signaling.CodeNotMember, "not a member of this room")
		return
	}
	if res.Changed {
		h.tellMembersLocked(room, res.Members, signaling.TypeMemberUpdated, signaling.MemberEvent{Seq: res.Seq, Member: res.Member.Member})
	}
}

// tellMembersLocked sends an event about ev.Member to every other member
// of room, wherever it is connected.
func (h *hub) tellMembersLocked(room string, members []RoomMember, t signaling.Type, ev signaling.MemberEvent) {
	for _, x := range members {
		if x.User != ev.Member.User {
			h.notifyLocked(x.User, t, ev.Member.User, room, ev)
		}
	}
}

// tellGoneLocked tells the members of room after a store call (except
// the user who made it) about the members the call removed first because
// their node had left the cluster.
func (h *hub) tellGoneLocked(room string, res RoomResult, except string) {
	for _, g := range res.Gone {
		if lm := h.members[g.Member.User]; lm != nil && lm.room == room && g.Member.Owner.Node == h.node {
			delete(h.members, g.Member.User)
		}
		ev := signaling.MemberEvent{Seq: g.Seq, Member: g.Member.Member, Reason: signaling.LeftGone}
		for _, x := range res.Members {
			if x.User != except {
				h.notifyLocked(x.User, signaling.TypeMemberLeft, g.Member.User, room, ev)
			}
		}
	}
}

// watchGoneLocked starts the grace of c's membership, if c held one: c's
// connection is gone, and the membership with it unless the user joins
// again within RoomGrace.
func (h *hub) watchGoneLocked(c *conn) {
	lm := h.members[c.user]
	if lm == nil || lm.conn != c.id || lm.grace != nil || h.closing {
		return
	}
	user := c.user
	lm.grace = time.AfterFunc(h.cfg.RoomGrace, func() { h.graceOver(user, lm) })
}

// graceOver removes a member whose connection did not come back in time.
func (h *hub) graceOver(user string, lm *localMember) {
	h.mu.Lock()
	if h.closing || h.members[user] != lm {
		h.mu.Unlock()
		return
	}
	delete(h.members, user)
	h.roomOps.Add(1)
	h.mu.Unlock()
	defer h.roomOps.Done()
	ctx, cancel := context.WithTimeout(h.ctx, clusterOpTimeout)
	res, err := h.rooms.LeaveRoom(ctx, lm.room, user, Presence{Node: h.node, Conn: lm.conn})
	cancel()
	if err != nil {
		h.log.Warn("signaling: room store", "op", "remove", "room", lm.room, "user", user, "err", err)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tellGoneLocked(lm.room, res, "")
	if res.Outcome != RoomLeft {
		return // joined again through another connection
	}
	h.log.Debug("signaling: member gone", "room", lm.room, "user", user)
	h.tellMembersLocked(lm.room, res.Members, signaling.TypeMemberLeft,
		signaling.MemberEvent{Seq: res.Seq, Member: res.Member.Member, Reason: signaling.LeftGone})
}

// inRoomLocked reports whether user is a member of room as this node
// sees it (its connection is here).
func (h *hub) inRoomLocked(user, room string) bool {
	lm := h.members[user]
	return lm != nil && lm.room == room
}

// stopRooms stops the grace timers and waits for removals under way
// (Shutdown). The memberships stay in the store: their clients join again
// on another node, or the next change of their room removes them.
func (h *hub) stopRooms() {
	h.mu.Lock()
	for _, lm := range h.members {
		if lm.grace != nil {
			lm.grace.Stop()
		}
	}
	h.mu.Unlock()
	h.roomOps.Wait()
}

// answer answers c's message m with an `error` that is not a strike: a
// well-formed request the room's state refused.
func (h *hub) answer(c *conn, m signaling.Message, code, text string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.answerLocked(c, m, code, text)
}

func (h *hub) answerLocked(c *conn, m signaling.Message, code, text string) {
	e, err := signaling.NewMessage(signaling.TypeError, c.user, m.Call,
		signaling.Error{Code: code, Message: text, Rejected: m.Type})
	if err != nil {
		return
	}
	h.stats.Rejected++
	h.metrics.errorInc(code)
	h.sendLocked(c, e)
}

// roomPeerLocked reports whether a routed message m may go to dst, a
// conn of this node: a room-signal only to a member of its room.
func (h *hub) roomPeerLocked(dst *conn, m signaling.Message) bool {
	return m.Type != signaling.TypeRoomSignal || h.inRoomLocked(dst.user, m.Call)
}

// refusePeerLocked answers the sender of room-signal m (connected here or
// on another node) that its recipient is not a member of the room.
func (h *hub) refusePeerLocked(m signaling.Message) {
	h.stats.Rejected++
	h.metrics.errorInc(signaling.CodePeerNotMember)
	h.notifyLocked(m.From, signaling.TypeError, "", m.Call, signaling.Error{
		Code: signaling.CodePeerNotMember, Message: m.To + " is not a member of this room", Rejected: m.Type})
}
