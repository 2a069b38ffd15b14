// Package pulsetest runs a private PulseAudio server for tests: a daemon
// of the test's own, without a desktop session, whose speakers are null
// sinks and whose microphones are their monitors (a monitor hears what is
// played to its sink), so a test can play through the sound server and
// check by content what came out.
//
// [Start] launches the daemon in a temporary runtime directory, listening
// on a socket of its own with anonymous authentication, and points this
// process's PulseAudio clients at it (PULSE_SERVER, with t.Setenv, so a
// test that uses it cannot be parallel). The test's cleanup stops it by
// PID. When the pulseaudio program is missing the test is skipped, or
// fails under CI (see internal/testenv); scripts/deps.sh installs it there.
//
// The server starts with three null sinks at 48 kHz: "spk" (the default
// sink; its monitor "spk.monitor" is the default source), "spk2" and
// "micsink", and a remapped source "vmic" on micsink's monitor: a
// microphone that hears whatever is played to micsink.
//
// An idle null sink processes audio in blocks of up to 2 s, so a monitor
// opened on it first delivers only after 0.7–2 s. Start keeps a 10 ms
// recorder (parec) on each monitor and suspends and resumes each sink once,
// which restarts its timer on the recorder's 10 ms block; [Server.AddSink]
// does the same for the sinks a test adds.
package pulsetest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/internal/testenv"
)

// Sinks are the null sinks Start creates, in order; the first is the
// default sink and its monitor the default source.
var Sinks = []string{"spk", "spk2", "micsink"}

// Mic is the remapped source on micsink's monitor.
const Mic = "vmic"

// startTimeout bounds the wait for the daemon to answer.
const startTimeout = 10 * time.Second

// Server is a running private PulseAudio daemon.
type Server struct {
	// Dir is the daemon's runtime directory (socket, log).
	Dir string
	// Address is the server address clients use (PULSE_SERVER).
	Address string

	t     testing.TB
	bin   string
	pactl string
	parec string

	mu      sync.Mutex
	daemon  *exec.Cmd
	exited  chan struct{}        // closed when the daemon has been reaped
	keepers map[string]*exec.Cmd // monitor recorders by sink name
}

// Start runs a private PulseAudio daemon for the test and stops it in the
// test's cleanup. It skips the test when pulseaudio, pactl or parec is
// missing (fails under CI).
func Start(t testing.TB) *Server {
	t.Helper()
	bin := testenv.Program(t, "pulseaudio")
	pactl := testenv.Program(t, "pactl")
	parec := testenv.Program(t, "parec")
	if t.Skipped() || t.Failed() {
		return nil
	}
	// A short path: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "pulsetest")
	if err != nil {
		t.Fatalf("pulsetest: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	run := filepath.Join(dir, "run")
	if err := os.Mkdir(run, 0o700); err != nil {
		t.Fatalf("pulsetest: %v", err)
	}
	sock := filepath.Join(run, "native")
	s := &Server{Dir: dir, Address: "unix:" + sock, t: t, bin: bin, pactl: pactl, parec: parec}
	t.Cleanup(s.stop)
	t.Setenv("PULSE_SERVER", s.Address)
	s.launch()
	return s
}

// launch starts the daemon, waits until it answers, sets the defaults and
// starts the monitors' recorders.
func (s *Server) launch() {
	t := s.t
	t.Helper()
	run := filepath.Join(s.Dir, "run")
	args := []string{
		"--daemonize=no", "--exit-idle-time=-1", "--disallow-exit", "--use-pid-file=no",
		"-n", "--log-target=file:" + filepath.Join(s.Dir, "pa.log"),
		"--load=module-native-protocol-unix auth-anonymous=1 socket=" + strings.TrimPrefix(s.Address, "unix:"),
	}
	for _, sink := range Sinks {
		ch := ""
		if sink == "micsink" {
			ch = " channels=1"
		}
		args = append(args, fmt.Sprintf("--load=module-null-sink sink_name=%s rate=48000%s", sink, ch))
	}
	args = append(args, "--load=module-remap-source source_name="+Mic+" master=micsink.monitor")
	daemon := exec.Command(s.bin, args...)
	// The daemon's home and runtime directory are the test's, so it touches
	// nothing of the user's (cookie, state, another server's socket).
	daemon.Env = append(os.Environ(), "HOME="+s.Dir, "XDG_RUNTIME_DIR="+run, "XDG_CONFIG_HOME="+s.Dir)
	daemon.Dir = s.Dir
	if err := daemon.Start(); err != nil {
		t.Fatalf("pulsetest: start pulseaudio: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = daemon.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.daemon, s.exited = daemon, exited
	s.keepers = map[string]*exec.Cmd{}
	s.mu.Unlock()

	deadline := time.Now().Add(startTimeout)
	for {
		if _, err := s.run(context.Background(), "info"); err == nil {
			break
		}
		select {
		case <-exited:
			t.Fatalf("pulsetest: pulseaudio exited at start; log:\n%s", s.Log())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("pulsetest: pulseaudio did not answer within %v; log:\n%s", startTimeout, s.Log())
		}
	}
	s.Pactl("set-default-sink", Sinks[0])
	s.Pactl("set-default-source", Sinks[0]+".monitor")
	for _, sink := range Sinks {
		s.keep(sink)
	}
}

// Restart starts the daemon again at the same address after [Server.Kill]:
// the sound server coming back.
func (s *Server) Restart() {
	s.t.Helper()
	s.launch()
}

// keep puts a 10 ms recorder on sink's monitor and restarts the sink's
// timer (suspend, resume), so that its monitor delivers at once, then
// waits until the sink's latency shows the short block.
func (s *Server) keep(sink string) {
	s.t.Helper()
	k := exec.Command(s.parec, "--latency-msec=10", "--rate=8000", "--channels=1", "--raw", "-d", sink+".monitor")
	k.Env = append(os.Environ(), "PULSE_SERVER="+s.Address)
	if err := k.Start(); err != nil {
		s.t.Fatalf("pulsetest: start parec on %s: %v", sink, err)
	}
	s.mu.Lock()
	s.keepers[sink] = k
	s.mu.Unlock()
	// The recorder must be connected before the suspend for the sink to
	// take its block size when it resumes.
	s.waitFor(func() bool {
		return strings.Contains(s.Pactl("list", "short", "source-outputs"), "\t"+strconv.Itoa(s.sourceIndex(sink+".monitor"))+"\t")
	}, "parec on "+sink+".monitor")
	s.Pactl("suspend-sink", sink, "1")
	s.Pactl("suspend-sink", sink, "0")
	s.waitFor(func() bool { return s.sinkLatency(sink) < 50*time.Millisecond }, sink+" latency below 50 ms")
}

func (s *Server) waitFor(cond func() bool, what string) {
	s.t.Helper()
	deadline := time.Now().Add(startTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Fatalf("pulsetest: timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling the server, nothing to wait on
	}
}

func (s *Server) sourceIndex(name string) int {
	for _, line := range strings.Split(s.Pactl("list", "short", "sources"), "\n") {
		f := strings.Split(line, "\t")
		if len(f) > 1 && f[1] == name {
			n, _ := strconv.Atoi(f[0])
			return n
		}
	}
	return -1
}

// sinkLatency is the "Latency:" pactl reports for sink.
func (s *Server) sinkLatency(sink string) time.Duration {
	in := false
	for _, line := range strings.Split(s.Pactl("list", "sinks"), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "Name: ") {
			in = strings.TrimPrefix(line, "Name: ") == sink
		}
		if in && strings.HasPrefix(line, "Latency: ") {
			f := strings.Fields(line)
			us, err := strconv.Atoi(f[1])
			if err == nil {
				return time.Duration(us) * time.Microsecond
			}
		}
	}
	return time.Hour
}

// run runs pactl against the server with a bounded wait.
func (s *Server) run(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.pactl, args...)
	cmd.Env = append(os.Environ(), "PULSE_SERVER="+s.Address)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("pactl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// Pactl runs pactl with args against the server and returns its output;
// an error fails the test.
func (s *Server) Pactl(args ...string) string {
	s.t.Helper()
	out, err := s.run(context.Background(), args...)
	if err != nil {
		s.t.Fatalf("pulsetest: %v", err)
	}
	return out
}

// AddSink loads a 48 kHz stereo null sink called name (with a recorder
// keeping its monitor prompt) and returns its module index, for
// [Server.RemoveSink].
func (s *Server) AddSink(name string) int {
	s.t.Helper()
	out := s.Pactl("load-module", "module-null-sink", "sink_name="+name, "rate=48000")
	mod, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		s.t.Fatalf("pulsetest: load-module answered %q", out)
	}
	s.keep(name)
	return mod
}

// RemoveSink stops the sink's recorder and unloads the module AddSink
// returned. Unloading a sink under a stream kills the stream.
func (s *Server) RemoveSink(name string, module int) {
	s.t.Helper()
	s.stopKeeper(name)
	s.Pactl("unload-module", strconv.Itoa(module))
}

// Suspend suspends (true) or resumes (false) a sink, as the server does to
// an idle sink or when another program takes the device.
func (s *Server) Suspend(sink string, suspend bool) {
	s.t.Helper()
	v := "0"
	if suspend {
		v = "1"
	}
	s.Pactl("suspend-sink", sink, v)
}

// Kill kills the daemon and its recorders (SIGKILL) and waits for the
// daemon to exit: the sound server going away under its clients.
func (s *Server) Kill() {
	s.t.Helper()
	s.stopKeepers()
	s.mu.Lock()
	daemon, exited := s.daemon, s.exited
	s.mu.Unlock()
	_ = daemon.Process.Signal(syscall.SIGKILL)
	select {
	case <-exited:
	case <-time.After(startTimeout):
		s.t.Fatalf("pulsetest: pulseaudio (pid %d) did not exit after SIGKILL", daemon.Process.Pid)
	}
}

// Log returns the daemon's log so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "pa.log"))
	return string(b)
}

func (s *Server) stopKeeper(sink string) {
	s.mu.Lock()
	k := s.keepers[sink]
	delete(s.keepers, sink)
	s.mu.Unlock()
	if k != nil {
		_ = k.Process.Kill()
		_ = k.Wait()
	}
}

func (s *Server) stopKeepers() {
	s.mu.Lock()
	var sinks []string
	for sink := range s.keepers {
		sinks = append(sinks, sink)
	}
	s.mu.Unlock()
	for _, sink := range sinks {
		s.stopKeeper(sink)
	}
}

// stop ends the recorders, then the daemon (SIGTERM, SIGKILL after 5 s),
// each by its PID.
func (s *Server) stop() {
	s.stopKeepers()
	s.mu.Lock()
	daemon, exited := s.daemon, s.exited
	s.mu.Unlock()
	if daemon == nil {
		return
	}
	_ = daemon.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		_ = daemon.Process.Kill()
		<-exited
	}
}
