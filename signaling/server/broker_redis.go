package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisBrokerConfig configures a RedisBroker.
type RedisBrokerConfig struct {
	// Prefix starts every key and channel name, so several clusters can
	// share one Redis. Default "dialtone:".
	Prefix string
	// PresenceTTL is how long a user's presence key lives unless its node
	// refreshes it (every PresenceTTL/3): a node that dies without leaving
	// stops owning its users after at most this long. Default 30 s.
	PresenceTTL time.Duration
	// Logger receives the broker's logs. Default: discard.
	Logger *slog.Logger
}

// RedisBroker is a Broker on Redis, for a cluster of Servers in several
// processes:
//
//   - presence: key <prefix>user:<user> = "<conn>|<node>", with a TTL the
//     claiming node refreshes;
//   - delivery: one pub/sub channel per node, <prefix>node:<node>, plus
//     <prefix>all for broadcasts. SendUser looks the user up and publishes
//     in one server-side script, so a message never goes to a node the
//     user has already left for another one.
//
// Pub/sub is at-most-once: an envelope published while a node is
// reconnecting to Redis is lost (a signaling client recovers by its own
// timers, as after any network loss). The client is owned by the caller:
// RedisBroker never closes it.
type RedisBroker struct {
	rdb redis.UniversalClient
	cfg RedisBrokerConfig

	mu     sync.Mutex
	nodes  map[string]*redisNode
	claims map[string]Presence // presences claimed through this broker, refreshed
}

type redisNode struct {
	ps   *redis.PubSub
	stop chan struct{}
	wg   sync.WaitGroup
}

var _ Broker = (*RedisBroker)(nil)

// NewRedisBroker returns a Broker using rdb (e.g. redis.NewClient).
func NewRedisBroker(rdb redis.UniversalClient, cfg RedisBrokerConfig) *RedisBroker {
	if cfg.Prefix == "" {
		cfg.Prefix = "dialtone:"
	}
	if cfg.PresenceTTL <= 0 {
		cfg.PresenceTTL = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &RedisBroker{rdb: rdb, cfg: cfg, nodes: make(map[string]*redisNode), claims: make(map[string]Presence)}
}

// Scripts keep look-up and action atomic on the Redis side. In pipelines
// they go by Eval (EVALSHA cannot fall back to EVAL there).
var (
	// KEYS[1] presence key; ARGV[1] value, ARGV[2] TTL ms. Returns the old value.
	scriptClaim = redis.NewScript(`
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
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
	// KEYS[1] presence key; ARGV[1] node channel prefix, ARGV[2] payload.
	// Returns the number of subscribers that got it (0: nobody, offline).
	scriptSendUser = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local i = string.find(v, '|', 1, true)
if not i then return 0 end
return redis.call('PUBLISH', ARGV[1] .. string.sub(v, i + 1), ARGV[2])`)
)

func (b *RedisBroker) userKey(user string) string     { return b.cfg.Prefix + "user:" + user }
func (b *RedisBroker) nodePrefix() string             { return b.cfg.Prefix + "node:" }
func (b *RedisBroker) nodeChannel(node string) string { return b.nodePrefix() + node }
func (b *RedisBroker) allChannel() string             { return b.cfg.Prefix + "all" }

func encodePresence(p Presence) string {
	return strconv.FormatUint(p.Conn, 10) + "|" + p.Node
}

func decodePresence(v string) (Presence, bool) {
	conn, node, ok := strings.Cut(v, "|")
	if !ok {
		return Presence{}, false
	}
	id, err := strconv.ParseUint(conn, 10, 64)
	if err != nil {
		return Presence{}, false
	}
	return Presence{Node: node, Conn: id}, true
}

// Join implements Broker: it subscribes to the node's channel and the
// broadcast channel and returns once Redis confirmed both.
func (b *RedisBroker) Join(ctx context.Context, node string, deliver func(Envelope)) error {
	b.mu.Lock()
	if _, ok := b.nodes[node]; ok {
		b.mu.Unlock()
		return ErrNodeExists
	}
	n := &redisNode{stop: make(chan struct{})}
	b.nodes[node] = n
	b.mu.Unlock()

	n.ps = b.rdb.Subscribe(ctx, b.nodeChannel(node), b.allChannel())
	for confirmed := 0; confirmed < 2; {
		v, err := n.ps.Receive(ctx)
		if err != nil {
			_ = n.ps.Close()
			b.mu.Lock()
			delete(b.nodes, node)
			b.mu.Unlock()
			return err
		}
		if _, ok := v.(*redis.Subscription); ok {
			confirmed++
		}
	}
	ch := n.ps.Channel(redis.WithChannelSize(1024))
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		for msg := range ch {
			var env Envelope
			if err := json.Unmarshal([]byte(msg.Payload), &env); err != nil {
				b.cfg.Logger.Warn("signaling: bad envelope from redis", "channel", msg.Channel, "err", err)
				continue
			}
			deliver(env)
		}
	}()
	go func() {
		defer n.wg.Done()
		b.refreshLoop(node, n.stop)
	}()
	return nil
}

// refreshLoop keeps the node's presence keys alive.
func (b *RedisBroker) refreshLoop(node string, stop <-chan struct{}) {
	t := time.NewTicker(b.cfg.PresenceTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		b.mu.Lock()
		mine := make(map[string]Presence)
		for u, p := range b.claims {
			if p.Node == node {
				mine[u] = p
			}
		}
		b.mu.Unlock()
		if len(mine) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), b.cfg.PresenceTTL/3)
		cmds := make(map[string]*redis.Cmd, len(mine))
		_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for u, pr := range mine {
				cmds[u] = scriptRefresh.Eval(ctx, p, []string{b.userKey(u)}, encodePresence(pr), b.cfg.PresenceTTL.Milliseconds())
			}
			return nil
		})
		cancel()
		if err != nil && !errors.Is(err, redis.Nil) {
			b.cfg.Logger.Warn("signaling: presence refresh", "node", node, "err", err)
			continue
		}
		b.mu.Lock()
		for u, cmd := range cmds {
			if n, err := cmd.Int(); err == nil && n == 0 && b.claims[u] == mine[u] {
				delete(b.claims, u) // taken over elsewhere
			}
		}
		b.mu.Unlock()
	}
}

// Leave implements Broker: it unsubscribes and removes the node's
// presence keys.
func (b *RedisBroker) Leave(ctx context.Context, node string) error {
	b.mu.Lock()
	n := b.nodes[node]
	delete(b.nodes, node)
	mine := make(map[string]Presence)
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
	err := n.ps.Close()
	n.wg.Wait()
	if len(mine) > 0 {
		_, perr := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for u, pr := range mine {
				scriptRelease.Eval(ctx, p, []string{b.userKey(u)}, encodePresence(pr))
			}
			return nil
		})
		if perr != nil && !errors.Is(perr, redis.Nil) && err == nil {
			err = perr
		}
	}
	return err
}

// Claim implements Broker.
func (b *RedisBroker) Claim(ctx context.Context, user string, p Presence) (Presence, error) {
	v, err := scriptClaim.Run(ctx, b.rdb, []string{b.userKey(user)}, encodePresence(p), b.cfg.PresenceTTL.Milliseconds()).Text()
	if err != nil && !errors.Is(err, redis.Nil) {
		return Presence{}, err
	}
	b.mu.Lock()
	b.claims[user] = p
	b.mu.Unlock()
	prev, _ := decodePresence(v)
	return prev, nil
}

// Release implements Broker.
func (b *RedisBroker) Release(ctx context.Context, user string, p Presence) error {
	b.mu.Lock()
	if b.claims[user] == p {
		delete(b.claims, user)
	}
	b.mu.Unlock()
	return scriptRelease.Run(ctx, b.rdb, []string{b.userKey(user)}, encodePresence(p)).Err()
}

// Lookup implements Broker.
func (b *RedisBroker) Lookup(ctx context.Context, user string) (Presence, bool, error) {
	v, err := b.rdb.Get(ctx, b.userKey(user)).Result()
	if errors.Is(err, redis.Nil) {
		return Presence{}, false, nil
	}
	if err != nil {
		return Presence{}, false, err
	}
	p, ok := decodePresence(v)
	return p, ok, nil
}

// SendUser implements Broker.
func (b *RedisBroker) SendUser(ctx context.Context, user string, env Envelope) (bool, error) {
	payload, err := json.Marshal(env)
	if err != nil {
		return false, err
	}
	n, err := scriptSendUser.Run(ctx, b.rdb, []string{b.userKey(user)}, b.nodePrefix(), payload).Int()
	if err != nil {
		return false, err
	}
	return n > 0, nil
}

// SendNode implements Broker.
func (b *RedisBroker) SendNode(ctx context.Context, node string, env Envelope) error {
	payload, err := json.Marshal(env)
	if err != nil {
		return err
	}
	return b.rdb.Publish(ctx, b.nodeChannel(node), payload).Err()
}

// Broadcast implements Broker.
func (b *RedisBroker) Broadcast(ctx context.Context, env Envelope) error {
	payload, err := json.Marshal(env)
	if err != nil {
		return err
	}
	return b.rdb.Publish(ctx, b.allChannel(), payload).Err()
}
