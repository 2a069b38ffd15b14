//go:build linux

package janustest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/internal/testenv"
	"github.com/dialtone-dev/dialtone/internal/testproc"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"golang.org/x/sys/unix"
)

// Server is a running Janus. Start stops it when the test ends.
type Server struct {
	// URL is the WebSocket API's address, reachable through DialContext.
	URL string
	// Dir holds the configuration and janus.log.
	Dir string

	proc *testproc.Process
	ns   *netns
	net  *nsNet
}

// Start starts Janus for t and waits until its API answers.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	janus := testenv.Program(t, "janus")
	ip := testenv.Program(t, "ip")
	if os.Geteuid() != 0 {
		testenv.Missing(t, "janustest needs root for a network namespace")
	}
	lib := libDir()
	if lib == "" {
		testenv.Missing(t, "the janus AudioBridge plugin (libjanus_audiobridge.so) is not installed")
	}
	dir := t.TempDir()
	if err := writeConfig(dir, lib, opts); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "janus.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()

	// The shell sets the namespace up, then becomes janus: the process
	// whose PID the test holds is janus itself, in the namespace.
	script := strings.Join([]string{
		"set -e",
		ip + " link set lo up",
		"echo 1 > /proc/sys/net/ipv4/conf/all/accept_local",
		ip + " link add jan0 type veth peer name cli0",
		ip + " addr add " + JanusAddr + "/24 dev jan0",
		ip + " addr add " + ClientAddr + "/24 dev cli0",
		ip + " link set jan0 up",
		ip + " link set cli0 up",
		// carrier comes up asynchronously
		"for i in $(seq 1 200); do " + ip + " -o link show jan0 | grep -q LOWER_UP && " + ip + " -o link show cli0 | grep -q LOWER_UP && break; sleep 0.01; done",
		"exec " + janus + " -o -F " + dir + " -C " + filepath.Join(dir, "janus.jcfg"),
	}, "\n")
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	proc, err := testproc.Start(cmd)
	if err != nil {
		t.Fatalf("janustest: starting janus: %v", err)
	}
	s := &Server{
		URL:  fmt.Sprintf("ws://%s:%d/", JanusAddr, wsPort),
		Dir:  dir,
		proc: proc,
	}
	t.Cleanup(func() { s.stop(t) })

	ns, err := enterNetns(proc.Pid())
	if err != nil {
		t.Fatal(err)
	}
	s.ns = ns
	if err := s.waitReady(); err != nil {
		t.Fatalf("janustest: %v\n%s", err, s.logTail())
	}
	// The interfaces are read once the veth pair is up (Janus answering
	// means the shell got past its set-up).
	if s.net, err = newNsNet(ns); err != nil {
		t.Fatal(err)
	}
	return s
}

// waitReady waits until Janus accepts connections on its WebSocket port.
func (s *Server) waitReady() error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := s.ns.dialContext(ctx, "tcp", fmt.Sprintf("%s:%d", JanusAddr, wsPort))
		cancel()
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-s.proc.Exited():
			return fmt.Errorf("janus exited: %v", s.proc.Err())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("janus's API did not answer within 10 s: %w", err)
		}
	}
}

// DialContext opens a TCP connection from inside the namespace (for the
// WebSocket dialer's NetDialContext).
func (s *Server) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return s.ns.dialContext(ctx, network, addr)
}

// SettingEngine returns a SettingEngine for PeerConnections that talk to
// this Janus: sockets in the namespace, on cli0 only, UDP over IPv4, no
// mDNS.
func (s *Server) SettingEngine() *webrtc.SettingEngine {
	se := &webrtc.SettingEngine{}
	se.SetNet(s.net)
	se.SetInterfaceFilter(func(name string) bool { return name == ClientInterface })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return se
}

// Kill stops Janus at once (SIGKILL), as a crash would.
func (s *Server) Kill() {
	s.proc.Kill()
}

func (s *Server) stop(t testing.TB) {
	if s.ns != nil {
		s.ns.close()
	}
	s.proc.Stop(5 * time.Second)
	if t.Failed() {
		t.Logf("janus.log (tail):\n%s", s.logTail())
	}
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "janus.log"))
	const max = 8 << 10
	if len(b) > max {
		b = b[len(b)-max:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

// libDir finds Janus's library folder (with plugins/ and transports/).
func libDir() string {
	for _, pattern := range []string{"/usr/lib/*/janus", "/usr/lib/janus", "/usr/lib64/janus", "/usr/local/lib/janus", "/opt/janus/lib/janus"} {
		dirs, _ := filepath.Glob(pattern)
		for _, d := range dirs {
			if _, err := os.Stat(filepath.Join(d, "plugins", "libjanus_audiobridge.so")); err != nil {
				continue
			}
			if _, err := os.Stat(filepath.Join(d, "transports", "libjanus_websockets.so")); err == nil {
				return d
			}
		}
	}
	return ""
}

// writeConfig writes a configuration set that loads only the AudioBridge
// plugin and the WebSockets transport.
func writeConfig(dir, lib string, opts Options) error {
	for _, sub := range []string{"plugins", "transports", "events", "loggers"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	links := map[string]string{
		"plugins/libjanus_audiobridge.so":   "plugins/libjanus_audiobridge.so",
		"transports/libjanus_websockets.so": "transports/libjanus_websockets.so",
	}
	for dst, src := range links {
		if err := os.Symlink(filepath.Join(lib, src), filepath.Join(dir, dst)); err != nil {
			return err
		}
	}
	session := 60
	if opts.SessionTimeout > 0 {
		session = max(1, int(opts.SessionTimeout/time.Second))
	}
	reclaim := 30
	switch {
	case opts.ReclaimTimeout < 0:
		reclaim = 0
	case opts.ReclaimTimeout > 0:
		reclaim = max(1, int(opts.ReclaimTimeout/time.Second))
	}
	files := map[string]string{
		"janus.jcfg": `general: {
	configs_folder = "` + dir + `"
	plugins_folder = "` + dir + `/plugins"
	transports_folder = "` + dir + `/transports"
	events_folder = "` + dir + `/events"
	loggers_folder = "` + dir + `/loggers"
	debug_level = 4
	session_timeout = ` + strconv.Itoa(session) + `
	reclaim_session_timeout = ` + strconv.Itoa(reclaim) + `
	interface = "` + JanusAddr + `"
}
certificates: {
}
media: {
	rtp_port_range = "20000-20100"
}
nat: {
	nice_debug = false
	full_trickle = false
	ice_enforce_list = "jan0"
	ignore_mdns = true
}
plugins: {
}
transports: {
}
loggers: {
}
events: {
	broadcast = false
}
`,
		"janus.plugin.audiobridge.jcfg": "general: {\n}\n",
		"janus.transport.websockets.jcfg": `general: {
	json = "plain"
	ws = true
	ws_port = ` + strconv.Itoa(wsPort) + `
	wss = false
}
admin: {
	admin_ws = false
	admin_wss = false
}
`,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}
