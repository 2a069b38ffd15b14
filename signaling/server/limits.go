package server

import (
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// The server's limits belong to users and to addresses, not to
// connections: a client cut off for flooding gains nothing by
// reconnecting, and no sender can get another user cut off.
//
//   - Each user has one budget for the messages it sends (RateLimit,
//     RateBurst), kept across its connections and reconnections. A message
//     over it is held back (the connection's reading pauses) for up to
//     RateWait; only past that is it dropped and answered `rate-limited`,
//     with its call ID and frame number, and the connection stays. A burst
//     of trickled ICE candidates is therefore delayed, never refused.
//   - Each user also has an inbound budget (InboundRateLimit,
//     InboundBurst), and other users' messages may fill at most
//     3/4 of its send queue. A message over either is dropped and its
//     *sender* is answered `rate-limited`: the recipient is never cut off
//     because others send it too much.
//   - The answers to a call (`ringing`, `accept`, `decline`, `busy`) to an
//     invite the user received draw on that invite, not on the user's
//     budget: an auto-responder cannot be made to exceed its budget by the
//     invites of others.
//   - Strikes (MaxStrikes) count only malformed or forbidden input, per
//     user; a user over them has its connection closed as `abusive`.
//   - Each client address may open MaxConnsPerAddr connections at once
//     (handshakes included) at ConnRate per second (ConnBurst); past
//     either the upgrade is answered 429.

// replyCredits is how many answers an invite pays for (ringing, then
// accept/decline/busy), and maxReplyCalls how many received invites a
// user keeps credits for.
const (
	replyCredits  = 2
	maxReplyCalls = 64
)

// limits holds the per-user and per-address state.
type limits struct {
	cfg *Config
	now func() time.Time

	mu        sync.Mutex
	users     map[string]*userLimits
	addrs     map[string]*addrLimits
	lastSweep time.Time
}

// userLimits is one user's state, shared by all its connections and kept
// while any is attached or its buckets are not full again.
type userLimits struct {
	send    *rate.Limiter // messages the user sends
	recv    *rate.Limiter // messages others send the user
	strikes *rate.Limiter // rejected messages tolerated
	conns   int

	mu      sync.Mutex
	replies map[replyKey]int // credits for answering received invites
	order   []replyKey       // replies' keys, oldest first
}

type replyKey struct{ peer, call string }

// addrLimits is one client address's state.
type addrLimits struct {
	rate  *rate.Limiter // connection attempts
	conns int           // handshakes in progress and attached conns
}

func newLimits(cfg *Config, now func() time.Time) *limits {
	return &limits{cfg: cfg, now: now, users: make(map[string]*userLimits), addrs: make(map[string]*addrLimits)}
}

// user returns user's state and counts a connection on it (done with
// leave).
func (l *limits) user(user string) *userLimits {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked()
	u := l.users[user]
	if u == nil {
		u = &userLimits{
			send:    rate.NewLimiter(l.cfg.RateLimit, l.cfg.RateBurst),
			recv:    rate.NewLimiter(l.cfg.InboundRateLimit, l.cfg.InboundBurst),
			strikes: rate.NewLimiter(1, l.cfg.MaxStrikes),
		}
		l.users[user] = u
	}
	u.conns++
	return u
}

// peek returns user's state without counting a connection (nil if none).
func (l *limits) peek(user string) *userLimits {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.users[user]
}

// leave ends a connection counted by user.
func (l *limits) leave(user string) {
	l.mu.Lock()
	if u := l.users[user]; u != nil && u.conns > 0 {
		u.conns--
	}
	l.mu.Unlock()
}

// sweepLocked forgets users without connections whose buckets are full
// again and addresses without connections whose bucket is full: keeping
// them would change nothing.
func (l *limits) sweepLocked() {
	now := l.now()
	if now.Sub(l.lastSweep) < 10*time.Second {
		return
	}
	l.lastSweep = now
	for name, u := range l.users {
		if u.conns == 0 && full(u.send, now) && full(u.recv, now) && full(u.strikes, now) {
			delete(l.users, name)
		}
	}
	for a, s := range l.addrs {
		if s.conns == 0 && full(s.rate, now) {
			delete(l.addrs, a)
		}
	}
}

func full(r *rate.Limiter, now time.Time) bool {
	return r.Limit() == rate.Inf || r.TokensAt(now) >= float64(r.Burst())
}

// grant gives the user credits to answer call from peer (an invite it was
// sent).
func (u *userLimits) grant(peer, call string) {
	k := replyKey{peer, call}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.replies == nil {
		u.replies = make(map[replyKey]int)
	}
	if _, ok := u.replies[k]; !ok {
		if len(u.order) >= maxReplyCalls {
			delete(u.replies, u.order[0])
			u.order = append(u.order[:0], u.order[1:]...)
		}
		u.order = append(u.order, k)
	}
	u.replies[k] = replyCredits
}

// useReply spends a credit for answering call to peer; false if none is
// left.
func (u *userLimits) useReply(peer, call string) bool {
	k := replyKey{peer, call}
	u.mu.Lock()
	defer u.mu.Unlock()
	n := u.replies[k]
	if n <= 0 {
		return false
	}
	if n == 1 {
		delete(u.replies, k)
		for i, x := range u.order {
			if x == k {
				u.order = append(u.order[:i], u.order[i+1:]...)
				break
			}
		}
	} else {
		u.replies[k] = n - 1
	}
	return true
}

// admit counts a connection attempt from addr; false (nothing counted)
// when the address is over its connection rate or count. An admitted
// attempt is ended by done.
func (l *limits) admit(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked()
	a := l.addrs[addr]
	if a == nil {
		a = &addrLimits{rate: rate.NewLimiter(l.cfg.ConnRate, l.cfg.ConnBurst)}
		l.addrs[addr] = a
	}
	if a.conns >= l.cfg.MaxConnsPerAddr || !a.rate.AllowN(l.now(), 1) {
		return false
	}
	a.conns++
	return true
}

// done ends a connection counted by admit.
func (l *limits) done(addr string) {
	l.mu.Lock()
	if a := l.addrs[addr]; a != nil && a.conns > 0 {
		a.conns--
	}
	l.mu.Unlock()
}

// clientAddr is the address r's limits are counted under.
func (s *Server) clientAddr(r *http.Request) string {
	if s.cfg.ClientAddr != nil {
		return s.cfg.ClientAddr(r)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// admitHTTP applies the per-address limits to a connection attempt; false
// when it answered 429. The caller ends an admitted attempt with
// s.hub.limits.done(addr) unless a conn took it over.
func (s *Server) admitHTTP(w http.ResponseWriter, r *http.Request) (string, bool) {
	addr := s.clientAddr(r)
	if s.hub.limits.admit(addr) {
		return addr, true
	}
	// A connection flood makes this line at the rate it connects: build
	// no record that would be dropped.
	const text = "signaling: connection refused: address over its limits"
	if s.cfg.Logger.Enabled(r.Context(), slog.LevelInfo) && !s.logs.suppress(text, time.Now()) {
		s.cfg.Logger.Info(text, "remote", addr)
	}
	w.Header().Set("Retry-After", strconv.Itoa(1))
	http.Error(w, "too many connections", http.StatusTooManyRequests)
	return "", false
}
