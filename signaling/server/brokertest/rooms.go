package brokertest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/dialtone-dev/dialtone/signaling/server"
)

// join sends `join` for room on tr and returns the `members` answer.
func join(t testing.TB, tr signaling.Transport, room string, j signaling.Join) signaling.Members {
	t.Helper()
	send(t, tr, msg(t, signaling.TypeJoin, "", room, j))
	m := recvType(t, tr, signaling.TypeMembers)
	var ms signaling.Members
	require.NoError(t, m.Unmarshal(&ms))
	return ms
}

// event waits for a room event of type typ on tr and returns its data.
func event(t testing.TB, tr signaling.Transport, typ signaling.Type) signaling.MemberEvent {
	t.Helper()
	m := recvType(t, tr, typ)
	var ev signaling.MemberEvent
	require.NoError(t, m.Unmarshal(&ev))
	assert.Equal(t, ev.Member.User, m.From)
	return ev
}

// barrier makes a round trip to tr's server and fails if anything else
// arrives before its answer.
func barrier(t testing.TB, tr signaling.Transport) {
	t.Helper()
	send(t, tr, signaling.Message{Type: signaling.TypeRelay})
	recvType(t, tr, signaling.TypeRelayConfig)
}

// Members on two nodes: the member list, member-joined, mute and
// member-left cross nodes, and room-signal goes between members only.
func testRoomAcrossNodes(t *testing.T, newPair func(t *testing.T) (server.Broker, server.Broker)) {
	n1, n2 := newNodes(t, newPair, server.Config{})
	alice := connect(t, n1, "alice", server.LocalOptions{})
	bob := connect(t, n2, "bob", server.LocalOptions{})
	carol := connect(t, n2, "carol", server.LocalOptions{})

	a := join(t, alice, "standup", signaling.Join{DisplayName: "Alice"})
	b := join(t, bob, "standup", signaling.Join{DisplayName: "Bob", Muted: true})
	assert.Equal(t, []signaling.Member{
		{User: "alice", DisplayName: "Alice", Session: a.Session},
		{User: "bob", DisplayName: "Bob", Muted: true, Session: b.Session}}, b.Members)
	assert.Greater(t, b.Seq, a.Seq)
	ev := event(t, alice, signaling.TypeMemberJoined)
	assert.Equal(t, signaling.MemberEvent{Seq: b.Seq, Member: b.Members[1]}, ev)

	for i := 0; i < 10; i++ {
		send(t, alice, msg(t, signaling.TypeRoomSignal, "bob", "standup", signaling.RoomSignal{
			Session: a.Session, PeerSession: b.Session, Signal: json.RawMessage(fmt.Sprintf(`{"seq":%d}`, i))}))
	}
	for i := 0; i < 10; i++ {
		m := recvType(t, bob, signaling.TypeRoomSignal)
		assert.Equal(t, "alice", m.From)
		var rs signaling.RoomSignal
		require.NoError(t, m.Unmarshal(&rs))
		assert.JSONEq(t, fmt.Sprintf(`{"seq":%d}`, i), string(rs.Signal))
	}

	// carol, on bob's node, is in no room: refused both ways, across nodes.
	send(t, alice, msg(t, signaling.TypeRoomSignal, "carol", "standup", signaling.RoomSignal{}))
	assert.Equal(t, signaling.CodePeerNotMember, recvError(t, alice).Code)
	send(t, carol, msg(t, signaling.TypeRoomSignal, "alice", "standup", signaling.RoomSignal{}))
	assert.Equal(t, signaling.CodeNotMember, recvError(t, carol).Code)

	send(t, bob, msg(t, signaling.TypeMute, "", "standup", signaling.Mute{Muted: false}))
	up := event(t, alice, signaling.TypeMemberUpdated)
	assert.False(t, up.Member.Muted)
	assert.Equal(t, b.Seq+1, up.Seq)

	send(t, alice, msg(t, signaling.TypeLeave, "", "standup", nil))
	assert.Equal(t, signaling.LeftLeave, event(t, alice, signaling.TypeMemberLeft).Reason)
	left := event(t, bob, signaling.TypeMemberLeft)
	assert.Equal(t, "alice", left.Member.User)
	assert.Equal(t, signaling.LeftLeave, left.Reason)
	assert.Equal(t, up.Seq+1, left.Seq)
	barrier(t, carol)
}

// Two joins race for the last seat of a room from two nodes: exactly one
// gets it, the other is answered `room-full`, and every member hears of
// the winner only.
func testRoomLastSeatRace(t *testing.T, newPair func(t *testing.T) (server.Broker, server.Broker)) {
	const size = 4
	n1, n2 := newNodes2(t, newPair, server.Config{MaxRoomSize: size}, server.Config{MaxRoomSize: size})
	var members []*server.LocalConn
	for i := 0; i < size-1; i++ {
		n := n1
		if i%2 == 1 {
			n = n2
		}
		lc := connect(t, n, fmt.Sprintf("m%d", i), server.LocalOptions{})
		join(t, lc, "r", signaling.Join{})
		for _, earlier := range members {
			event(t, earlier, signaling.TypeMemberJoined)
		}
		members = append(members, lc)
	}
	x := connect(t, n1, "x", server.LocalOptions{})
	y := connect(t, n2, "y", server.LocalOptions{})
	var wg sync.WaitGroup
	for _, lc := range []*server.LocalConn{x, y} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = lc.Send(t.Context(), signaling.Message{Type: signaling.TypeJoin, Call: "r"})
		}()
	}
	wg.Wait()
	won := ""
	for _, lc := range []*server.LocalConn{x, y} {
		m := recv(t, lc)
		switch m.Type {
		case signaling.TypeMembers:
			require.Empty(t, won, "both got the last seat")
			won = lc.User()
			var ms signaling.Members
			require.NoError(t, m.Unmarshal(&ms))
			assert.Len(t, ms.Members, size)
		case signaling.TypeError:
			var e signaling.Error
			require.NoError(t, m.Unmarshal(&e))
			assert.Equal(t, signaling.CodeRoomFull, e.Code)
		default:
			require.FailNow(t, "unexpected", "%+v", m)
		}
	}
	require.NotEmpty(t, won, "nobody got the last seat")
	for _, lc := range members {
		assert.Equal(t, won, event(t, lc, signaling.TypeMemberJoined).Member.User)
		barrier(t, lc)
	}
}

// A member whose connection to one node is lost joins again through the
// other node within the grace: it keeps its session, nobody is told, and
// the first node's grace ends without removing it.
func testRoomResumeOnOtherNode(t *testing.T, newPair func(t *testing.T) (server.Broker, server.Broker)) {
	const grace = 300 * time.Millisecond
	n1, n2 := newNodes2(t, newPair, server.Config{RoomGrace: grace}, server.Config{RoomGrace: grace})
	alice := connect(t, n1, "alice", server.LocalOptions{})
	bob := connect(t, n2, "bob", server.LocalOptions{})
	a := join(t, alice, "r", signaling.Join{})
	b := join(t, bob, "r", signaling.Join{DisplayName: "Bob"})
	event(t, alice, signaling.TypeMemberJoined)

	bob.Disconnect()
	bob2 := connect(t, n1, "bob", server.LocalOptions{})
	ms := join(t, bob2, "r", signaling.Join{DisplayName: "Bob"})
	assert.True(t, ms.Resumed)
	assert.Equal(t, b.Session, ms.Session)
	noMessage(t, alice, 3*grace) // n2's grace for the old connection passed
	send(t, alice, msg(t, signaling.TypeRoomSignal, "bob", "r", signaling.RoomSignal{Session: a.Session, PeerSession: ms.Session}))
	assert.Equal(t, "alice", recvType(t, bob2, signaling.TypeRoomSignal).From)

	// Lost again and not back: removed after the grace, on n1 now.
	bob2.Disconnect()
	ev := event(t, alice, signaling.TypeMemberLeft)
	assert.Equal(t, signaling.LeftGone, ev.Reason)
	assert.Equal(t, "bob", ev.Member.User)
}

// The members a node held when it left the cluster are removed by the
// next change of their room, made on another node: the others get
// member-left "gone" first.
func testRoomNodeLeaves(t *testing.T, newPair func(t *testing.T) (server.Broker, server.Broker)) {
	n1, n2 := newNodes(t, newPair, server.Config{})
	alice := connect(t, n1, "alice", server.LocalOptions{})
	bob := connect(t, n2, "bob", server.LocalOptions{})
	join(t, alice, "r", signaling.Join{})
	join(t, bob, "r", signaling.Join{})
	event(t, alice, signaling.TypeMemberJoined)

	require.NoError(t, n2.Close())
	carol := connect(t, n1, "carol", server.LocalOptions{})
	ms := join(t, carol, "r", signaling.Join{})
	assert.Equal(t, []string{"alice", "carol"}, []string{ms.Members[0].User, ms.Members[1].User})
	gone := event(t, alice, signaling.TypeMemberLeft)
	assert.Equal(t, "bob", gone.Member.User)
	assert.Equal(t, signaling.LeftGone, gone.Reason)
	joined := event(t, alice, signaling.TypeMemberJoined)
	assert.Equal(t, "carol", joined.Member.User)
	assert.Greater(t, joined.Seq, gone.Seq)
}
