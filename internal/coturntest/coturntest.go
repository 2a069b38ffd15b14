// Package coturntest runs a real coturn TURN server (Debian's `turnserver`)
// for a test: on 127.0.0.1 only, with the TURN REST API shared secret
// (use-auth-secret) that signaling/server hands out credentials for, and
// relaying to loopback peers. Without turnserver the test is skipped,
// except under CI=true or DIALTONE_FULL=1 where it fails (internal/testenv).
package coturntest

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/internal/testenv"
	"github.com/dialtone-dev/dialtone/internal/testproc"
)

// Realm is the realm every Server runs with.
const Realm = "dialtone"

// Options configures a Server. The zero value works.
type Options struct {
	// Secret is the shared secret (coturn's static-auth-secret). Default:
	// random.
	Secret []byte
	// Verbose turns on coturn's moderate verbose log, which names each
	// request it processes (ALLOCATE, REFRESH, CHANNEL_BIND, ...).
	Verbose bool
	// MaxAllocateLifetime caps the lifetime of an allocation (coturn's
	// max-allocate-lifetime, whole seconds): clients refresh allocations
	// at half their lifetime, so a short one makes a test see refreshes
	// within seconds. Default: coturn's (allocations live 600 s).
	MaxAllocateLifetime time.Duration
}

// Server is a running turnserver, stopped when its test ends.
type Server struct {
	// Addr is the UDP address coturn listens on (127.0.0.1:port).
	Addr string
	// Secret is the shared secret of its TURN REST credentials.
	Secret []byte

	dir string
}

// Start runs turnserver for the rest of t and returns once it answers a
// STUN binding request.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin := testenv.Program(t, "turnserver")
	if len(opts.Secret) == 0 {
		opts.Secret = []byte(rand.Text())
	}
	var lastErr error
	for range 3 {
		// A port found free can be taken before coturn binds it: try again
		// on another.
		s, err := start(t, bin, opts)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("coturntest: turnserver did not start: %v", lastErr)
	return nil
}

func start(t testing.TB, bin string, opts Options) (*Server, error) {
	dir, err := os.MkdirTemp("", "coturntest-")
	if err != nil {
		return nil, err
	}
	port, err := freeUDPPort()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Secret: opts.Secret, dir: dir}
	// Relay ports come from a range of their own next to the listening
	// port, so that two tests' servers rarely share one.
	minPort := 20000 + (port*7)%40000
	conf := []string{
		"listening-ip=127.0.0.1",
		"relay-ip=127.0.0.1",
		"listening-port=" + strconv.Itoa(port),
		"min-port=" + strconv.Itoa(minPort),
		"max-port=" + strconv.Itoa(minPort+200),
		"use-auth-secret",
		"static-auth-secret=" + string(opts.Secret),
		"realm=" + Realm,
		"allow-loopback-peers",
		"no-cli", "no-tls", "no-dtls", "no-tcp", "no-tcp-relay", "no-rfc5780",
		"no-stun-backward-compatibility",
		"userdb=" + filepath.Join(dir, "turndb.sqlite"),
		"log-file=" + s.logPath(),
		"simple-log",
		"pidfile=" + filepath.Join(dir, "turnserver.pid"),
	}
	if opts.Verbose {
		conf = append(conf, "verbose")
	}
	if opts.MaxAllocateLifetime > 0 {
		conf = append(conf, "max-allocate-lifetime="+strconv.Itoa(int(max(1, opts.MaxAllocateLifetime/time.Second))))
	}
	confPath := filepath.Join(dir, "turnserver.conf")
	if err := os.WriteFile(confPath, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	cmd := exec.Command(bin, "-c", confPath)
	cmd.Dir = dir
	p, err := testproc.Start(cmd)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	stop := func() {
		p.Stop(2 * time.Second)
		_ = os.RemoveAll(dir)
	}
	if err := s.waitReady(p.Exited(), 5*time.Second); err != nil {
		stop()
		return nil, err
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("coturn log:\n%s", s.Log())
		}
		stop()
	})
	return s, nil
}

// URLs returns the server's TURN URL, for server.Config.TURNURLs.
func (s *Server) URLs() []string {
	return []string{"turn:" + s.Addr + "?transport=udp"}
}

func (s *Server) logPath() string { return filepath.Join(s.dir, "turnserver.log") }

// Log returns what coturn has logged so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath())
	return string(b)
}

// WaitLog waits until coturn's log has a line containing every one of
// parts, and returns that line; it fails t after d.
func (s *Server) WaitLog(t testing.TB, d time.Duration, parts ...string) string {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	// The log is a file coturn writes: polling it is the way to hear of a
	// new line.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if line, ok := findLine(s.Log(), parts); ok {
			return line
		}
		select {
		case <-deadline.C:
			t.Fatalf("coturntest: no log line with %q within %v", parts, d)
			return ""
		case <-tick.C:
		}
	}
}

// Count returns how many lines of coturn's log contain every one of parts.
func (s *Server) Count(parts ...string) int {
	n := 0
	for line := range strings.Lines(s.Log()) {
		if containsAll(line, parts) {
			n++
		}
	}
	return n
}

func findLine(log string, parts []string) (string, bool) {
	for line := range strings.Lines(log) {
		if containsAll(line, parts) {
			return strings.TrimSpace(line), true
		}
	}
	return "", false
}

func containsAll(line string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(line, p) {
			return false
		}
	}
	return true
}

// waitReady sends STUN binding requests until coturn answers one, it
// exits, or d passes.
func (s *Server) waitReady(exited <-chan struct{}, d time.Duration) error {
	conn, err := net.Dial("udp", s.Addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	req := bindingRequest()
	buf := make([]byte, 1500)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("turnserver exited: %s", lastLines(s.Log(), 5))
		default:
		}
		if _, err := conn.Write(req); err != nil {
			return err
		}
		_ = conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := conn.Read(buf)
		if err == nil && n >= 20 && bytes.Equal(buf[8:20], req[8:20]) && buf[0] == 0x01 && buf[1] == 0x01 {
			return nil
		}
	}
	return fmt.Errorf("turnserver did not answer a STUN binding request within %v", d)
}

// bindingRequest is a STUN Binding Request (RFC 5389) with no attributes.
func bindingRequest() []byte {
	req := make([]byte, 20)
	req[1] = 0x01                                  // type 0x0001: Binding Request
	copy(req[4:8], []byte{0x21, 0x12, 0xA4, 0x42}) // magic cookie
	_, _ = rand.Read(req[8:20])                    // transaction ID
	return req
}

func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
