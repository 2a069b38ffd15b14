package call_test

import (
	"context"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/internal/testenv"
	"github.com/dialtone-dev/dialtone/signaling/server"
	"github.com/dialtone-dev/dialtone/signaling/server/redisbroker"
)

// TestRoomAcrossNodes: two signaling server nodes share a Redis broker;
// alice and carol connect to the first, bob to the second. They join one
// room: the member lists, member-joined and room-signals cross the
// nodes, and each hears the other two (and never itself).
func TestRoomAcrossNodes(t *testing.T) {
	addr := startRedis(t)
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

// startRedis runs a private redis-server on a free loopback port until the
// end of the test and returns its address. Without redis-server the test
// is skipped, except under CI=true where it fails (internal/testenv).
func startRedis(t *testing.T) string {
	t.Helper()
	bin := testenv.Program(t, "redis-server")
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close())
		_, port, err := net.SplitHostPort(addr)
		require.NoError(t, err)
		cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", port,
			"--save", "", "--appendonly", "no", "--dir", t.TempDir(), "--daemonize", "no")
		require.NoError(t, cmd.Start())
		exited := make(chan struct{})
		go func() {
			_ = cmd.Wait()
			close(exited)
		}()
		stop := func() {
			_ = cmd.Process.Kill()
			<-exited
		}
		if redisUp(addr, exited) {
			t.Cleanup(stop)
			return addr
		}
		stop() // the port was taken meanwhile, or it did not start
	}
	t.Fatal("redis-server did not start")
	return ""
}

// redisUp pings addr until it answers (true), the server exits or 5 s pass.
func redisUp(addr string, exited <-chan struct{}) bool {
	rdb := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return true
		}
		select {
		case <-exited:
			return false
		case <-deadline:
			return false
		case <-tick.C:
		}
	}
}
