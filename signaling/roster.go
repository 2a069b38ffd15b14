package signaling

import (
	"cmp"
	"slices"
)

// Roster is a room's member list as one member's client sees it, kept
// from the room messages the client receives ([Roster.Apply]).
//
// The server numbers every change of a room (Seq), but in a cluster the
// answer to a join and the events about different members may travel
// through different server nodes and arrive out of order. Roster applies
// an event about a member only when it is newer than both the member list
// it holds and the last event about that member, and holds the events
// that arrive before the member list: changes about one member stay in
// order, changes about different members commute, and a late event never
// undoes a newer one.
//
// A Roster is not safe for concurrent use; keep it in the goroutine that
// reads the room's messages.
type Roster struct {
	room    string
	self    string
	seq     uint64 // the member list's
	session uint64
	listed  bool              // a member list arrived since NewRoster or Rejoin
	members map[string]Member // by user, self included
	last    map[string]uint64 // by user: Seq of the last change applied about it
	held    []Message         // events before the member list
}

// maxHeld bounds the events a Roster holds while it waits for the member
// list: a room's whole membership changing several times over.
const maxHeld = 256

// RosterChange is one change of a Roster, for the client to act on: a
// peer connection to set up (TypeMemberJoined), to close
// (TypeMemberLeft) or a member's state to show (TypeMemberUpdated).
type RosterChange struct {
	Type   Type
	Member Member
	// Reason is why a member left (LeftLeave, LeftGone); "" when it left
	// while this client's membership was lost.
	Reason string
}

// NewRoster returns an empty Roster for room as seen by user self. Call
// Apply with the answer to the join (TypeMembers) and every room message
// after it.
func NewRoster(room, self string) *Roster {
	return &Roster{room: room, self: self, members: make(map[string]Member), last: make(map[string]uint64)}
}

// Rejoin is called when the client sends `join` again (after a
// reconnect): the events that arrive before its answer are held until it.
func (r *Roster) Rejoin() { r.listed = false }

// Session is the client's own membership session (0 before the member
// list).
func (r *Roster) Session() uint64 { return r.session }

// Members returns the members, the client included, in joining order.
func (r *Roster) Members() []Member {
	out := make([]Member, 0, len(r.members))
	for _, m := range r.members {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.Session, b.Session) })
	return out
}

// Member returns user's entry.
func (r *Roster) Member(user string) (Member, bool) {
	m, ok := r.members[user]
	return m, ok
}

// Apply applies one message and returns what changed, in order, about
// members other than the client itself, except that a TypeMemberLeft
// about the client (its own leave confirmed, or its membership removed
// by the server) is returned too: the room is over for it. Messages of
// other rooms or types are ignored; malformed data is an error
// (ErrMalformed, ErrNoData) and changes nothing.
func (r *Roster) Apply(m Message) ([]RosterChange, error) {
	if m.Call != r.room {
		return nil, nil
	}
	switch m.Type {
	case TypeMembers:
		var ms Members
		if err := m.Unmarshal(&ms); err != nil {
			return nil, err
		}
		return r.applyList(ms), nil
	case TypeMemberJoined, TypeMemberLeft, TypeMemberUpdated:
		var ev MemberEvent
		if err := m.Unmarshal(&ev); err != nil {
			return nil, err
		}
		if !r.listed {
			if len(r.held) < maxHeld {
				r.held = append(r.held, m)
			}
			return nil, nil
		}
		return r.applyEvent(m.Type, ev), nil
	}
	return nil, nil
}

func (r *Roster) applyList(ms Members) []RosterChange {
	var out []RosterChange
	now := make(map[string]Member, len(ms.Members))
	for _, x := range ms.Members {
		now[x.User] = x
	}
	for _, old := range r.Members() {
		x, ok := now[old.User]
		if old.User == r.self || (ok && ms.Resumed && x.Session == old.Session) {
			continue
		}
		// Gone, or a new membership of either side: the peer connection
		// of the old one is over.
		out = append(out, RosterChange{Type: TypeMemberLeft, Member: old})
	}
	for _, x := range ms.Members {
		if x.User == r.self {
			continue
		}
		old, ok := r.members[x.User]
		switch {
		case !ok || !ms.Resumed || old.Session != x.Session:
			out = append(out, RosterChange{Type: TypeMemberJoined, Member: x})
		case old != x:
			out = append(out, RosterChange{Type: TypeMemberUpdated, Member: x})
		}
	}
	r.members = now
	r.seq, r.session, r.listed = ms.Seq, ms.Session, true
	held := r.held
	r.held = nil
	slices.SortStableFunc(held, func(a, b Message) int { return cmp.Compare(eventSeq(a), eventSeq(b)) })
	for _, m := range held {
		var ev MemberEvent
		if m.Unmarshal(&ev) == nil {
			out = append(out, r.applyEvent(m.Type, ev)...)
		}
	}
	return out
}

func eventSeq(m Message) uint64 {
	var ev MemberEvent
	_ = m.Unmarshal(&ev)
	return ev.Seq
}

func (r *Roster) applyEvent(t Type, ev MemberEvent) []RosterChange {
	u := ev.Member.User
	if ev.Seq <= r.seq || ev.Seq <= r.last[u] {
		return nil // already in the list, or older than what is
	}
	r.last[u] = ev.Seq
	old, had := r.members[u]
	switch t {
	case TypeMemberJoined:
		r.members[u] = ev.Member
		if u == r.self {
			return nil
		}
		if had {
			return []RosterChange{{Type: TypeMemberLeft, Member: old}, {Type: TypeMemberJoined, Member: ev.Member}}
		}
		return []RosterChange{{Type: TypeMemberJoined, Member: ev.Member}}
	case TypeMemberLeft:
		if !had || old.Session != ev.Member.Session {
			return nil
		}
		delete(r.members, u)
		return []RosterChange{{Type: TypeMemberLeft, Member: old, Reason: ev.Reason}}
	case TypeMemberUpdated:
		if !had || old.Session != ev.Member.Session {
			return nil
		}
		r.members[u] = ev.Member
		if u == r.self {
			return nil
		}
		return []RosterChange{{Type: TypeMemberUpdated, Member: ev.Member}}
	}
	return nil
}
