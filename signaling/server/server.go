package server

import (
	"context"
	"net/http"
	"time"

	"github.com/dialtone-dev/dialtone/signaling"
)

// Server is the signaling server. It is an http.Handler serving the
// WebSocket endpoint; mount it on any path. Create it with New.
type Server struct {
	cfg  Config
	hub  *hub
	ws   wsUpgrader
	logs *logLimits // cfg.Logger's log limits (nil: none)
}

// New returns a Server for cfg (defaults applied). With a Broker it starts
// joining the cluster in the background and refuses connections until it
// has (see Ready); a broker whose backend is unreachable is retried with
// backoff until it answers or the server shuts down.
//
// New panics with Validate's error for an invalid cfg, as for any other
// programming error; validate configurations that come from users first.
func New(cfg Config) *Server {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	s := &Server{cfg: cfg.withDefaults()}
	if h, ok := s.cfg.Logger.Handler().(*limitedHandler); ok {
		s.logs = h.state
	}
	s.hub = newHub(s)
	s.ws = newUpgrader(s)
	s.hub.joinCluster()
	return s
}

// Ready reports whether the server accepts connections: nil once it is
// serving, an error wrapping ErrNotReady (and the broker's last error)
// while it has not joined its cluster yet, ErrServerClosed once Shutdown
// began. Serve it as a readiness check (e.g. /healthz answering 503 while
// it is not nil) so that a load balancer sends no users to a node that
// would refuse them.
func (s *Server) Ready() error { return s.hub.ready() }

// Stats counts what the server did since New.
type Stats struct {
	Connects      uint64 // conns attached
	Replaced      uint64 // conns replaced by a newer one of the same user
	Routed        uint64 // messages delivered to a connected recipient
	Offline       uint64 // `offline` answers
	Pending       uint64 // messages kept for an offline user
	Delivered     uint64 // pending messages delivered on connect
	Expired       uint64 // pending messages dropped after the TTL
	Dropped       uint64 // pending messages dropped because the user's pending queue was full
	PushOK        uint64 // successful push hook calls
	PushFailed    uint64 // failed push hook calls
	Relay         uint64 // relay-config answers
	Rejected      uint64 // messages answered with `error`
	Abusive       uint64 // conns closed for too many rejected messages
	SlowConsumers uint64 // conns cut off because their send queue was full
	Unauthorized  uint64 // WebSocket requests rejected by the Authenticator
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.hub.stats
}

// Online reports whether user has a live connection to this node.
func (s *Server) Online(user string) bool {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.hub.users[user] != nil
}

// ready is the data of the `ready` sent to a new conn of user.
func (s *Server) ready(user string) signaling.Ready {
	rc := s.relayConfig(user)
	return signaling.Ready{User: user, Protocol: signaling.ProtocolVersion, ICEServers: rc.ICEServers, RelayTTL: rc.RelayTTL}
}

// Shutdown stops accepting connections, tells every client (an `error` with
// code "shutdown" and a going-away close), waits for the connections to
// close, and leaves the cluster (Config.Broker). When ctx ends first it tears the rest down and returns ctx.Err().
// Shutdown does not close the net/http server serving the handler.
func (s *Server) Shutdown(ctx context.Context) error {
	s.hub.beginClose()
	done := make(chan struct{})
	go func() {
		s.hub.conns.Wait()
		s.hub.stopRooms()
		s.hub.cancel()
		s.hub.pushes.Wait()
		s.hub.leaveCluster()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.hub.cancel()
	s.hub.killAll()
	// Torn-down carriers exit promptly; bound the wait anyway.
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.cfg.Logger.Error("signaling: connections still running after forced shutdown")
	}
	return ctx.Err()
}

// Close shuts the server down immediately (Shutdown with an expired context).
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = s.Shutdown(ctx)
	return nil
}

// ServeHTTP authenticates the request, upgrades it to a WebSocket and
// serves the connection until it ends.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.serveWebSocket(w, r)
}
