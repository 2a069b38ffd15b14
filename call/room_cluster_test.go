package call_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/internal/redistest"
	"github.com/dialtone-dev/dialtone/signaling/server"
	"github.com/dialtone-dev/dialtone/signaling/server/redisbroker"
)

// TestRoomAcrossNodes: two signaling server nodes share a Redis broker;
// alice and carol connect to the first, bob to the second. They join one
// room: the member lists, member-joined and room-signals cross the
// nodes, and each hears the other two (and never itself).
func TestRoomAcrossNodes(t *testing.T) {
	addr := redistest.Start(t)
	node := func(id string) *calltest.Lab {
		rdb := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2})
		// The lab closes its server, then the client may go.
		t.Cleanup(func() { _ = rdb.Close() })
		return newLab(t, server.Config{NodeID: id, Broker: redisbroker.New(rdb, redisbroker.Config{Prefix: "roomtest:"})})
	}
	n1, n2 := node("n1"), node("n2")
	alice := newMember(t, n1, "alice", 440)
	bob := newMember(t, n2, "bob", 620)
	carol := newMember(t, n1, "carol", 820)
	all := []*member{alice, bob, carol}
	for _, m := range all {
		m.join(t, "across")
	}
	for _, m := range all {
		m.waitConnected(t, without(all, m)...)
	}
	for _, m := range all {
		require.ElementsMatch(t, usersOf(without(all, m)), membersUsers(m.room.Members()), "%s: members", m.User())
	}
	// The jitter buffers settle on their first packets.
	alice.heard(t, 500*time.Millisecond)
	for _, m := range all {
		m.checkHears(t, without(all, m), []*member{m})
	}
}
