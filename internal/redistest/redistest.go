// Package redistest runs a private redis-server for a test: on a free
// 127.0.0.1 port, without persistence, in the test's temporary folder,
// stopped when the test ends. Without redis-server the test is skipped,
// except under CI=true or DIALTONE_FULL=1 where it fails (internal/testenv).
package redistest

import (
	"context"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/internal/testenv"
	"github.com/dialtone-dev/dialtone/internal/testproc"
)

// Program returns the redis-server binary, or skips or fails t when it is
// missing (internal/testenv).
func Program(t testing.TB) string {
	t.Helper()
	return testenv.Program(t, "redis-server")
}

// Start runs redis-server on a free loopback port until the end of t and
// returns its address.
func Start(t testing.TB) string {
	t.Helper()
	bin := Program(t)
	for range 3 {
		addr := FreeAddr(t)
		if StartAt(t, bin, addr) {
			return addr
		}
		// The port was taken meanwhile, or it did not start: try another.
	}
	t.Fatal("redis-server did not start")
	return ""
}

// FreeAddr returns a loopback address nobody listens on right now, for a
// test that starts Redis there later (StartAt).
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// StartAt runs the redis-server bin on addr until the end of t; false when
// it did not come up (it is stopped then).
func StartAt(t testing.TB, bin, addr string) bool {
	t.Helper()
	_, ok := Run(t, bin, addr)
	return ok
}

// Run is StartAt that also returns kill, which stops the server at once
// (SIGKILL: with no persistence its data is lost), as a crash would.
func Run(t testing.TB, bin, addr string) (kill func(), ok bool) {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	p, err := testproc.Start(exec.Command(bin, "--bind", "127.0.0.1", "--port", port,
		"--save", "", "--appendonly", "no", "--dir", t.TempDir(), "--daemonize", "no"))
	require.NoError(t, err)
	kill = func() { p.Stop(0) }
	if !up(addr, p.Exited()) {
		kill()
		return nil, false
	}
	t.Cleanup(kill)
	return kill, true
}

// up pings addr until it answers (true), the server exits or 5 s pass.
// Each ping gives up after 200 ms, also when something other than Redis
// holds the port and never answers.
func up(addr string, exited <-chan struct{}) bool {
	rdb := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1, ContextTimeoutEnabled: true})
	defer rdb.Close()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
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
		case <-deadline.C:
			return false
		case <-tick.C:
		}
	}
}
