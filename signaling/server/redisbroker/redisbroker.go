// Package redisbroker is a [server.Broker] on Redis, for a cluster of
// signaling servers in several processes. It lives apart from package
// server so that programs running a single node do not link a Redis
// client.
package redisbroker

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/dialtone-dev/dialtone/signaling/server"
)

// Config configures a Broker.
type Config struct {
	// Prefix starts every key name, so several clusters can share one
	// Redis. Default "dialtone:". With Redis Cluster, make it a hash tag
	// (e.g. "{dialtone}:"): delivery reaches a node's stream from a script
	// that looks the user up, so every key must live in one slot.
	Prefix string
	// PresenceTTL is how long a user's presence key, and a node's liveness
	// key, live unless their node refreshes them (every PresenceTTL/3): a
	// node that dies without leaving stops owning its users, and receiving
	// envelopes, after at most this long. Default 30 s.
	PresenceTTL time.Duration
	// StreamMaxLen bounds each node's delivery stream (approximately, XADD
	// MAXLEN ~): a node that loses its connection to Redis gets, once back,
	// every envelope sent meanwhile as long as no more than this many were
	// sent to it. Default 10000.
	StreamMaxLen int64
	// Logger receives the broker's logs. Default: discard.
	Logger *slog.Logger
}

// Broker is a server.Broker on Redis, for a cluster of Servers in several
// processes:
//
//   - presence: key <prefix>user:<user> = "<conn>|<node>", with a TTL the
//     claiming node refreshes; <prefix>alive:<node> says the node runs.
//   - delivery: one stream per node, <prefix>stream:<node>, plus
//     <prefix>stream-all for broadcasts. SendUser looks the user up and
//     appends to its node's stream in one server-side script, so a message
//     never goes to a node the user has already left for another one.
//
// Each node reads its streams from the last entry it read, so envelopes
// sent while its connection to Redis was down are delivered, in order,
// when it is back (within StreamMaxLen), instead of being lost as with
// pub/sub. A node records how far it has read its stream; a node that
// takes a user over (Claim) moves the envelopes for that user the
// previous node has not read, so what was sent to a user whose node died
// reaches it on its new node. A node starts from an empty stream of its own: a restarted node
// does not replay what was meant for its previous connections. The client
// is owned by the caller: Broker never closes it.
type Broker struct {
	rdb redis.UniversalClient
	cfg Config

	mu     sync.Mutex
	nodes  map[string]*redisNode
	claims map[string]server.Presence // presences claimed through this broker, refreshed
}

type redisNode struct {
	stop chan struct{}
	kick chan struct{} // (capacity 1) asks refreshLoop to refresh now
	wg   sync.WaitGroup
}

var _ server.Broker = (*Broker)(nil)

// New returns a Broker using rdb (e.g. redis.NewClient).
func New(rdb redis.UniversalClient, cfg Config) *Broker {
	if cfg.Prefix == "" {
		cfg.Prefix = "dialtone:"
	}
	if cfg.PresenceTTL <= 0 {
		cfg.PresenceTTL = 30 * time.Second
	}
	if cfg.StreamMaxLen <= 0 {
		cfg.StreamMaxLen = 10000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Broker{rdb: rdb, cfg: cfg, nodes: make(map[string]*redisNode), claims: make(map[string]server.Presence)}
}

// Scripts keep look-up and action atomic on the Redis side. In pipelines
// they go by Eval (EVALSHA cannot fall back to EVAL there).
var (
	// KEYS[1] presence key; ARGV[1] value, ARGV[2] TTL ms, ARGV[3]
	// stream key prefix, ARGV[4] read-position key prefix, ARGV[5] the
	// user, ARGV[6] the claiming node, ARGV[7] stream max length, ARGV[8]
	// stream TTL ms. Returns the old value. When the user was on another
	// node, the envelopes for the user that node has not read yet (it may
	// have died) move to the claiming node's stream, in order.
	scriptClaim = redis.NewScript(`
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if not old then return old end
local i = string.find(old, '|', 1, true)
if not i then return old end
local prev = string.sub(old, i + 1)
if prev == ARGV[6] then return old end
local src = ARGV[3] .. prev
local from = redis.call('GET', ARGV[4] .. prev) or '0-0'
local moved = 0
for _, e in ipairs(redis.call('XRANGE', src, '(' .. from, '+')) do
  local payload = e[2][2]
  local ok, env = pcall(cjson.decode, payload)
  if ok and type(env) == 'table' and env.kind == 'deliver' and type(env.msg) == 'table' and env.msg.to == ARGV[5] then
    redis.call('XADD', ARGV[3] .. ARGV[6], 'MAXLEN', '~', ARGV[7], '*', 'e', payload)
    redis.call('XDEL', src, e[1])
    moved = moved + 1
  end
end
if moved > 0 then redis.call('PEXPIRE', ARGV[3] .. ARGV[6], ARGV[8]) end
return old`)
	// KEYS[1] presence key; ARGV[1] expected value.
	scriptRelease = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
	// KEYS[1] presence key; ARGV[1] expected value, ARGV[2] TTL ms. 0 when
	// another connection owns the key now.
	scriptRefresh = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0`)
	// KEYS[1] presence key; ARGV[1] stream key prefix, ARGV[2] liveness
	// key prefix, ARGV[3] payload, ARGV[4] stream max length, ARGV[5]
	// stream TTL ms, ARGV[6] the sending node's liveness key, ARGV[7] the
	// recovery key. 1 when appended to the user's node's stream, 0 when
	// the user is connected nowhere (or its node is gone), -1 when the
	// user has no presence but Redis lost its data not long ago (the
	// sender's own liveness key is missing, or a node saw its own missing
	// and set the recovery key): the user's node may not have put its
	// presence back yet.
	scriptSendUser = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then
  if redis.call('EXISTS', ARGV[6]) == 0 or redis.call('EXISTS', ARGV[7]) == 1 then return -1 end
  return 0
end
local i = string.find(v, '|', 1, true)
if not i then return 0 end
local node = string.sub(v, i + 1)
if redis.call('EXISTS', ARGV[2] .. node) == 0 then return 0 end
local stream = ARGV[1] .. node
redis.call('XADD', stream, 'MAXLEN', '~', ARGV[4], '*', 'e', ARGV[3])
redis.call('PEXPIRE', stream, ARGV[5])
return 1`)
	// KEYS[1] the node's liveness key, KEYS[2] the recovery key; ARGV[1]
	// TTL ms, ARGV[2] recovery TTL ms. Refreshes the liveness key; when it
	// was missing, Redis lost its data (a restart without persistence):
	// sets the recovery key and returns 0.
	scriptAlive = redis.NewScript(`
local had = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
if had == 0 then redis.call('SET', KEYS[2], '1', 'PX', ARGV[2]) end
return had`)
	// KEYS[1] stream, KEYS[2] liveness key of its node (or none: always);
	// ARGV[1] payload, ARGV[2] max length, ARGV[3] stream TTL ms.
	scriptAppend = redis.NewScript(`
if KEYS[2] and redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`)
)

func (b *Broker) userKey(user string) string    { return b.cfg.Prefix + "user:" + user }
func (b *Broker) streamPrefix() string          { return b.cfg.Prefix + "stream:" }
func (b *Broker) nodeStream(node string) string { return b.streamPrefix() + node }
func (b *Broker) allStream() string             { return b.cfg.Prefix + "stream-all" }
func (b *Broker) alivePrefix() string           { return b.cfg.Prefix + "alive:" }
func (b *Broker) aliveKey(node string) string   { return b.alivePrefix() + node }
func (b *Broker) recoveryKey() string           { return b.cfg.Prefix + "recovering" }
func (b *Broker) readPrefix() string            { return b.cfg.Prefix + "read:" }
func (b *Broker) readKey(node string) string    { return b.readPrefix() + node }

// recoveryTTL is how long after a node finds Redis emptied the recovery
// key lives: until every live node has refreshed at least once more and
// so put its presences back.
func (b *Broker) recoveryTTL() int64 { return (2 * b.cfg.PresenceTTL / 3).Milliseconds() }

// ErrStateLost is SendUser's error while Redis has lately lost its data (a
// restart without persistence) and the user's presence is missing: the
// user's node may not have put it back yet. Try again shortly; after
// PresenceTTL the user is reported connected nowhere.
var ErrStateLost = errors.New("redisbroker: redis lost its data lately; presence not restored yet")

// streamTTL keeps a stream whose node died without leaving from staying
// forever: every append extends it.
func (b *Broker) streamTTL() int64 { return (10 * b.cfg.PresenceTTL).Milliseconds() }

func encodePresence(p server.Presence) string {
	return strconv.FormatUint(p.Conn, 10) + "|" + p.Node
}

func decodePresence(v string) (server.Presence, bool) {
	conn, node, ok := strings.Cut(v, "|")
	if !ok {
		return server.Presence{}, false
	}
	id, err := strconv.ParseUint(conn, 10, 64)
	if err != nil {
		return server.Presence{}, false
	}
	return server.Presence{Node: node, Conn: id}, true
}

// Join implements server.Broker: it starts reading the node's stream (emptied:
// a node with this ID before is gone) and the broadcast stream from its
// current end, and marks the node alive.
func (b *Broker) Join(ctx context.Context, node string, deliver func(server.Envelope)) error {
	b.mu.Lock()
	if _, ok := b.nodes[node]; ok {
		b.mu.Unlock()
		return server.ErrNodeExists
	}
	n := &redisNode{stop: make(chan struct{}), kick: make(chan struct{}, 1)}
	b.nodes[node] = n
	b.mu.Unlock()

	fail := func(err error) error {
		b.mu.Lock()
		delete(b.nodes, node)
		b.mu.Unlock()
		return err
	}
	var last *redis.XMessageSliceCmd
	_, err := b.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, b.nodeStream(node))
		p.Set(ctx, b.readKey(node), "0-0", time.Duration(b.streamTTL())*time.Millisecond)
		p.Set(ctx, b.aliveKey(node), "1", b.cfg.PresenceTTL)
		last = p.XRevRangeN(ctx, b.allStream(), "+", "-", 1)
		return nil
	})
	if err != nil {
		return fail(err)
	}
	allFrom := "0-0"
	if msgs := last.Val(); len(msgs) > 0 {
		allFrom = msgs[0].ID
	}
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		b.readLoop(node, n, deliver, "0-0", allFrom)
	}()
	go func() {
		defer n.wg.Done()
		b.refreshLoop(node, n)
	}()
	return nil
}

// How long one XREAD waits for entries: also how long Leave may wait for
// the reader to notice it should stop.
const streamBlock = 200 * time.Millisecond

// readLoop reads the node's and the broadcast streams from the given IDs
// on, delivering every envelope in order, until stop. After an error
// (Redis unreachable, connection dropped) it retries with backoff from the
// last entry it read, so nothing sent meanwhile is lost; once reading works
// again it asks for a presence refresh at once, which puts the node's
// presences back if Redis restarted empty.
func (b *Broker) readLoop(node string, n *redisNode, deliver func(server.Envelope), nodeFrom, allFrom string) {
	stop := n.stop
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	streams := []string{b.nodeStream(node), b.allStream(), nodeFrom, allFrom}
	backoff := signaling.Backoff{Initial: 50 * time.Millisecond, Max: 2 * time.Second}
	failures := 0
	for {
		select {
		case <-stop:
			return
		default:
		}
		res, err := b.rdb.XRead(ctx, &redis.XReadArgs{Streams: streams, Count: 256, Block: streamBlock}).Result()
		if err == nil || errors.Is(err, redis.Nil) {
			if failures > 0 {
				select {
				case n.kick <- struct{}{}:
				default:
				}
			}
			failures = 0
		}
		if errors.Is(err, redis.Nil) {
			continue // nothing new
		}
		if err != nil {
			failures++
			b.cfg.Logger.Warn("signaling: reading the cluster stream", "node", node, "attempt", failures, "err", err)
			t := time.NewTimer(backoff.Delay(failures, rand.Float64()))
			select {
			case <-stop:
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		for _, st := range res {
			at := 2 // the node stream's ID
			if st.Stream == streams[1] {
				at = 3
			}
			if at == 2 && len(st.Messages) > 0 {
				// Recorded before delivering: a node taking one of our
				// users over moves only envelopes past it (one that
				// claims between our read and this record may move an
				// envelope we deliver too: a duplicate, never a loss).
				last := st.Messages[len(st.Messages)-1].ID
				if err := b.rdb.Set(ctx, b.readKey(node), last, time.Duration(b.streamTTL())*time.Millisecond).Err(); err != nil {
					b.cfg.Logger.Warn("signaling: recording the stream position", "node", node, "err", err)
				}
			}
			for _, m := range st.Messages {
				streams[at] = m.ID
				payload, _ := m.Values["e"].(string)
				var env server.Envelope
				if err := json.Unmarshal([]byte(payload), &env); err != nil {
					b.cfg.Logger.Warn("signaling: bad envelope from redis", "stream", st.Stream, "err", err)
					continue
				}
				deliver(env)
			}
		}
	}
}

// How often a node checks that its liveness key still exists: a Redis
// restarted without its data is noticed within this long (go-redis
// reconnects by itself, so the node sees no error), and the node's
// presences put back.
const watchEvery = time.Second

// refreshLoop keeps the node's presence keys alive: every PresenceTTL/3,
// at once when asked (kick) or when the liveness key has vanished, and
// after a failure again soon, with backoff. The refresh also puts back
// presences Redis lost.
func (b *Broker) refreshLoop(node string, n *redisNode) {
	period := b.cfg.PresenceTTL / 3
	backoff := signaling.Backoff{Initial: 50 * time.Millisecond, Max: period}
	t := time.NewTimer(period)
	defer t.Stop()
	watch := time.NewTicker(min(watchEvery, period))
	defer watch.Stop()
	failures := 0
	for {
		select {
		case <-n.stop:
			return
		case <-n.kick:
			t.Stop()
		case <-t.C:
		case <-watch.C:
			ctx, cancel := context.WithTimeout(context.Background(), watchEvery)
			k, err := b.rdb.Exists(ctx, b.aliveKey(node)).Result()
			cancel()
			if err != nil || k == 1 {
				continue
			}
			t.Stop()
		}
		if b.refresh(node) {
			failures = 0
			t.Reset(period)
		} else {
			failures++
			t.Reset(backoff.Delay(failures, rand.Float64()))
		}
	}
}

// refresh refreshes the node's liveness and the presences it claimed,
// putting back those Redis lost; false when Redis could not be reached.
func (b *Broker) refresh(node string) bool {
	b.mu.Lock()
	mine := make(map[string]server.Presence)
	for u, p := range b.claims {
		if p.Node == node {
			mine[u] = p
		}
	}
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.PresenceTTL/3)
	cmds := make(map[string]*redis.Cmd, len(mine))
	var alive *redis.Cmd
	_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		alive = scriptAlive.Eval(ctx, p, []string{b.aliveKey(node), b.recoveryKey()}, b.cfg.PresenceTTL.Milliseconds(), b.recoveryTTL())
		for u, pr := range mine {
			cmds[u] = scriptRefresh.Eval(ctx, p, []string{b.userKey(u)}, encodePresence(pr), b.cfg.PresenceTTL.Milliseconds())
		}
		return nil
	})
	cancel()
	if err != nil && !errors.Is(err, redis.Nil) {
		b.cfg.Logger.Warn("signaling: presence refresh", "node", node, "err", err)
		return false
	}
	if had, err := alive.Int(); err == nil && had == 0 {
		b.cfg.Logger.Warn("signaling: redis lost the cluster's keys; presences put back", "node", node, "users", len(mine))
	}
	b.mu.Lock()
	for u, cmd := range cmds {
		if n, err := cmd.Int(); err == nil && n == 0 && b.claims[u] == mine[u] {
			delete(b.claims, u) // taken over elsewhere
		}
	}
	b.mu.Unlock()
	return true
}

// Leave implements server.Broker: it unsubscribes and removes the node's
// presence keys.
func (b *Broker) Leave(ctx context.Context, node string) error {
	b.mu.Lock()
	n := b.nodes[node]
	delete(b.nodes, node)
	mine := make(map[string]server.Presence)
	for u, p := range b.claims {
		if p.Node == node {
			mine[u] = p
			delete(b.claims, u)
		}
	}
	b.mu.Unlock()
	if n == nil {
		return nil
	}
	close(n.stop)
	n.wg.Wait()
	_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, b.aliveKey(node), b.nodeStream(node), b.readKey(node))
		for u, pr := range mine {
			scriptRelease.Eval(ctx, p, []string{b.userKey(u)}, encodePresence(pr))
		}
		return nil
	})
	if errors.Is(err, redis.Nil) {
		err = nil
	}
	return err
}

// Claim implements server.Broker.
func (b *Broker) Claim(ctx context.Context, user string, p server.Presence) (server.Presence, error) {
	v, err := scriptClaim.Run(ctx, b.rdb, []string{b.userKey(user)}, encodePresence(p), b.cfg.PresenceTTL.Milliseconds(),
		b.streamPrefix(), b.readPrefix(), user, p.Node, b.cfg.StreamMaxLen, b.streamTTL()).Text()
	if err != nil && !errors.Is(err, redis.Nil) {
		return server.Presence{}, err
	}
	b.mu.Lock()
	b.claims[user] = p
	b.mu.Unlock()
	prev, _ := decodePresence(v)
	return prev, nil
}

// Release implements server.Broker.
func (b *Broker) Release(ctx context.Context, user string, p server.Presence) error {
	b.mu.Lock()
	if b.claims[user] == p {
		delete(b.claims, user)
	}
	b.mu.Unlock()
	return scriptRelease.Run(ctx, b.rdb, []string{b.userKey(user)}, encodePresence(p)).Err()
}

// Lookup implements server.Broker.
func (b *Broker) Lookup(ctx context.Context, user string) (server.Presence, bool, error) {
	v, err := b.rdb.Get(ctx, b.userKey(user)).Result()
	if errors.Is(err, redis.Nil) {
		return server.Presence{}, false, nil
	}
	if err != nil {
		return server.Presence{}, false, err
	}
	p, ok := decodePresence(v)
	return p, ok, nil
}

// SendUser implements server.Broker.
func (b *Broker) SendUser(ctx context.Context, user string, env server.Envelope) (bool, error) {
	payload, err := json.Marshal(env)
	if err != nil {
		return false, err
	}
	n, err := scriptSendUser.Run(ctx, b.rdb, []string{b.userKey(user)},
		b.streamPrefix(), b.alivePrefix(), payload, b.cfg.StreamMaxLen, b.streamTTL(),
		b.aliveKey(env.Origin), b.recoveryKey()).Int()
	if err != nil {
		return false, err
	}
	if n < 0 {
		b.mu.Lock()
		if own := b.nodes[env.Origin]; own != nil {
			select {
			case own.kick <- struct{}{}: // put this node's keys back now
			default:
			}
		}
		b.mu.Unlock()
		return false, ErrStateLost
	}
	return n > 0, nil
}

// SendNode implements server.Broker.
func (b *Broker) SendNode(ctx context.Context, node string, env server.Envelope) error {
	payload, err := json.Marshal(env)
	if err != nil {
		return err
	}
	return scriptAppend.Run(ctx, b.rdb, []string{b.nodeStream(node), b.aliveKey(node)},
		payload, b.cfg.StreamMaxLen, b.streamTTL()).Err()
}

// Broadcast implements server.Broker.
func (b *Broker) Broadcast(ctx context.Context, env server.Envelope) error {
	payload, err := json.Marshal(env)
	if err != nil {
		return err
	}
	return scriptAppend.Run(ctx, b.rdb, []string{b.allStream()},
		payload, b.cfg.StreamMaxLen, b.streamTTL()).Err()
}
