package server

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/dialtone-dev/dialtone/internal/mailbox"
	"github.com/dialtone-dev/dialtone/signaling"
)

// Broker connects the nodes of a cluster of Servers: where each user is
// connected (presence) and delivery of messages to another node. Every node
// of a cluster uses a Broker reaching the same backend (the same
// MemoryBroker, the same Redis), under its own node ID (Config.NodeID).
//
// Without a Broker (the default) a Server is a single node: presence and
// routing stay in its memory. With one, a message to a user who is not
// connected to this node is sent to the node holding the user's presence; a
// user connecting to one node replaces its connection on any other node;
// pending invites (push) stay on the node that took them and are delivered
// there when the user comes online anywhere.
//
// Implementations must be safe for concurrent use. Methods that take a
// context may do network I/O; the Server never calls them while holding a
// lock, and calls the sending methods (SendUser, SendNode, Broadcast) of one
// node from a single goroutine, so envelopes from one node to another must
// arrive in the order they were sent.
type Broker interface {
	// Join starts delivery for node: from its return until Leave, deliver
	// is called with every envelope sent to that node (SendUser, SendNode)
	// or to all nodes (Broadcast, this node's own broadcasts included), in
	// the order each sender sent them. deliver is safe for concurrent use
	// and does not block.
	Join(ctx context.Context, node string, deliver func(Envelope)) error
	// Leave stops delivery for node and forgets the presences it claimed.
	Leave(ctx context.Context, node string) error
	// Claim records that user is now connected at p and returns the
	// previous presence (zero if none).
	Claim(ctx context.Context, user string, p Presence) (prev Presence, err error)
	// Release removes user's presence if it is still p.
	Release(ctx context.Context, user string, p Presence) error
	// Lookup returns user's presence, if any.
	Lookup(ctx context.Context, user string) (Presence, bool, error)
	// SendUser delivers env to the node holding user's presence, atomically
	// with the look-up; false when the user is connected nowhere.
	SendUser(ctx context.Context, user string, env Envelope) (bool, error)
	// SendNode delivers env to node (dropped if the node is gone).
	SendNode(ctx context.Context, node string, env Envelope) error
	// Broadcast delivers env to every node.
	Broadcast(ctx context.Context, env Envelope) error

	// Rooms: each call is one atomic step on the cluster's rooms, which
	// first removes the room's members whose owner node has left the
	// cluster (RoomResult.Gone). Every change increments the room's Seq.

	// JoinRoom adds m (its Session is assigned) to room unless the room
	// has max members already, or m.User is in another room. A member of
	// room already is resumed: it takes m's owner, display name and muted
	// flag and keeps its session.
	JoinRoom(ctx context.Context, room string, m RoomMember, max int) (RoomResult, error)
	// LeaveRoom removes user from room; with a non-zero owner, only while
	// that owner holds the membership.
	LeaveRoom(ctx context.Context, room, user string, owner Presence) (RoomResult, error)
	// MuteRoom sets the muted flag of user, a member of room.
	MuteRoom(ctx context.Context, room, user string, muted bool) (RoomResult, error)
}

// Presence says where a user's live connection is: the node and the
// node-local connection number.
type Presence struct {
	Node string `json:"node"`
	Conn uint64 `json:"conn"`
}

// EnvelopeKind says what an Envelope asks of the receiving node.
type EnvelopeKind string

// Envelope kinds.
const (
	// EnvelopeDeliver carries Msg for its recipient Msg.To.
	EnvelopeDeliver EnvelopeKind = "deliver"
	// EnvelopeReplace ends connection Conn of User on the receiving node:
	// a newer connection of the user took over on node Origin.
	EnvelopeReplace EnvelopeKind = "replace"
	// EnvelopeOnline tells every node that User connected on Origin, so a
	// node holding pending calls for User delivers them.
	EnvelopeOnline EnvelopeKind = "online"
)

// Envelope is what nodes send each other through a Broker.
type Envelope struct {
	Kind   EnvelopeKind       `json:"kind"`
	Origin string             `json:"origin"`
	User   string             `json:"user,omitempty"`
	Conn   uint64             `json:"conn,omitempty"`
	Msg    *signaling.Message `json:"msg,omitempty"`
}

// MemoryBroker is a Broker inside one process: share one MemoryBroker
// between several Servers (with distinct NodeIDs) to run a cluster in a
// test or a single binary. Delivery is synchronous and ordered.
type MemoryBroker struct {
	mu       sync.RWMutex
	nodes    map[string]func(Envelope)
	presence map[string]Presence
	rooms    *roomTable
}

var _ Broker = (*MemoryBroker)(nil)

// NewMemoryBroker returns an empty in-process broker.
func NewMemoryBroker() *MemoryBroker {
	return &MemoryBroker{nodes: make(map[string]func(Envelope)), presence: make(map[string]Presence), rooms: newRoomTable()}
}

// alive reports whether node is in the cluster.
func (b *MemoryBroker) alive(node string) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	_, ok := b.nodes[node]
	return ok
}

// JoinRoom implements Broker.
func (b *MemoryBroker) JoinRoom(_ context.Context, room string, m RoomMember, max int) (RoomResult, error) {
	return b.rooms.join(room, m, max, b.alive), nil
}

// LeaveRoom implements Broker.
func (b *MemoryBroker) LeaveRoom(_ context.Context, room, user string, owner Presence) (RoomResult, error) {
	return b.rooms.leave(room, user, owner, b.alive), nil
}

// MuteRoom implements Broker.
func (b *MemoryBroker) MuteRoom(_ context.Context, room, user string, muted bool) (RoomResult, error) {
	return b.rooms.mute(room, user, muted, b.alive), nil
}

// Join implements Broker.
func (b *MemoryBroker) Join(_ context.Context, node string, deliver func(Envelope)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.nodes[node]; ok {
		return ErrNodeExists
	}
	b.nodes[node] = deliver
	return nil
}

// Leave implements Broker.
func (b *MemoryBroker) Leave(_ context.Context, node string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.nodes, node)
	for u, p := range b.presence {
		if p.Node == node {
			delete(b.presence, u)
		}
	}
	return nil
}

// Claim implements Broker.
func (b *MemoryBroker) Claim(_ context.Context, user string, p Presence) (Presence, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	prev := b.presence[user]
	b.presence[user] = p
	return prev, nil
}

// Release implements Broker.
func (b *MemoryBroker) Release(_ context.Context, user string, p Presence) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.presence[user] == p {
		delete(b.presence, user)
	}
	return nil
}

// Lookup implements Broker.
func (b *MemoryBroker) Lookup(_ context.Context, user string) (Presence, bool, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	p, ok := b.presence[user]
	return p, ok, nil
}

// SendUser implements Broker.
func (b *MemoryBroker) SendUser(_ context.Context, user string, env Envelope) (bool, error) {
	b.mu.RLock()
	p, ok := b.presence[user]
	deliver := b.nodes[p.Node]
	b.mu.RUnlock()
	if !ok || deliver == nil {
		return false, nil
	}
	deliver(env)
	return true, nil
}

// SendNode implements Broker.
func (b *MemoryBroker) SendNode(_ context.Context, node string, env Envelope) error {
	b.mu.RLock()
	deliver := b.nodes[node]
	b.mu.RUnlock()
	if deliver != nil {
		deliver(env)
	}
	return nil
}

// Broadcast implements Broker.
func (b *MemoryBroker) Broadcast(_ context.Context, env Envelope) error {
	b.mu.RLock()
	all := make([]func(Envelope), 0, len(b.nodes))
	for _, d := range b.nodes {
		all = append(all, d)
	}
	b.mu.RUnlock()
	for _, d := range all {
		d(env)
	}
	return nil
}

// clusterOpTimeout bounds one Broker call made by the hub.
const clusterOpTimeout = 5 * time.Second

// clusterResendWindow is how long a message for a user on another node is
// tried again while the broker fails (its backend restarting or
// unreachable, or a Redis that lost its data and whose nodes are putting
// their presences back), counted from when it was routed. It covers a
// backend restart; a longer outage ends in the absent-user handling
// (pending, offline).
const clusterResendWindow = 30 * time.Second

// resendBackoff paces the attempts to send a message while the broker fails.
var resendBackoff = signaling.Backoff{Initial: 50 * time.Millisecond, Max: time.Second}

// joinBackoff paces the attempts to join the cluster while the broker's
// backend is unreachable.
var joinBackoff = signaling.Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second}

// outbox runs the hub's Broker calls on one goroutine, in the order they
// were queued, so that messages leave the node in routing order and no
// delivery makes a network call on a connection's read path or under the
// hub lock. (Room store calls are made on the read path on purpose: see
// room.go.)
type outbox struct {
	q    *mailbox.Mailbox[func(context.Context)]
	max  int
	done chan struct{}
	log  *slog.Logger
}

func newOutbox(max int, log *slog.Logger) *outbox {
	o := &outbox{q: mailbox.New[func(context.Context)](), max: max, done: make(chan struct{}), log: log}
	go o.run()
	return o
}

// push queues f; false (and f dropped) when the outbox is closed or holds
// max operations already (the broker has been failing for a while).
func (o *outbox) push(f func(context.Context)) bool {
	if o.q.Len() >= o.max || !o.q.Put(f) {
		o.log.Warn("signaling: cluster outbox full or closed, operation dropped")
		return false
	}
	return true
}

func (o *outbox) run() {
	defer close(o.done)
	for f := range o.q.Out() {
		ctx, cancel := context.WithTimeout(context.Background(), clusterOpTimeout)
		f(ctx)
		cancel()
	}
}

// close runs what is queued, then stops the goroutine.
func (o *outbox) close() {
	o.q.Close()
	<-o.done
}

// joinCluster starts joining the cluster (called by New). Until the broker
// accepts the node, connections are refused (Server.Ready reports why) and
// the join is retried with backoff until it succeeds or the server shuts
// down.
func (h *hub) joinCluster() {
	if h.broker == nil {
		close(h.joined)
		return
	}
	h.outbox = newOutbox(1<<16, h.log)
	h.joining.Add(1)
	go func() {
		defer h.joining.Done()
		for attempt := 1; ; attempt++ {
			ctx, cancel := context.WithTimeout(h.ctx, clusterOpTimeout)
			err := h.broker.Join(ctx, h.node, h.onEnvelope)
			cancel()
			if err == nil {
				h.mu.Lock()
				h.joinErr = nil
				h.mu.Unlock()
				close(h.joined)
				h.log.Info("signaling: joined the cluster", "node", h.node, "attempts", attempt)
				return
			}
			h.mu.Lock()
			h.joinErr = err
			h.mu.Unlock()
			h.log.Warn("signaling: cannot join the cluster yet; connections are refused until it can", "node", h.node, "attempt", attempt, "err", err)
			t := time.NewTimer(joinBackoff.Delay(attempt, rand.Float64()))
			select {
			case <-h.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}()
}

// isJoined reports whether the node is in the cluster (always without a
// broker).
func (h *hub) isJoined() bool {
	select {
	case <-h.joined:
		return true
	default:
		return false
	}
}

// ready is Server.Ready.
func (h *hub) ready() error {
	h.mu.Lock()
	closing, joinErr := h.closing, h.joinErr
	h.mu.Unlock()
	switch {
	case closing:
		return ErrServerClosed
	case h.isJoined():
		return nil
	case joinErr != nil:
		return fmt.Errorf("%w: %w", ErrNotReady, joinErr)
	}
	return ErrNotReady
}

// waitJoined waits until the node is in the cluster, ctx ends or the
// server shuts down.
func (h *hub) waitJoined(ctx context.Context) error {
	select {
	case <-h.joined:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", h.ready(), ctx.Err())
	case <-h.ctx.Done():
		return ErrServerClosed
	}
}

// leaveCluster stops joining, runs the queued broker calls and leaves the
// cluster.
func (h *hub) leaveCluster() {
	if h.broker == nil {
		return
	}
	h.leaveOnce.Do(func() {
		h.joining.Wait() // h.ctx is cancelled: the join loop has ended
		h.outbox.close()
		if !h.isJoined() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), clusterOpTimeout)
		defer cancel()
		if err := h.broker.Leave(ctx, h.node); err != nil {
			h.log.Warn("signaling: leaving the cluster", "node", h.node, "err", err)
		}
	})
}

// claim records c as its user's presence before c is attached.
func (h *hub) claim(c *conn) (Presence, error) {
	if h.broker == nil {
		return Presence{}, nil
	}
	if !h.isJoined() {
		return Presence{}, h.ready()
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterOpTimeout)
	defer cancel()
	prev, err := h.broker.Claim(ctx, c.user, Presence{Node: h.node, Conn: c.id})
	if err != nil {
		return Presence{}, fmt.Errorf("%w: claim: %w", ErrBroker, err)
	}
	return prev, nil
}

// announce tells the cluster that c is attached: the node that held the
// user's previous connection ends it, nodes with pending calls deliver.
func (h *hub) announce(c *conn, prev Presence) {
	if h.broker == nil {
		return
	}
	user, id := c.user, c.id
	h.outbox.push(func(ctx context.Context) {
		if prev.Node != "" && prev.Node != h.node {
			env := Envelope{Kind: EnvelopeReplace, Origin: h.node, User: user, Conn: prev.Conn}
			if err := h.broker.SendNode(ctx, prev.Node, env); err != nil {
				h.log.Warn("signaling: replace on other node", "user", user, "node", prev.Node, "err", err)
			}
		}
		env := Envelope{Kind: EnvelopeOnline, Origin: h.node, User: user, Conn: id}
		if err := h.broker.Broadcast(ctx, env); err != nil {
			h.log.Warn("signaling: online broadcast", "user", user, "err", err)
		}
	})
}

// unclaim drops c's presence (if it is still c's) once c is released.
func (h *hub) unclaim(c *conn) {
	if h.broker == nil || !h.isJoined() {
		return
	}
	user, p := c.user, Presence{Node: h.node, Conn: c.id}
	h.outbox.push(func(ctx context.Context) {
		if err := h.broker.Release(ctx, user, p); err != nil {
			h.log.Warn("signaling: release presence", "user", user, "err", err)
		}
	})
}

// routeRemoteLocked handles m for a user not connected to this node: a
// message of a call still pending here joins it; anything else is sent to
// the user's node, or handled as absent (pending/push/offline) when the
// user is connected nowhere.
func (h *hub) routeRemoteLocked(m signaling.Message) {
	if h.appendPendingLocked(m) {
		return
	}
	until := time.Now().Add(clusterResendWindow)
	h.outbox.push(func(ctx context.Context) {
		h.mu.Lock()
		if h.appendPendingLocked(m) { // the call went pending while m was queued
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		mm := m
		ok, err := h.sendUser(ctx, m.To, Envelope{Kind: EnvelopeDeliver, Origin: h.node, Msg: &mm}, until)
		if err != nil {
			h.log.Warn("signaling: cluster send", "to", m.To, "type", m.Type, "err", err)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if ok && err == nil {
			if m.Type == signaling.TypeInvite {
				h.notifyLocked(m.From, signaling.TypeWaiting, m.To, m.Call, nil)
			}
			return
		}
		h.absentLocked(h.users[m.From], m)
	})
}

// sendUser is Broker.SendUser, tried again while it fails until the
// time until, or the server shuts down (one last try then). It runs on the
// outbox, so the messages routed meanwhile wait behind it in order: a
// backend restart delays them instead of losing them. ctx bounds the
// first attempt; each later one has clusterOpTimeout.
func (h *hub) sendUser(ctx context.Context, user string, env Envelope, until time.Time) (bool, error) {
	ok, err := h.broker.SendUser(ctx, user, env)
	for attempt := 1; err != nil && h.ctx.Err() == nil && time.Now().Before(until); attempt++ {
		if attempt == 1 {
			h.log.Info("signaling: cluster send failed, trying again", "to", user, "err", err)
		}
		t := time.NewTimer(min(resendBackoff.Delay(attempt, rand.Float64()), time.Until(until)))
		select {
		case <-h.ctx.Done():
		case <-t.C:
		}
		t.Stop()
		actx, cancel := context.WithTimeout(context.Background(), clusterOpTimeout)
		ok, err = h.broker.SendUser(actx, user, env)
		cancel()
	}
	return ok, err
}

// appendPendingLocked adds m to its pending call if there is a live one.
func (h *hub) appendPendingLocked(m signaling.Message) bool {
	if m.Type == signaling.TypeInvite {
		return false
	}
	pc := h.findPendingLocked(m.To, m.From, m.Call)
	if pc == nil || !h.now().Before(pc.deadline) {
		return false
	}
	if h.pendingCountLocked(m.To) < h.cfg.MaxPending {
		pc.msgs = append(pc.msgs, m)
		h.stats.Pending++
	} else {
		h.stats.Dropped++
		h.log.Warn("signaling: pending queue full, message dropped", "user", m.To, "type", m.Type)
	}
	return true
}

// notifyRemoteLocked sends a server message to a user connected elsewhere.
func (h *hub) notifyRemoteLocked(m signaling.Message) {
	until := time.Now().Add(clusterResendWindow)
	h.outbox.push(func(ctx context.Context) {
		mm := m
		if _, err := h.sendUser(ctx, m.To, Envelope{Kind: EnvelopeDeliver, Origin: h.node, Msg: &mm}, until); err != nil {
			h.log.Warn("signaling: cluster notify", "to", m.To, "type", m.Type, "err", err)
		}
	})
}

// onEnvelope handles what another node (or this one) sent through the
// broker.
func (h *hub) onEnvelope(env Envelope) {
	switch env.Kind {
	case EnvelopeDeliver:
		if env.Msg == nil {
			return
		}
		m := *env.Msg
		h.mu.Lock()
		defer h.mu.Unlock()
		if dst := h.users[m.To]; dst != nil {
			if !h.roomPeerLocked(dst, m) {
				h.refusePeerLocked(m)
				return
			}
			if !m.Type.Routed() || h.inboundOK(dst) {
				if dst.enqueue(m) {
					h.stats.Routed++
					h.metrics.routedInc(m.Type)
					if m.Type == signaling.TypeInvite {
						dst.lim.grant(m.From, m.Call)
					}
					return
				}
				if !m.Type.Routed() {
					h.endSlowLocked(dst)
				}
			}
			return // over the recipient's inbound limit: dropped, never a cut-off
		}
		// The user left this node after the sender looked it up, or is
		// connecting to it right now (its claim moved this message here
		// from its previous node): a message of a call is held for its
		// reconnection; an invite is held only while the user is
		// attaching, else answered (presence is not for anyone to probe).
		if m.Type != signaling.TypeInvite || h.attaching[m.To] > 0 {
			h.holdLocked(m)
			return
		}
		h.stats.Offline++
		h.notifyLocked(m.From, signaling.TypeOffline, m.To, m.Call, nil)
	case EnvelopeReplace:
		h.mu.Lock()
		c := h.users[env.User]
		if c == nil || c.id != env.Conn {
			h.mu.Unlock()
			return
		}
		delete(h.users, env.User)
		h.stats.Replaced++
		h.mu.Unlock()
		h.metrics.errorInc(signaling.CodeReplaced)
		c.end(signaling.CodeReplaced, "another connection of this user took over")
		h.log.Info("signaling: connection replaced by another node", "user", env.User, "conn", c.id, "node", env.Origin)
	case EnvelopeOnline:
		if env.Origin == h.node {
			return
		}
		h.mu.Lock()
		_, has := h.pending[env.User]
		h.mu.Unlock()
		if has {
			user := env.User
			h.outbox.push(func(ctx context.Context) { h.flushRemote(ctx, user) })
		}
	}
}

// flushRemote delivers the calls pending here for user, who connected to
// another node. It runs on the outbox, so messages routed after the flush
// was queued follow the pending ones.
func (h *hub) flushRemote(ctx context.Context, user string) {
	h.mu.Lock()
	calls := h.pending[user]
	delete(h.pending, user)
	h.mu.Unlock()
	now := h.now()
	for i, pc := range calls {
		if !now.Before(pc.deadline) {
			h.mu.Lock()
			h.stats.Expired += uint64(len(pc.msgs))
			h.mu.Unlock()
			continue
		}
		for j, m := range pc.msgs {
			mm := m
			ok, err := h.broker.SendUser(ctx, user, Envelope{Kind: EnvelopeDeliver, Origin: h.node, Msg: &mm})
			if err != nil || !ok {
				// Gone again: keep what is left pending here.
				h.mu.Lock()
				pc.msgs = pc.msgs[j:]
				rest := append([]*pendingCall(nil), calls[i:]...)
				h.pending[user] = append(rest, h.pending[user]...)
				h.mu.Unlock()
				return
			}
			h.mu.Lock()
			h.stats.Delivered++
			h.mu.Unlock()
		}
		h.mu.Lock()
		if !pc.waitingOK {
			pc.waitingOK = true
			h.notifyLocked(pc.from, signaling.TypeWaiting, user, pc.call, nil)
		}
		h.mu.Unlock()
	}
}

// NodeID returns the node's ID in the cluster (Config.NodeID).
func (s *Server) NodeID() string { return s.cfg.NodeID }

// Presence reports where user is connected: this node first, then (with a
// Broker) anywhere in the cluster.
func (s *Server) Presence(ctx context.Context, user string) (Presence, bool, error) {
	s.hub.mu.Lock()
	c := s.hub.users[user]
	s.hub.mu.Unlock()
	if c != nil {
		return Presence{Node: s.cfg.NodeID, Conn: c.id}, true, nil
	}
	if s.hub.broker == nil {
		return Presence{}, false, nil
	}
	return s.hub.broker.Lookup(ctx, user)
}
