// Package janustest runs a real Janus gateway with its AudioBridge plugin for
// a test, in a network namespace of its own, and gives the test the means to
// reach it: a WebSocket URL and a dialer for the API, and a pion
// SettingEngine whose sockets live in that namespace for the media.
//
// Janus's ICE skips the loopback interface, so it needs a real interface
// address; the namespace has loopback plus a veth pair whose two ends both
// stay inside it: jan0 (203.0.113.1, Janus) and cli0 (203.0.113.2, the
// test's PeerConnections). The addresses are TEST-NET-3 and exist nowhere
// else. Janus sends from its own interface rather than through lo, so the
// namespace accepts packets from local source addresses (accept_local);
// without that ARP never resolves and ICE fails.
//
// The test process itself stays in the host namespace: one OS thread joins
// the namespace and opens every socket the test asks for there (a socket
// keeps the namespace it was opened in). That needs root, the ip program
// (iproute2) and janus; when one is missing the test is skipped, or fails
// under CI (internal/testenv).
package janustest

import "time"

// Addresses of the two veth ends inside the namespace.
const (
	JanusAddr  = "203.0.113.1"
	ClientAddr = "203.0.113.2"
	// ClientInterface is the veth end the test's PeerConnections use.
	ClientInterface = "cli0"
	// wsPort is Janus's WebSocket API port.
	wsPort = 8188
)

// Options configures the Janus a test starts. The zero value is Janus's own
// defaults.
type Options struct {
	// SessionTimeout is Janus's session_timeout: a session without any
	// request for this long is destroyed. Zero means 60 s (Janus's
	// default).
	SessionTimeout time.Duration
	// ReclaimTimeout is Janus's reclaim_session_timeout: how long a session
	// whose WebSocket went away may be claimed back from a new one. Zero
	// means 30 s; negative means 0, Janus's default, under which a dropped
	// WebSocket destroys its sessions at once.
	ReclaimTimeout time.Duration
}
