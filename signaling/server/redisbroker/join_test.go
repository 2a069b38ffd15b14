package redisbroker

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/internal/redistest"
	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/dialtone-dev/dialtone/signaling/server"
)

// A node started while Redis is down is not ready (WebSocket upgrades get
// 503, in-process connections wait), keeps trying to join, and serves
// normally, across the cluster, once Redis comes up.
func TestServerJoinsWhenRedisComesUp(t *testing.T) {
	bin := redistest.Program(t)
	addr := redistest.FreeAddr(t)
	client := func() *redis.Client {
		rdb := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2})
		t.Cleanup(func() { _ = rdb.Close() })
		return rdb
	}
	n1 := server.New(server.Config{DevMode: true, NodeID: "n1", Broker: New(client(), Config{Prefix: "test:"})})
	t.Cleanup(func() { _ = n1.Close() })
	hs := httptest.NewServer(n1)
	t.Cleanup(hs.Close)
	url := "ws" + strings.TrimPrefix(hs.URL, "http")

	require.ErrorIs(t, n1.Ready(), server.ErrNotReady)
	_, resp, err := websocket.DefaultDialer.Dial(url+"?user=alice", nil)
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	_ = resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err = n1.ConnectLocal(ctx, "alice", server.LocalOptions{})
	cancel()
	require.ErrorIs(t, err, server.ErrNotReady)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	require.True(t, redistest.StartAt(t, bin, addr), "redis-server did not start")
	require.Eventually(t, func() bool { return n1.Ready() == nil }, 15*time.Second, 20*time.Millisecond)

	n2 := server.New(server.Config{DevMode: true, NodeID: "n2", Broker: New(client(), Config{Prefix: "test:"})})
	t.Cleanup(func() { _ = n2.Close() })
	dctx, dcancel := context.WithTimeout(context.Background(), waitFor)
	defer dcancel()
	alice, err := signaling.Dial(dctx, url+"?user=alice", signaling.DialConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = alice.Close() })
	recvType(t, alice, signaling.TypeReady)
	bob, err := n2.ConnectLocal(dctx, "bob", server.LocalOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = bob.Close() })
	recvType(t, bob, signaling.TypeReady)
	require.NoError(t, alice.Send(dctx, signaling.Message{Type: signaling.TypeInvite, To: "bob", Call: "c1"}))
	assert.Equal(t, "alice", recvType(t, bob, signaling.TypeInvite).From)
	assert.Equal(t, "bob", recvType(t, alice, signaling.TypeWaiting).From)
}

// Shutting down a node that never joined returns promptly and stops
// retrying.
func TestServerClosesWhileJoining(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: redistest.FreeAddr(t), Protocol: 2})
	t.Cleanup(func() { _ = rdb.Close() })
	n := server.New(server.Config{DevMode: true, Broker: New(rdb, Config{})})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, n.Shutdown(ctx))
	assert.True(t, errors.Is(n.Ready(), server.ErrServerClosed))
}

// recvType waits for the next message on tr and checks its type.
func recvType(t *testing.T, tr signaling.Transport, typ signaling.Type) signaling.Message {
	t.Helper()
	select {
	case m, ok := <-tr.Incoming():
		require.True(t, ok, "incoming closed")
		require.Equal(t, typ, m.Type, "message %+v data %s", m, m.Data)
		return m
	case <-time.After(waitFor):
		require.FailNow(t, "no message", "waiting for %s", typ)
	}
	return signaling.Message{}
}

// A Redis restart that loses every key (killed, back empty) loses no call
// message: what is routed to a user on another node while Redis is down,
// or back but before the nodes have put their presences back, waits in
// the sending node's outbox and arrives in order. The nodes' presence TTL
// is the default (30 s), so the 5 s waits pass only if the nodes notice
// the restart at once rather than at their next regular refresh.
func TestMessagesSurviveRedisRestart(t *testing.T) {
	bin := redistest.Program(t)
	addr := redistest.FreeAddr(t)
	kill, ok := redistest.Run(t, bin, addr)
	require.True(t, ok, "redis-server did not start")
	// Closed by defer, before the restarted Redis stops (a cleanup): the
	// nodes leave the cluster while Redis runs.
	node := func(id string) (*server.Server, func()) {
		rdb := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2})
		n := server.New(server.Config{DevMode: true, NodeID: id, Broker: New(rdb, Config{Prefix: "test:"})})
		return n, func() { _ = n.Close(); _ = rdb.Close() }
	}
	n1, close1 := node("n1")
	defer close1()
	n2, close2 := node("n2")
	defer close2()
	ctx, cancel := context.WithTimeout(context.Background(), 4*waitFor)
	defer cancel()
	alice, err := n1.ConnectLocal(ctx, "alice", server.LocalOptions{})
	require.NoError(t, err)
	defer alice.Close()
	bob, err := n2.ConnectLocal(ctx, "bob", server.LocalOptions{})
	require.NoError(t, err)
	defer bob.Close()
	recvType(t, alice, signaling.TypeReady)
	recvType(t, bob, signaling.TypeReady)
	require.NoError(t, alice.Send(ctx, signaling.Message{Type: signaling.TypeInvite, To: "bob", Call: "c1"}))
	recvType(t, bob, signaling.TypeInvite)
	recvType(t, alice, signaling.TypeWaiting)

	kill()
	require.NoError(t, alice.Send(ctx, signaling.Message{Type: signaling.TypeSignal, To: "bob", Call: "c1", Data: []byte(`{"seq":1}`)}))
	require.NoError(t, alice.Send(ctx, signaling.Message{Type: signaling.TypeInvite, To: "bob", Call: "c2"}))
	_, ok = redistest.Run(t, bin, addr)
	require.True(t, ok, "redis-server did not restart")
	require.NoError(t, alice.Send(ctx, signaling.Message{Type: signaling.TypeHangup, To: "bob", Call: "c1"}))

	m := recvType(t, bob, signaling.TypeSignal)
	assert.Equal(t, "c1", m.Call)
	assert.Equal(t, "c2", recvType(t, bob, signaling.TypeInvite).Call)
	assert.Equal(t, "c1", recvType(t, bob, signaling.TypeHangup).Call)
	assert.Equal(t, "c2", recvType(t, alice, signaling.TypeWaiting).Call)
}
