package signaling_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/signaling"
)

func TestValidRoom(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"standup", true}, {"Team-7_daily.v2", true}, {strings.Repeat("r", 64), true},
		{"", false}, {strings.Repeat("r", 65), false}, {"a b", false}, {"a/b", false},
		{"room:1", false}, {"ünï", false}, {"r\x00", false}, {"{tag}", false},
	} {
		assert.Equal(t, tc.ok, signaling.ValidRoom(tc.name), "%q", tc.name)
	}
	assert.True(t, signaling.ValidDisplayName("Ada Lovelace — ÆØÅ"))
	assert.False(t, signaling.ValidDisplayName("bell\a"))
	assert.False(t, signaling.ValidDisplayName(strings.Repeat("n", 129)))
}

func roomMsg(t *testing.T, typ signaling.Type, room string, data any) signaling.Message {
	t.Helper()
	m, err := signaling.NewMessage(typ, "me", room, data)
	require.NoError(t, err)
	if ev, ok := data.(signaling.MemberEvent); ok {
		m.From = ev.Member.User
	}
	return m
}

func apply(t *testing.T, r *signaling.Roster, m signaling.Message) []signaling.RosterChange {
	t.Helper()
	ch, err := r.Apply(m)
	require.NoError(t, err)
	return ch
}

var (
	me    = signaling.Member{User: "me", Session: 2}
	alice = signaling.Member{User: "alice", Session: 1}
	bob   = signaling.Member{User: "bob", Session: 3}
	carol = signaling.Member{User: "carol", Session: 4}
)

// Events about different members may arrive out of order (they cross
// different server nodes): each is applied once; a late event about a
// member never undoes a newer one.
func TestRosterOutOfOrder(t *testing.T) {
	r := signaling.NewRoster("r", "me")
	// carol's join overtakes the member list and is held until it.
	assert.Empty(t, apply(t, r, roomMsg(t, signaling.TypeMemberJoined, "r", signaling.MemberEvent{Seq: 4, Member: carol})))
	ch := apply(t, r, roomMsg(t, signaling.TypeMembers, "r", signaling.Members{Seq: 2, Session: 2, Members: []signaling.Member{alice, me}}))
	assert.Equal(t, []signaling.RosterChange{
		{Type: signaling.TypeMemberJoined, Member: alice},
		{Type: signaling.TypeMemberJoined, Member: carol},
	}, ch)
	assert.Equal(t, uint64(2), r.Session())

	// bob's join (seq 3) arrives after carol's (seq 4): still applied.
	assert.Equal(t, []signaling.RosterChange{{Type: signaling.TypeMemberJoined, Member: bob}},
		apply(t, r, roomMsg(t, signaling.TypeMemberJoined, "r", signaling.MemberEvent{Seq: 3, Member: bob})))
	// carol leaves (6) before her mute (5) arrives: the mute is dropped.
	left := apply(t, r, roomMsg(t, signaling.TypeMemberLeft, "r", signaling.MemberEvent{Seq: 6, Member: carol, Reason: signaling.LeftGone}))
	assert.Equal(t, []signaling.RosterChange{{Type: signaling.TypeMemberLeft, Member: carol, Reason: signaling.LeftGone}}, left)
	muted := carol
	muted.Muted = true
	assert.Empty(t, apply(t, r, roomMsg(t, signaling.TypeMemberUpdated, "r", signaling.MemberEvent{Seq: 5, Member: muted})))
	// Anything at or below the list's seq is in the list already.
	assert.Empty(t, apply(t, r, roomMsg(t, signaling.TypeMemberLeft, "r", signaling.MemberEvent{Seq: 2, Member: alice})))
	assert.Equal(t, []signaling.Member{alice, me, bob}, r.Members())

	// Other rooms and other types are not this roster's business; bad
	// data is an error and changes nothing.
	assert.Empty(t, apply(t, r, roomMsg(t, signaling.TypeMemberLeft, "other", signaling.MemberEvent{Seq: 9, Member: bob})))
	_, err := r.Apply(signaling.Message{Type: signaling.TypeMemberLeft, Call: "r", Data: []byte(`{"seq":"x"}`)})
	assert.ErrorIs(t, err, signaling.ErrMalformed)
	assert.Len(t, r.Members(), 3)
}

// After a reconnect the client joins again: a resumed membership keeps
// every peer connection (only what changed meanwhile is reported); a new
// one ends them all and starts again.
func TestRosterRejoin(t *testing.T) {
	list := signaling.Members{Seq: 3, Session: 2, Members: []signaling.Member{alice, me, bob}}
	for _, tc := range []struct {
		name    string
		answer  signaling.Members
		changes []signaling.RosterChange
	}{
		{"resumed", signaling.Members{Seq: 5, Session: 2, Resumed: true, Members: []signaling.Member{alice, me, carol}},
			[]signaling.RosterChange{
				{Type: signaling.TypeMemberLeft, Member: bob},
				{Type: signaling.TypeMemberJoined, Member: carol},
			}},
		{"new membership", signaling.Members{Seq: 6, Session: 6, Members: []signaling.Member{alice, carol, {User: "me", Session: 6}}},
			[]signaling.RosterChange{
				{Type: signaling.TypeMemberLeft, Member: alice},
				{Type: signaling.TypeMemberLeft, Member: bob},
				{Type: signaling.TypeMemberJoined, Member: alice},
				{Type: signaling.TypeMemberJoined, Member: carol},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := signaling.NewRoster("r", "me")
			apply(t, r, roomMsg(t, signaling.TypeMembers, "r", list))
			r.Rejoin()
			// An event overtaking the answer waits for it.
			assert.Empty(t, apply(t, r, roomMsg(t, signaling.TypeMemberUpdated, "r", signaling.MemberEvent{Seq: 7, Member: signaling.Member{User: "carol", Session: 4, Muted: true}})))
			changes := append(tc.changes, signaling.RosterChange{Type: signaling.TypeMemberUpdated, Member: signaling.Member{User: "carol", Session: 4, Muted: true}})
			assert.Equal(t, changes, apply(t, r, roomMsg(t, signaling.TypeMembers, "r", tc.answer)))
		})
	}
}

// The client's own member-left (its leave confirmed, or its membership
// removed) is reported: the room is over for it.
func TestRosterSelfLeft(t *testing.T) {
	r := signaling.NewRoster("r", "me")
	apply(t, r, roomMsg(t, signaling.TypeMembers, "r", signaling.Members{Seq: 2, Session: 2, Members: []signaling.Member{alice, me}}))
	ch := apply(t, r, roomMsg(t, signaling.TypeMemberLeft, "r", signaling.MemberEvent{Seq: 3, Member: me, Reason: signaling.LeftGone}))
	assert.Equal(t, []signaling.RosterChange{{Type: signaling.TypeMemberLeft, Member: me, Reason: signaling.LeftGone}}, ch)
	_, ok := r.Member("me")
	assert.False(t, ok)
}
