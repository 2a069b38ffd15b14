package redisbroker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/internal/redistest"
	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/dialtone-dev/dialtone/signaling/server"
	"github.com/dialtone-dev/dialtone/signaling/server/brokertest"
)

const waitFor = 5 * time.Second

// The cluster checks every Broker must pass, on a real Redis.
func TestCluster(t *testing.T) {
	brokertest.TestBroker(t, func(t *testing.T) (server.Broker, server.Broker) {
		addr := redistest.Start(t)
		mk := func() server.Broker {
			rdb := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2})
			t.Cleanup(func() { _ = rdb.Close() })
			return New(rdb, Config{Prefix: "test:"})
		}
		return mk(), mk()
	})
}

// Redis presence survives its TTL while the node refreshes it, and a node
// that leaves takes its users' presence with it.
func TestPresence(t *testing.T) {
	addr := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2})
	t.Cleanup(func() { _ = rdb.Close() })
	b := New(rdb, Config{PresenceTTL: 300 * time.Millisecond})
	ctx := context.Background()
	got := make(chan server.Envelope, 4)
	require.NoError(t, b.Join(ctx, "x", func(e server.Envelope) { got <- e }))
	require.ErrorIs(t, b.Join(ctx, "x", func(server.Envelope) {}), server.ErrNodeExists)

	prev, err := b.Claim(ctx, "erin", server.Presence{Node: "x", Conn: 7})
	require.NoError(t, err)
	assert.Equal(t, server.Presence{}, prev)
	// Outlive three TTLs: the refresher keeps the key.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		p, ok, err := b.Lookup(ctx, "erin")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, server.Presence{Node: "x", Conn: 7}, p)
		select {
		case <-time.After(50 * time.Millisecond):
		}
	}
	ok, err := b.SendUser(ctx, "erin", server.Envelope{Kind: server.EnvelopeDeliver, Origin: "x", Msg: &signaling.Message{Type: signaling.TypeSignal, To: "erin"}})
	require.NoError(t, err)
	require.True(t, ok)
	select {
	case e := <-got:
		assert.Equal(t, "erin", e.Msg.To)
	case <-time.After(waitFor):
		t.Fatal("no envelope")
	}
	// Release with a stale presence keeps the key; the right one drops it.
	require.NoError(t, b.Release(ctx, "erin", server.Presence{Node: "x", Conn: 6}))
	_, ok, _ = b.Lookup(ctx, "erin")
	assert.True(t, ok)
	_, err = b.Claim(ctx, "fred", server.Presence{Node: "x", Conn: 8})
	require.NoError(t, err)
	require.NoError(t, b.Leave(ctx, "x"))
	for _, u := range []string{"erin", "fred"} {
		_, ok, err = b.Lookup(ctx, u)
		require.NoError(t, err)
		assert.False(t, ok, u)
	}
}

// A node whose connection to Redis drops gets, once it is back, every
// envelope sent to it meanwhile, in order: delivery resumes from the last
// stream entry it read (pub/sub would have lost them).
func TestResumesAfterReconnect(t *testing.T) {
	direct, viaProxy, proxy := redisClientsWithProxy(t)
	b1 := New(direct, Config{Prefix: "test:"})
	b2 := New(viaProxy, Config{Prefix: "test:"})
	ctx := context.Background()
	got := make(chan server.Envelope, 16)
	require.NoError(t, b2.Join(ctx, "n2", func(e server.Envelope) { got <- e }))
	t.Cleanup(func() { _ = b2.Leave(ctx, "n2") })
	_, err := b2.Claim(ctx, "bob", server.Presence{Node: "n2", Conn: 1})
	require.NoError(t, err)

	sendSeq := func(i int) {
		t.Helper()
		data, err := json.Marshal(map[string]int{"seq": i})
		require.NoError(t, err)
		m := &signaling.Message{Type: signaling.TypeSignal, From: "alice", To: "bob", Call: "c", Data: data}
		ok, err := b1.SendUser(ctx, "bob", server.Envelope{Kind: server.EnvelopeDeliver, Origin: "n1", Msg: m})
		require.NoError(t, err)
		require.True(t, ok)
	}
	recvSeq := func(i int) {
		t.Helper()
		select {
		case e := <-got:
			require.NotNil(t, e.Msg)
			assert.JSONEq(t, fmt.Sprintf(`{"seq":%d}`, i), string(e.Msg.Data))
		case <-time.After(waitFor):
			require.FailNow(t, "no envelope", "seq %d", i)
		}
	}
	sendSeq(0)
	recvSeq(0)

	proxy.cut() // n2 loses Redis and cannot reconnect until resume
	for i := 1; i <= 5; i++ {
		sendSeq(i)
	}
	proxy.resume()
	for i := 1; i <= 5; i++ {
		recvSeq(i)
	}
	sendSeq(6)
	recvSeq(6)
}

// tcpProxy forwards connections to a target; cut drops them all and
// refuses new ones until resume.
type tcpProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	paused bool
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &tcpProxy{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		if p.paused {
			p.mu.Unlock()
			_ = c.Close()
			_ = up.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		for _, pair := range [][2]net.Conn{{c, up}, {up, c}} {
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				_, _ = io.Copy(pair[0], pair[1])
				_ = pair[0].Close()
				_ = pair[1].Close()
			}()
		}
	}
}

func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = true
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

// redisClientsWithProxy starts a redis-server and returns a client
// connected to it directly and one connected through a proxy the test can
// cut.
func redisClientsWithProxy(t *testing.T) (direct, viaProxy *redis.Client, proxy *tcpProxy) {
	addr := redistest.Start(t)
	proxy = startProxy(t, addr)
	direct = redis.NewClient(&redis.Options{Addr: addr, Protocol: 2})
	t.Cleanup(func() { _ = direct.Close() })
	viaProxy = redis.NewClient(&redis.Options{Addr: proxy.addr(), Protocol: 2})
	t.Cleanup(func() { _ = viaProxy.Close() })
	return direct, viaProxy, proxy
}

func (p *tcpProxy) resume() {
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
}

// A node that stops refreshing its liveness (it died without leaving)
// stops receiving after PresenceTTL: its users are then offline.
func TestDeadNode(t *testing.T) {
	direct, viaProxy, proxy := redisClientsWithProxy(t)
	cfg := Config{Prefix: "test:", PresenceTTL: 300 * time.Millisecond}
	b1, b2 := New(direct, cfg), New(viaProxy, cfg)
	ctx := context.Background()
	require.NoError(t, b2.Join(ctx, "n2", func(server.Envelope) {}))
	t.Cleanup(func() { _ = b2.Leave(ctx, "n2") })
	require.NoError(t, b1.Join(ctx, "n1", func(server.Envelope) {})) // the sender is a live node
	t.Cleanup(func() { _ = b1.Leave(ctx, "n1") })
	// The user's presence is kept by another node's claim: only n2's
	// liveness decides.
	_, err := b1.Claim(ctx, "bob", server.Presence{Node: "n2", Conn: 1})
	require.NoError(t, err)
	env := server.Envelope{Kind: server.EnvelopeDeliver, Origin: "n1", Msg: &signaling.Message{Type: signaling.TypeSignal, To: "bob"}}
	ok, err := b1.SendUser(ctx, "bob", env)
	require.NoError(t, err)
	require.True(t, ok)

	proxy.cut() // n2 is gone as far as Redis can tell
	require.Eventually(t, func() bool {
		ok, err := b1.SendUser(ctx, "bob", env)
		return err == nil && !ok
	}, waitFor, 20*time.Millisecond)
}

// A user who moves to another node gets there what was sent to its old
// node and not read by it (the old node died, or is cut off): the claim
// moves those envelopes, in order, and only those for that user.
func TestClaimMovesUnreadEnvelopes(t *testing.T) {
	direct, viaProxy, proxy := redisClientsWithProxy(t)
	b1 := New(direct, Config{Prefix: "test:"})
	b2 := New(viaProxy, Config{Prefix: "test:"})
	ctx := context.Background()
	got1 := make(chan server.Envelope, 16)
	require.NoError(t, b1.Join(ctx, "n1", func(e server.Envelope) { got1 <- e }))
	t.Cleanup(func() { _ = b1.Leave(ctx, "n1") })
	got2 := make(chan server.Envelope, 16)
	require.NoError(t, b2.Join(ctx, "n2", func(e server.Envelope) { got2 <- e }))
	t.Cleanup(func() { _ = b2.Leave(ctx, "n2") })
	for _, u := range []string{"bob", "carol"} {
		_, err := b2.Claim(ctx, u, server.Presence{Node: "n2", Conn: 1})
		require.NoError(t, err)
	}
	send := func(to string, seq int) {
		t.Helper()
		m := &signaling.Message{Type: signaling.TypeSignal, From: "alice", To: to, Call: "c", Data: []byte(fmt.Sprintf(`{"seq":%d}`, seq))}
		ok, err := b1.SendUser(ctx, to, server.Envelope{Kind: server.EnvelopeDeliver, Origin: "n1", Msg: m})
		require.NoError(t, err)
		require.True(t, ok)
	}
	recv := func(got chan server.Envelope, to string, seq int) {
		t.Helper()
		select {
		case e := <-got:
			require.NotNil(t, e.Msg)
			assert.Equal(t, to, e.Msg.To)
			assert.JSONEq(t, fmt.Sprintf(`{"seq":%d}`, seq), string(e.Msg.Data))
		case <-time.After(waitFor):
			require.FailNow(t, "no envelope", "%s seq %d", to, seq)
		}
	}
	send("bob", 0)
	recv(got2, "bob", 0) // read by n2: it is not moved

	proxy.cut() // n2 stops reading (as if killed); its liveness lives on
	send("bob", 1)
	send("carol", 2)
	send("bob", 3)
	prev, err := b1.Claim(ctx, "bob", server.Presence{Node: "n1", Conn: 9})
	require.NoError(t, err)
	assert.Equal(t, server.Presence{Node: "n2", Conn: 1}, prev)
	recv(got1, "bob", 1)
	recv(got1, "bob", 3)
	select {
	case e := <-got1:
		t.Fatalf("unexpected envelope %+v", e.Msg)
	case <-time.After(100 * time.Millisecond):
	}
	proxy.resume()
	recv(got2, "carol", 2) // carol's stays with n2
}
