package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/internal/testenv"
	"github.com/dialtone-dev/dialtone/signaling"
)

// brokerPair returns the brokers of a two-node cluster.
type brokerPair func(t *testing.T) (Broker, Broker)

func memoryPair(t *testing.T) (Broker, Broker) {
	b := NewMemoryBroker()
	return b, b
}

func redisPair(t *testing.T) (Broker, Broker) {
	addr := startRedis(t)
	mk := func() Broker {
		rdb := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2})
		t.Cleanup(func() { _ = rdb.Close() })
		return NewRedisBroker(rdb, RedisBrokerConfig{Prefix: "test:"})
	}
	return mk(), mk()
}

// startRedis runs a private redis-server on a free loopback port for the
// test and returns its address. Without redis-server the test fails in CI
// and is skipped elsewhere (testenv).
func startRedis(t *testing.T) string {
	t.Helper()
	bin := testenv.Program(t, "redis-server")
	for attempt := 0; attempt < 3; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		port := l.Addr().(*net.TCPAddr).Port
		require.NoError(t, l.Close())
		dir := t.TempDir()
		cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
			"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no")
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
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if waitRedis(addr, exited) {
			t.Cleanup(stop)
			return addr
		}
		stop() // port taken meanwhile, or it did not start: try another
	}
	t.Fatal("redis-server did not start")
	return ""
}

// waitRedis polls addr with PING until it answers, the process exits, or 5 s.
func waitRedis(addr string, exited <-chan struct{}) bool {
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

// newNodes starts two dev-mode nodes on the brokers; cfg applies to node 1.
func newNodes(t *testing.T, pair brokerPair, cfg1 Config) (*Server, *Server) {
	t.Helper()
	b1, b2 := pair(t)
	cfg1.Broker, cfg1.NodeID = b1, "n1"
	n1 := newTestServer(t, cfg1)
	n2 := newTestServer(t, Config{Broker: b2, NodeID: "n2"})
	require.NoError(t, n1.hub.brokerErr)
	require.NoError(t, n2.hub.brokerErr)
	return n1, n2
}

var brokers = []struct {
	name string
	pair brokerPair
}{
	{"memory", memoryPair},
	{"redis", redisPair},
}

// A call between users on two nodes: every message crosses in order, from
// is set by the sender's node, and the caller hears `waiting`.
func TestClusterCallAcrossNodes(t *testing.T) {
	for _, bk := range brokers {
		t.Run(bk.name, func(t *testing.T) {
			n1, n2 := newNodes(t, bk.pair, Config{})
			alice := connectLocal(t, n1, "alice", LocalOptions{})
			bob := connectLocal(t, n2, "bob", LocalOptions{})

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
		})
	}
}

// A user connected nowhere is `offline`, from either node.
func TestClusterOffline(t *testing.T) {
	for _, bk := range brokers {
		t.Run(bk.name, func(t *testing.T) {
			n1, _ := newNodes(t, bk.pair, Config{})
			alice := connectLocal(t, n1, "alice", LocalOptions{})
			send(t, alice, msg(t, signaling.TypeInvite, "carol", "c2", nil))
			off := recvType(t, alice, signaling.TypeOffline)
			assert.Equal(t, "carol", off.From)
			assert.Equal(t, "c2", off.Call)
			_, ok, err := n1.Presence(context.Background(), "carol")
			require.NoError(t, err)
			assert.False(t, ok)
		})
	}
}

// A user connecting to the other node replaces its connection on the first
// one; messages then reach the new connection, and the old one's release
// does not erase the new presence.
func TestClusterReplaceAcrossNodes(t *testing.T) {
	for _, bk := range brokers {
		t.Run(bk.name, func(t *testing.T) {
			n1, n2 := newNodes(t, bk.pair, Config{})
			alice := connectLocal(t, n1, "alice", LocalOptions{})
			old := connectLocal(t, n2, "bob", LocalOptions{})
			newer := connectLocal(t, n1, "bob", LocalOptions{})

			assert.Equal(t, signaling.CodeReplaced, recvError(t, old).Code)
			st := waitStatus(t, old, signaling.StateClosed)
			assert.ErrorIs(t, st.Err, signaling.ErrReplaced)
			assert.Equal(t, uint64(1), n2.Stats().Replaced)

			send(t, alice, msg(t, signaling.TypeInvite, "bob", "c3", nil))
			assert.Equal(t, "alice", recvType(t, newer, signaling.TypeInvite).From)
			recvType(t, alice, signaling.TypeWaiting)

			// bob back on n2: n1's connection goes, and the presence
			// follows even after n1 released the old one.
			again := connectLocal(t, n2, "bob", LocalOptions{})
			assert.Equal(t, signaling.CodeReplaced, recvError(t, newer).Code)
			waitStatus(t, newer, signaling.StateClosed)
			require.Eventually(t, func() bool { return n1.Stats().Replaced == 1 && !n1.Online("bob") }, waitFor, 5*time.Millisecond)
			send(t, alice, msg(t, signaling.TypeSignal, "bob", "c3", map[string]int{"seq": 1}))
			assert.Equal(t, "c3", recvType(t, again, signaling.TypeSignal).Call)
			p, ok, err := n1.Presence(context.Background(), "bob")
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, "n2", p.Node)
		})
	}
}

// An invite pushed to a user connected nowhere stays on the caller's node
// and reaches the user, with the later messages of the call and in order,
// when it connects to another node.
func TestClusterPendingDeliveredOnOtherNode(t *testing.T) {
	for _, bk := range brokers {
		t.Run(bk.name, func(t *testing.T) {
			pushed := make(chan Push, 1)
			n1, n2 := newNodes(t, bk.pair, Config{Pusher: PusherFunc(func(_ context.Context, p Push) error {
				pushed <- p
				return nil
			})})
			alice := connectLocal(t, n1, "alice", LocalOptions{})
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

			dave := connectLocal(t, n2, "dave", LocalOptions{})
			assert.Equal(t, "alice", recvType(t, dave, signaling.TypeInvite).From)
			// Messages sent after dave connected follow the pending ones.
			send(t, alice, msg(t, signaling.TypeSignal, "dave", "c4", map[string]int{"seq": 5}))
			for i := 0; i < 6; i++ {
				m := recvType(t, dave, signaling.TypeSignal)
				assert.JSONEq(t, fmt.Sprintf(`{"seq":%d}`, i), string(m.Data))
			}
			assert.Equal(t, uint64(6), n1.Stats().Delivered)
			noMessage(t, alice, 50*time.Millisecond) // `waiting` was already sent once
		})
	}
}

// Redis presence survives its TTL while the node refreshes it, and a node
// that leaves takes its users' presence with it.
func TestRedisBrokerPresence(t *testing.T) {
	addr := startRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2})
	t.Cleanup(func() { _ = rdb.Close() })
	b := NewRedisBroker(rdb, RedisBrokerConfig{PresenceTTL: 300 * time.Millisecond})
	ctx := context.Background()
	got := make(chan Envelope, 4)
	require.NoError(t, b.Join(ctx, "x", func(e Envelope) { got <- e }))
	require.ErrorIs(t, b.Join(ctx, "x", func(Envelope) {}), ErrNodeExists)

	prev, err := b.Claim(ctx, "erin", Presence{Node: "x", Conn: 7})
	require.NoError(t, err)
	assert.Equal(t, Presence{}, prev)
	// Outlive three TTLs: the refresher keeps the key.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		p, ok, err := b.Lookup(ctx, "erin")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, Presence{Node: "x", Conn: 7}, p)
		select {
		case <-time.After(50 * time.Millisecond):
		}
	}
	ok, err := b.SendUser(ctx, "erin", Envelope{Kind: EnvelopeDeliver, Origin: "x", Msg: &signaling.Message{Type: signaling.TypeSignal, To: "erin"}})
	require.NoError(t, err)
	require.True(t, ok)
	select {
	case e := <-got:
		assert.Equal(t, "erin", e.Msg.To)
	case <-time.After(waitFor):
		t.Fatal("no envelope")
	}
	// Release with a stale presence keeps the key; the right one drops it.
	require.NoError(t, b.Release(ctx, "erin", Presence{Node: "x", Conn: 6}))
	_, ok, _ = b.Lookup(ctx, "erin")
	assert.True(t, ok)
	_, err = b.Claim(ctx, "fred", Presence{Node: "x", Conn: 8})
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
func TestRedisBrokerResumesAfterReconnect(t *testing.T) {
	direct, viaProxy, proxy := redisClientsWithProxy(t)
	b1 := NewRedisBroker(direct, RedisBrokerConfig{Prefix: "test:"})
	b2 := NewRedisBroker(viaProxy, RedisBrokerConfig{Prefix: "test:"})
	ctx := context.Background()
	got := make(chan Envelope, 16)
	require.NoError(t, b2.Join(ctx, "n2", func(e Envelope) { got <- e }))
	t.Cleanup(func() { _ = b2.Leave(ctx, "n2") })
	_, err := b2.Claim(ctx, "bob", Presence{Node: "n2", Conn: 1})
	require.NoError(t, err)

	sendSeq := func(i int) {
		t.Helper()
		data, err := json.Marshal(map[string]int{"seq": i})
		require.NoError(t, err)
		m := &signaling.Message{Type: signaling.TypeSignal, From: "alice", To: "bob", Call: "c", Data: data}
		ok, err := b1.SendUser(ctx, "bob", Envelope{Kind: EnvelopeDeliver, Origin: "n1", Msg: m})
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
	addr := startRedis(t)
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
func TestRedisBrokerDeadNode(t *testing.T) {
	direct, viaProxy, proxy := redisClientsWithProxy(t)
	cfg := RedisBrokerConfig{Prefix: "test:", PresenceTTL: 300 * time.Millisecond}
	b1, b2 := NewRedisBroker(direct, cfg), NewRedisBroker(viaProxy, cfg)
	ctx := context.Background()
	require.NoError(t, b2.Join(ctx, "n2", func(Envelope) {}))
	t.Cleanup(func() { _ = b2.Leave(ctx, "n2") })
	// The user's presence is kept by another node's claim: only n2's
	// liveness decides.
	_, err := b1.Claim(ctx, "bob", Presence{Node: "n2", Conn: 1})
	require.NoError(t, err)
	env := Envelope{Kind: EnvelopeDeliver, Origin: "n1", Msg: &signaling.Message{Type: signaling.TypeSignal, To: "bob"}}
	ok, err := b1.SendUser(ctx, "bob", env)
	require.NoError(t, err)
	require.True(t, ok)

	proxy.cut() // n2 is gone as far as Redis can tell
	require.Eventually(t, func() bool {
		ok, err := b1.SendUser(ctx, "bob", env)
		return err == nil && !ok
	}, waitFor, 20*time.Millisecond)
}
