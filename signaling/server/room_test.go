package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/signaling"
)

// joinRoom sends `join` and returns the `members` answer.
func joinRoom(t *testing.T, tr signaling.Transport, room string, j signaling.Join) signaling.Members {
	t.Helper()
	send(t, tr, msg(t, signaling.TypeJoin, "", room, j))
	m := recvType(t, tr, signaling.TypeMembers)
	require.Equal(t, room, m.Call)
	var ms signaling.Members
	require.NoError(t, m.Unmarshal(&ms))
	return ms
}

// recvEvent waits for a room event of type typ and returns its data.
func recvEvent(t *testing.T, tr signaling.Transport, typ signaling.Type, room string) signaling.MemberEvent {
	t.Helper()
	m := recvType(t, tr, typ)
	require.Equal(t, room, m.Call)
	var ev signaling.MemberEvent
	require.NoError(t, m.Unmarshal(&ev))
	assert.Equal(t, ev.Member.User, m.From, "from names the member concerned")
	return ev
}

// Join, the member list, member-joined, mute, leave and member-left, as
// each member sees them.
func TestRoomJoinLeave(t *testing.T) {
	s := newTestServer(t, Config{})
	alice := connectLocal(t, s, "alice", LocalOptions{})
	bob := connectLocal(t, s, "bob", LocalOptions{})
	carol := connectLocal(t, s, "carol", LocalOptions{})
	assert.Equal(t, 2, alice.Ready().Protocol)

	ms := joinRoom(t, alice, "standup", signaling.Join{DisplayName: "Alice"})
	assert.Equal(t, signaling.Members{Seq: 1, Session: 1, Members: []signaling.Member{
		{User: "alice", DisplayName: "Alice", Session: 1}}}, ms)

	ms = joinRoom(t, bob, "standup", signaling.Join{DisplayName: "Bob", Muted: true})
	bobM := signaling.Member{User: "bob", DisplayName: "Bob", Muted: true, Session: 2}
	assert.Equal(t, signaling.Members{Seq: 2, Session: 2, Members: []signaling.Member{
		{User: "alice", DisplayName: "Alice", Session: 1}, bobM}}, ms)
	assert.Equal(t, signaling.MemberEvent{Seq: 2, Member: bobM}, recvEvent(t, alice, signaling.TypeMemberJoined, "standup"))

	ms = joinRoom(t, carol, "standup", signaling.Join{})
	assert.Len(t, ms.Members, 3)
	assert.Equal(t, uint64(3), ms.Session)
	for _, tr := range []signaling.Transport{alice, bob} {
		ev := recvEvent(t, tr, signaling.TypeMemberJoined, "standup")
		assert.Equal(t, signaling.MemberEvent{Seq: 3, Member: signaling.Member{User: "carol", Session: 3}}, ev)
	}

	// bob unmutes: the others are told, bob is not answered.
	send(t, bob, msg(t, signaling.TypeMute, "", "standup", signaling.Mute{Muted: false}))
	bobM.Muted = false
	for _, tr := range []signaling.Transport{alice, carol} {
		assert.Equal(t, signaling.MemberEvent{Seq: 4, Member: bobM}, recvEvent(t, tr, signaling.TypeMemberUpdated, "standup"))
	}
	// The same state again changes nothing and tells nobody.
	send(t, bob, msg(t, signaling.TypeMute, "", "standup", signaling.Mute{Muted: false}))
	barrier(t, bob)

	send(t, bob, msg(t, signaling.TypeLeave, "", "standup", nil))
	left := signaling.MemberEvent{Seq: 5, Member: bobM, Reason: signaling.LeftLeave}
	for _, tr := range []signaling.Transport{bob, alice, carol} {
		assert.Equal(t, left, recvEvent(t, tr, signaling.TypeMemberLeft, "standup"))
	}
	send(t, bob, msg(t, signaling.TypeLeave, "", "standup", nil))
	e := recvError(t, bob)
	assert.Equal(t, signaling.CodeNotMember, e.Code)
	assert.Equal(t, signaling.TypeLeave, e.Rejected)

	// Joining again is a new membership, with a new session.
	ms = joinRoom(t, bob, "standup", signaling.Join{})
	assert.False(t, ms.Resumed)
	assert.Equal(t, uint64(6), ms.Session)
	assert.Equal(t, []string{"alice", "carol", "bob"}, users(ms.Members))
	recvEvent(t, alice, signaling.TypeMemberJoined, "standup")
	recvEvent(t, carol, signaling.TypeMemberJoined, "standup")

	// A repeated join keeps the membership and tells the others only what
	// changed.
	ms = joinRoom(t, bob, "standup", signaling.Join{DisplayName: "Bobby"})
	assert.True(t, ms.Resumed)
	assert.Equal(t, uint64(6), ms.Session)
	assert.Equal(t, "Bobby", recvEvent(t, alice, signaling.TypeMemberUpdated, "standup").Member.DisplayName)
	recvEvent(t, carol, signaling.TypeMemberUpdated, "standup")
	barrier(t, alice)
	barrier(t, carol)
}

func users(ms []signaling.Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.User)
	}
	return out
}

// A full room answers `room-full`; nobody inside hears of it; a seat
// freed is taken.
func TestRoomFull(t *testing.T) {
	s := newTestServer(t, Config{MaxRoomSize: 2})
	alice := connectLocal(t, s, "alice", LocalOptions{})
	bob := connectLocal(t, s, "bob", LocalOptions{})
	carol := connectLocal(t, s, "carol", LocalOptions{})
	joinRoom(t, alice, "r", signaling.Join{})
	joinRoom(t, bob, "r", signaling.Join{})
	recvEvent(t, alice, signaling.TypeMemberJoined, "r")

	send(t, carol, msg(t, signaling.TypeJoin, "", "r", nil))
	e := recvType(t, carol, signaling.TypeError)
	assert.Equal(t, "r", e.Call)
	var ed signaling.Error
	require.NoError(t, e.Unmarshal(&ed))
	assert.Equal(t, signaling.CodeRoomFull, ed.Code)
	assert.Equal(t, signaling.TypeJoin, ed.Rejected)
	barrier(t, alice)
	barrier(t, bob)
	// Refused, carol is in no room: another room takes her.
	joinRoom(t, carol, "r2", signaling.Join{})

	send(t, bob, msg(t, signaling.TypeLeave, "", "r", nil))
	recvEvent(t, bob, signaling.TypeMemberLeft, "r")
	recvEvent(t, alice, signaling.TypeMemberLeft, "r")
	send(t, carol, msg(t, signaling.TypeLeave, "", "r2", nil))
	recvEvent(t, carol, signaling.TypeMemberLeft, "r2")
	assert.Equal(t, []string{"alice", "carol"}, users(joinRoom(t, carol, "r", signaling.Join{}).Members))
}

// The RoomJoin hook decides who may join which room: `forbidden` and
// `unknown-room` for its refusals, and nobody is told of a refused join.
func TestRoomJoinHook(t *testing.T) {
	asked := make(chan string, 8)
	s := newTestServer(t, Config{RoomJoin: func(ctx context.Context, user, room string) error {
		asked <- user + "@" + room
		switch {
		case room != "standup":
			return fmt.Errorf("lookup %q: %w", room, ErrUnknownRoom)
		case user == "mallory":
			return fmt.Errorf("not on the team")
		}
		return nil
	}})
	alice := connectLocal(t, s, "alice", LocalOptions{})
	mallory := connectLocal(t, s, "mallory", LocalOptions{})
	joinRoom(t, alice, "standup", signaling.Join{})
	assert.Equal(t, "alice@standup", <-asked)

	for _, tc := range []struct{ room, code string }{
		{"standup", signaling.CodeForbidden},
		{"lunch", signaling.CodeUnknownRoom},
	} {
		send(t, mallory, msg(t, signaling.TypeJoin, "", tc.room, nil))
		e := recvError(t, mallory)
		assert.Equal(t, tc.code, e.Code, tc.room)
		assert.Equal(t, "mallory@"+tc.room, <-asked)
	}
	barrier(t, alice)
	// Refusals are not strikes: mallory keeps her connection.
	barrier(t, mallory)
}

// Malformed room names and join data, rooms one is not in, a second room:
// each a clear error, nothing else happens.
func TestRoomBadInput(t *testing.T) {
	s := newTestServer(t, Config{})
	alice := connectLocal(t, s, "alice", LocalOptions{})
	bob := connectLocal(t, s, "bob", LocalOptions{})
	joinRoom(t, bob, "r", signaling.Join{})

	for _, room := range []string{"", strings.Repeat("a", 65), "a b", "ünï", "a/b", "room:1", "r\x00"} {
		send(t, alice, msg(t, signaling.TypeJoin, "", room, nil))
		assert.Equal(t, signaling.CodeBadRoom, recvError(t, alice).Code, "%q", room)
	}
	assert.True(t, signaling.ValidRoom(strings.Repeat("a", 64)))
	for _, raw := range []string{
		`{"type":"join","call":"r","data":{"displayName":"x\u0007y"}}`,
		`{"type":"join","call":"r","data":{"displayName":"` + strings.Repeat("n", 129) + `"}}`,
		`{"type":"join","call":"r","data":{"muted":"yes"}}`,
		`{"type":"mute","call":"r"}`,
	} {
		require.NoError(t, sendRaw(alice, []byte(raw)))
		assert.Equal(t, signaling.CodeMalformed, recvError(t, alice).Code, raw)
	}
	for _, typ := range []signaling.Type{signaling.TypeLeave, signaling.TypeMute} {
		send(t, alice, msg(t, typ, "", "r", signaling.Mute{}))
		e := recvError(t, alice)
		assert.Equal(t, signaling.CodeNotMember, e.Code)
		assert.Equal(t, typ, e.Rejected)
	}
	joinRoom(t, alice, "a", signaling.Join{})
	send(t, alice, msg(t, signaling.TypeJoin, "", "r", nil))
	e := recvError(t, alice)
	assert.Equal(t, signaling.CodeInRoom, e.Code)
	assert.Contains(t, e.Message, `room a`)
	barrier(t, bob) // bob's room heard of none of it
}

// room-signal goes from a member to a member of the same room, data
// unchanged; to or from anyone else it is refused with a clear error and
// not relayed.
func TestRoomSignalOnlyBetweenMembers(t *testing.T) {
	s := newTestServer(t, Config{})
	alice := connectLocal(t, s, "alice", LocalOptions{})
	bob := connectLocal(t, s, "bob", LocalOptions{})
	carol := connectLocal(t, s, "carol", LocalOptions{})
	dave := connectLocal(t, s, "dave", LocalOptions{})
	a := joinRoom(t, alice, "r", signaling.Join{})
	b := joinRoom(t, bob, "r", signaling.Join{})
	recvEvent(t, alice, signaling.TypeMemberJoined, "r")
	joinRoom(t, dave, "other", signaling.Join{})

	sig := signaling.RoomSignal{Session: a.Session, PeerSession: b.Session,
		Signal: json.RawMessage(`{"description":{"type":"offer","sdp":"v=0\r\n"}}`)}
	send(t, alice, msg(t, signaling.TypeRoomSignal, "bob", "r", sig))
	got := recvType(t, bob, signaling.TypeRoomSignal)
	assert.Equal(t, "alice", got.From)
	assert.Equal(t, "r", got.Call)
	var gs signaling.RoomSignal
	require.NoError(t, got.Unmarshal(&gs))
	assert.Equal(t, sig.Session, gs.Session)
	assert.Equal(t, sig.PeerSession, gs.PeerSession)
	assert.JSONEq(t, string(sig.Signal), string(gs.Signal))

	for _, tc := range []struct {
		name     string
		from     *LocalConn
		to, room string
		code     string
	}{
		{"from a non-member", carol, "alice", "r", signaling.CodeNotMember},
		{"from a member of another room", dave, "alice", "r", signaling.CodeNotMember},
		{"to a non-member", alice, "carol", "r", signaling.CodePeerNotMember},
		{"to a member of another room", alice, "dave", "r", signaling.CodePeerNotMember},
		{"for a room the sender is not in", alice, "dave", "other", signaling.CodeNotMember},
	} {
		t.Run(tc.name, func(t *testing.T) {
			send(t, tc.from, msg(t, signaling.TypeRoomSignal, tc.to, tc.room, sig))
			m := recvType(t, tc.from, signaling.TypeError)
			assert.Equal(t, tc.room, m.Call)
			var e signaling.Error
			require.NoError(t, m.Unmarshal(&e))
			assert.Equal(t, tc.code, e.Code)
			assert.Equal(t, signaling.TypeRoomSignal, e.Rejected)
		})
	}
	// To a user connected nowhere: dropped without an answer, as any
	// message to an absent user.
	send(t, alice, msg(t, signaling.TypeRoomSignal, "nobody", "r", sig))
	for _, tr := range []signaling.Transport{alice, bob, carol, dave} {
		barrier(t, tr)
	}
}

// A member whose connection is lost keeps its membership for the grace:
// joining again after the reconnect resumes it (same session, nobody
// told). Past the grace it is removed and the others get member-left
// "gone"; a join then is a new membership.
func TestRoomGrace(t *testing.T) {
	const grace = 300 * time.Millisecond
	s := newTestServer(t, Config{RoomGrace: grace})
	alice := connectLocal(t, s, "alice", LocalOptions{})
	bob := connectLocal(t, s, "bob", LocalOptions{})
	joinRoom(t, alice, "r", signaling.Join{})
	b := joinRoom(t, bob, "r", signaling.Join{DisplayName: "Bob"})
	recvEvent(t, alice, signaling.TypeMemberJoined, "r")

	bob.Disconnect()
	require.NoError(t, bob.Reconnect(context.Background()))
	recvType(t, bob, signaling.TypeReady)
	ms := joinRoom(t, bob, "r", signaling.Join{DisplayName: "Bob"})
	assert.True(t, ms.Resumed)
	assert.Equal(t, b.Session, ms.Session)
	assert.Equal(t, b.Members, ms.Members)
	noMessage(t, alice, 2*grace) // the old connection's grace passed: nothing
	// Still a member: room signals reach bob.
	send(t, alice, msg(t, signaling.TypeRoomSignal, "bob", "r", signaling.RoomSignal{Session: 1, PeerSession: ms.Session}))
	recvType(t, bob, signaling.TypeRoomSignal)

	bob.Disconnect()
	ev := recvEvent(t, alice, signaling.TypeMemberLeft, "r")
	assert.Equal(t, signaling.LeftGone, ev.Reason)
	assert.Equal(t, "bob", ev.Member.User)
	assert.Equal(t, ms.Seq+1, ev.Seq)

	require.NoError(t, bob.Reconnect(context.Background()))
	recvType(t, bob, signaling.TypeReady)
	ms = joinRoom(t, bob, "r", signaling.Join{})
	assert.False(t, ms.Resumed)
	assert.Greater(t, ms.Session, b.Session)
	assert.Equal(t, ms.Session, recvEvent(t, alice, signaling.TypeMemberJoined, "r").Member.Session)
}

// A member flooding joins and leaves is slowed down, then answered
// `rate-limited`; it keeps its connection, and the other members keep
// theirs, see every change in order and still signal each other.
func TestRoomJoinLeaveFlood(t *testing.T) {
	s := newTestServer(t, Config{RateLimit: 20, RateBurst: 10, RateWait: 10 * time.Millisecond})
	alice := connectLocal(t, s, "alice", LocalOptions{})
	carol := connectLocal(t, s, "carol", LocalOptions{})
	bob := connectLocal(t, s, "bob", LocalOptions{})
	a := joinRoom(t, alice, "r", signaling.Join{})
	c := joinRoom(t, carol, "r", signaling.Join{})
	recvEvent(t, alice, signaling.TypeMemberJoined, "r")

	const n = 100
	for i := 0; i < n; i++ {
		typ := signaling.TypeJoin
		if i%2 == 1 {
			typ = signaling.TypeLeave
		}
		send(t, bob, msg(t, typ, "", "r", nil))
	}
	limited, changes := 0, 0
	for i := 0; i < n; i++ {
		m := recvT(t, bob)
		switch m.Type {
		case signaling.TypeError:
			var e signaling.Error
			require.NoError(t, m.Unmarshal(&e))
			require.Contains(t, []string{signaling.CodeRateLimited, signaling.CodeNotMember}, e.Code, "%s", m.Data)
			if e.Code == signaling.CodeRateLimited {
				limited++
			}
		case signaling.TypeMembers, signaling.TypeMemberLeft:
			changes++
		default:
			require.FailNow(t, "unexpected", "%+v %s", m, m.Data)
		}
	}
	assert.Positive(t, limited)
	assert.Positive(t, changes)

	// carol signals alice: it arrives after bob's changes, which alice
	// saw in order and nothing else.
	send(t, carol, msg(t, signaling.TypeRoomSignal, "alice", "r", signaling.RoomSignal{Session: c.Session, PeerSession: a.Session}))
	seq, seen := c.Seq, 0
	for {
		m := recvT(t, alice)
		if m.Type == signaling.TypeRoomSignal {
			assert.Equal(t, "carol", m.From)
			break
		}
		require.Contains(t, []signaling.Type{signaling.TypeMemberJoined, signaling.TypeMemberLeft}, m.Type, "%+v %s", m, m.Data)
		var ev signaling.MemberEvent
		require.NoError(t, m.Unmarshal(&ev))
		assert.Equal(t, "bob", ev.Member.User)
		assert.Greater(t, ev.Seq, seq)
		seq = ev.Seq
		seen++
	}
	assert.Equal(t, changes, seen, "alice saw each of bob's changes")
	for _, tr := range []signaling.Transport{alice, carol, bob} {
		assert.True(t, s.Online(tr.(*LocalConn).User()))
	}
	assert.Zero(t, s.Stats().Abusive)
}
