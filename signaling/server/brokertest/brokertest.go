// Package brokertest checks implementations of server.Broker, the way
// testing/fstest checks file systems: TestBroker runs a two-node cluster
// on the broker and checks calls, presence, replacement and pending
// invites across nodes.
package brokertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/dialtone-dev/dialtone/signaling/server"
)

// waitFor bounds every wait of the kit's checks.
const waitFor = 5 * time.Second

// TestBroker checks that a server.Broker implementation carries a cluster:
// calls across two nodes, offline users, a user's connection replaced
// from another node, pending invites delivered on another node. newPair
// returns the brokers of two nodes sharing one backend (the same value
// twice for an in-process broker); it may register cleanups on t.
func TestBroker(t *testing.T, newPair func(t *testing.T) (server.Broker, server.Broker)) {
	t.Run("CallAcrossNodes", func(t *testing.T) { testCallAcrossNodes(t, newPair) })
	t.Run("Offline", func(t *testing.T) { testOffline(t, newPair) })
	t.Run("ReplaceAcrossNodes", func(t *testing.T) { testReplaceAcrossNodes(t, newPair) })
	t.Run("PendingDeliveredOnOtherNode", func(t *testing.T) { testPendingOnOtherNode(t, newPair) })
	t.Run("RoomAcrossNodes", func(t *testing.T) { testRoomAcrossNodes(t, newPair) })
	t.Run("RoomLastSeatRace", func(t *testing.T) { testRoomLastSeatRace(t, newPair) })
	t.Run("RoomResumeOnOtherNode", func(t *testing.T) { testRoomResumeOnOtherNode(t, newPair) })
	t.Run("RoomNodeLeaves", func(t *testing.T) { testRoomNodeLeaves(t, newPair) })
}

// newNodes starts two dev-mode nodes, n1 and n2, on the brokers; cfg
// applies to n1. It returns once both have joined the cluster.
func newNodes(t *testing.T, newPair func(t *testing.T) (server.Broker, server.Broker), cfg1 server.Config) (*server.Server, *server.Server) {
	t.Helper()
	return newNodes2(t, newPair, cfg1, server.Config{})
}

// newNodes2 is newNodes with cfg2 for n2.
func newNodes2(t *testing.T, newPair func(t *testing.T) (server.Broker, server.Broker), cfg1, cfg2 server.Config) (*server.Server, *server.Server) {
	t.Helper()
	b1, b2 := newPair(t)
	cfg1.Broker, cfg1.NodeID, cfg1.DevMode = b1, "n1", true
	n1 := server.New(cfg1)
	t.Cleanup(func() { _ = n1.Close() })
	cfg2.Broker, cfg2.NodeID, cfg2.DevMode = b2, "n2", true
	n2 := server.New(cfg2)
	t.Cleanup(func() { _ = n2.Close() })
	for _, n := range []*server.Server{n1, n2} {
		require.Eventually(t, func() bool { return n.Ready() == nil }, waitFor, 5*time.Millisecond, "node %s never joined", n.NodeID())
	}
	return n1, n2
}

// A call between users on two nodes: every message crosses in order, from
// is set by the sender's node, and the caller hears `waiting`.
func testCallAcrossNodes(t *testing.T, newPair func(t *testing.T) (server.Broker, server.Broker)) {
	n1, n2 := newNodes(t, newPair, server.Config{})
	alice := connect(t, n1, "alice", server.LocalOptions{})
	bob := connect(t, n2, "bob", server.LocalOptions{})

	p, ok, err := n1.Presence(context.Background(), "bob")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "n2", p.Node)

	send(t, alice, msg(t, signaling.TypeInvite, "bob", "c1", signaling.Invite{DisplayName: "Alice"}))
	inv := recvType(t, bob, signaling.TypeInvite)
	assert.Equal(t, "alice", inv.From)
	assert.Equal(t, "c1", inv.Call)
	w := recvType(t, alice, signaling.TypeWaiting)
	assert.Equal(t, "bob", w.From)

	send(t, bob, msg(t, signaling.TypeRinging, "alice", "c1", nil))
	assert.Equal(t, "bob", recvType(t, alice, signaling.TypeRinging).From)

	const n = 30
	for i := 0; i < n; i++ {
		send(t, alice, msg(t, signaling.TypeSignal, "bob", "c1", map[string]int{"seq": i}))
	}
	for i := 0; i < n; i++ {
		m := recvType(t, bob, signaling.TypeSignal)
		assert.JSONEq(t, fmt.Sprintf(`{"seq":%d}`, i), string(m.Data))
	}
	send(t, bob, msg(t, signaling.TypeHangup, "alice", "c1", signaling.Hangup{Reason: "hangup"}))
	h := recvType(t, alice, signaling.TypeHangup)
	assert.Equal(t, "bob", h.From)
	assert.Equal(t, uint64(n+1), n2.Stats().Routed) // invite + signals
	assert.Equal(t, uint64(2), n1.Stats().Routed)   // ringing + hangup
}

// A user connected nowhere is `offline`, from either node.
func testOffline(t *testing.T, newPair func(t *testing.T) (server.Broker, server.Broker)) {
	n1, _ := newNodes(t, newPair, server.Config{})
	alice := connect(t, n1, "alice", server.LocalOptions{})
	send(t, alice, msg(t, signaling.TypeInvite, "carol", "c2", nil))
	off := recvType(t, alice, signaling.TypeOffline)
	assert.Equal(t, "carol", off.From)
	assert.Equal(t, "c2", off.Call)
	_, ok, err := n1.Presence(context.Background(), "carol")
	require.NoError(t, err)
	assert.False(t, ok)
}

// A user connecting to the other node replaces its connection on the first
// one; messages then reach the new connection, and the old one's release
// does not erase the new presence.
func testReplaceAcrossNodes(t *testing.T, newPair func(t *testing.T) (server.Broker, server.Broker)) {
	n1, n2 := newNodes(t, newPair, server.Config{})
	alice := connect(t, n1, "alice", server.LocalOptions{})
	old := connect(t, n2, "bob", server.LocalOptions{})
	newer := connect(t, n1, "bob", server.LocalOptions{})

	assert.Equal(t, signaling.CodeReplaced, recvError(t, old).Code)
	st := waitStatus(t, old, signaling.StateClosed)
	assert.ErrorIs(t, st.Err, signaling.ErrReplaced)
	assert.Equal(t, uint64(1), n2.Stats().Replaced)

	send(t, alice, msg(t, signaling.TypeInvite, "bob", "c3", nil))
	assert.Equal(t, "alice", recvType(t, newer, signaling.TypeInvite).From)
	recvType(t, alice, signaling.TypeWaiting)

	// bob back on n2: n1's connection goes, and the presence follows even
	// after n1 released the old one.
	again := connect(t, n2, "bob", server.LocalOptions{})
	assert.Equal(t, signaling.CodeReplaced, recvError(t, newer).Code)
	waitStatus(t, newer, signaling.StateClosed)
	require.Eventually(t, func() bool { return n1.Stats().Replaced == 1 && !n1.Online("bob") }, waitFor, 5*time.Millisecond)
	send(t, alice, msg(t, signaling.TypeSignal, "bob", "c3", map[string]int{"seq": 1}))
	assert.Equal(t, "c3", recvType(t, again, signaling.TypeSignal).Call)
	p, ok, err := n1.Presence(context.Background(), "bob")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "n2", p.Node)
}

// An invite pushed to a user connected nowhere stays on the caller's node
// and reaches the user, with the later messages of the call and in order,
// when it connects to another node.
func testPendingOnOtherNode(t *testing.T, newPair func(t *testing.T) (server.Broker, server.Broker)) {
	pushed := make(chan server.Push, 1)
	n1, n2 := newNodes(t, newPair, server.Config{Pusher: server.PusherFunc(func(_ context.Context, p server.Push) error {
		pushed <- p
		return nil
	})})
	alice := connect(t, n1, "alice", server.LocalOptions{})
	send(t, alice, msg(t, signaling.TypeInvite, "dave", "c4", nil))
	select {
	case p := <-pushed:
		assert.Equal(t, "dave", p.User)
	case <-time.After(waitFor):
		t.Fatal("no push")
	}
	recvType(t, alice, signaling.TypeWaiting)
	for i := 0; i < 5; i++ {
		send(t, alice, msg(t, signaling.TypeSignal, "dave", "c4", map[string]int{"seq": i}))
	}
	require.Eventually(t, func() bool { return n1.Stats().Pending == 6 }, waitFor, 5*time.Millisecond)

	dave := connect(t, n2, "dave", server.LocalOptions{})
	assert.Equal(t, "alice", recvType(t, dave, signaling.TypeInvite).From)
	// Messages sent after dave connected follow the pending ones.
	send(t, alice, msg(t, signaling.TypeSignal, "dave", "c4", map[string]int{"seq": 5}))
	for i := 0; i < 6; i++ {
		m := recvType(t, dave, signaling.TypeSignal)
		assert.JSONEq(t, fmt.Sprintf(`{"seq":%d}`, i), string(m.Data))
	}
	assert.Equal(t, uint64(6), n1.Stats().Delivered)
	noMessage(t, alice, 50*time.Millisecond) // `waiting` was already sent once
}
