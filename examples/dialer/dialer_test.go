package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/internal/coturntest"
	"github.com/dialtone-dev/dialtone/media"
	"github.com/dialtone-dev/dialtone/media/mediatest"
	"github.com/dialtone-dev/dialtone/signaling/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const sec = 48000

// buildDialer compiles this package into dir (with -race when the test
// itself runs with it, which keeps the build cached).
func buildDialer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dialer")
	args := []string{"build", "-o", bin}
	if raceBuild {
		args = append(args, "-race")
	}
	gotool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gotool); err != nil {
		gotool = "go"
	}
	cmd := exec.Command(gotool, append(args, ".")...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// startServer runs a dev-mode signaling server (any user name) on
// 127.0.0.1 and returns its WebSocket URL.
func startServer(t *testing.T) (string, *server.Server) {
	t.Helper()
	return startServerWith(t, server.Config{})
}

// startServerWith is startServer with cfg (DevMode is set).
func startServerWith(t *testing.T, cfg server.Config) (string, *server.Server) {
	t.Helper()
	cfg.DevMode = true
	srv := server.New(cfg)
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		_ = srv.Close()
		ts.Close()
	})
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/", srv
}

// output is a process's combined output, safe to read while it runs, with
// a way to wait for a line.
type output struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newOutput() *output { return &output{changed: make(chan struct{})} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	close(o.changed)
	o.changed = make(chan struct{})
	return o.buf.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// waitFor blocks until the output contains s or the deadline passes.
func (o *output) waitFor(t *testing.T, s string, within time.Duration) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		o.mu.Lock()
		found, ch := strings.Contains(o.buf.String(), s), o.changed
		o.mu.Unlock()
		if found {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("no %q within %v in:\n%s", s, within, o.String())
		}
	}
}

// proc is one running dialer.
type proc struct {
	name  string
	cmd   *exec.Cmd
	out   *output
	stdin io.WriteCloser // with startPiped
	done  chan struct{}
}

// start runs the dialer with stdin read from in (nil: no input).
func start(t *testing.T, bin, name string, in io.Reader, args ...string) *proc {
	t.Helper()
	return startProc(t, bin, name, in, false, args)
}

// startPiped runs the dialer with a pipe on stdin for the test to write to.
func startPiped(t *testing.T, bin, name string, args ...string) *proc {
	t.Helper()
	return startProc(t, bin, name, nil, true, args)
}

func startProc(t *testing.T, bin, name string, in io.Reader, pipe bool, args []string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), out: newOutput(), done: make(chan struct{})}
	p.cmd.Env = childRaceLog(t, name)
	p.cmd.Stdin = in
	if pipe {
		var err error
		p.stdin, err = p.cmd.StdinPipe()
		require.NoError(t, err)
	}
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	require.NoError(t, p.cmd.Start())
	go func() {
		defer close(p.done)
		_ = p.cmd.Wait()
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s (exit %d) output:\n%s", p.name, p.cmd.ProcessState.ExitCode(), p.out)
		}
	})
	return p
}

// childRaceLog returns the environment for a child dialer. A child built
// with -race writes its race reports to files (GORACE log_path) that the
// test reads back when it ends and reports as errors: on stderr a report
// could be lost among the output, or with a child the test killed. A
// GORACE that already names a log_path is the caller's choice and is
// passed through untouched, as is any other GORACE option.
func childRaceLog(t *testing.T, name string) []string {
	t.Helper()
	gorace := os.Getenv("GORACE")
	if !raceBuild || strings.Contains(gorace, "log_path=") {
		return nil // the test's own environment
	}
	prefix := filepath.Join(t.TempDir(), "race")
	t.Cleanup(func() {
		reports, _ := filepath.Glob(prefix + ".*")
		for _, r := range reports {
			b, err := os.ReadFile(r)
			t.Errorf("%s: race report %s (%v):\n%s", name, r, err, b)
		}
	})
	return append(os.Environ(), "GORACE="+strings.TrimSpace(gorace+" log_path="+prefix))
}

// exit waits for the process and returns its exit status.
func (p *proc) exit(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("%s did not exit within %v; output:\n%s", p.name, within, p.out)
	}
	t.Logf("%s exited %d:\n%s", p.name, p.cmd.ProcessState.ExitCode(), p.out)
	return p.cmd.ProcessState.ExitCode()
}

func writeWAV(t *testing.T, path string, pcm []int16) {
	t.Helper()
	w, err := media.CreateWAV(path)
	require.NoError(t, err)
	_, err = w.WritePCM(pcm)
	require.NoError(t, err)
	require.NoError(t, w.Close())
}

func rms(p []int16) float64 {
	var s float64
	for _, v := range p {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(max(1, len(p))))
}

// heard finds each 200 ms window of rec that carries sound in ref (a
// window may come from anywhere in ref: the file started playing while the
// phone rang) and returns the medians of the correlation and of the SNR
// after alignment, and how much signal was found.
func heard(ref, rec []int16) (corr, snr float64, found time.Duration) {
	const win = sec / 5
	floor := 0.05 * rms(ref)
	var corrs, snrs []float64
	for w := 0; w+win <= len(rec); w += win {
		seg := rec[w : w+win]
		if rms(seg) < floor {
			continue // before the media flowed, or after the file ended
		}
		lag, c := mediatest.Delay(seg, ref)
		corrs = append(corrs, c)
		snrs = append(snrs, mediatest.SNR(seg, ref, lag))
	}
	return mediatest.Median(corrs), mediatest.Median(snrs), time.Duration(len(corrs)) * 200 * time.Millisecond
}

// TestDialer runs the built dialer against a signaling server in the test.
func TestDialer(t *testing.T) {
	bin := buildDialer(t)
	url, srv := startServer(t)
	common := []string{"-server", url, "-loopback"}
	args := func(a ...string) []string { return append(a, common...) }

	// One dialer listens and records, another calls it with a WAV file for
	// 3 s: both exit 0 and the recording is the file's content.
	t.Run("call and listen with WAV files", func(t *testing.T) {
		dir := t.TempDir()
		in, out := filepath.Join(dir, "in.wav"), filepath.Join(dir, "out.wav")
		ref := mediatest.MultiTone(5*sec, 5)
		writeWAV(t, in, ref)

		listener := start(t, bin, "listener", nil, args("listen", "-user", "listener", "-auto-answer", "-out", out)...)
		listener.out.waitFor(t, "listening as listener", 20*time.Second)
		require.True(t, srv.Online("listener"))
		caller := start(t, bin, "caller", nil, args("call", "listener", "-user", "caller", "-in", in, "-duration", "3s")...)

		assert.Equal(t, 0, caller.exit(t, 30*time.Second), "caller")
		assert.Equal(t, 0, listener.exit(t, 10*time.Second), "listener")
		for _, s := range []string{"call connected", "3s passed: hanging up", "call ended (hangup)", "rtt"} {
			assert.Contains(t, caller.out.String(), s)
		}
		assert.Contains(t, listener.out.String(), "incoming call from caller, answering")
		assert.Contains(t, listener.out.String(), "call ended (remote-hangup)")

		w, err := media.OpenWAV(out)
		require.NoError(t, err)
		rec := w.Samples
		corr, snr, found := heard(ref, rec)
		t.Logf("out.wav: %.2f s, signal in %v, corr %.3f, SNR %.1f dB", float64(len(rec))/sec, found, corr, snr)
		assert.GreaterOrEqual(t, found, 2*time.Second, "too little of in.wav arrived")
		assert.Greater(t, corr, 0.8)
		// 3 dB, not 5: a 3 s call under -race (two dialer processes on 2
		// cores) spends its whole length in the jitter buffer's start-up,
		// and each 200 ms window is looked up in the whole tonal file, so
		// the median window's SNR moves by a few dB from run to run, at
		// times below 5 dB on a healthy path. A broken path gives a
		// correlation near 0.
		assert.Greater(t, snr, 3.0)
	})

	// Keys from a pipe: text and a DTMF digit once connected, then h hangs
	// up; the listener declines nothing (auto-answer) and shows the text.
	t.Run("keys from a pipe", func(t *testing.T) {
		listener := start(t, bin, "listener", nil, args("listen", "-user", "keys-listener", "-auto-answer", "-tone", "660", "-out", filepath.Join(t.TempDir(), "o.wav"))...)
		listener.out.waitFor(t, "listening as keys-listener", 20*time.Second)
		caller := startPiped(t, bin, "caller", args("call", "keys-listener", "-user", "keys-caller", "-tone", "440", "-out", filepath.Join(t.TempDir(), "c.wav"), "-duration", "20s")...)
		_, err := fmt.Fprint(caller.stdin, "t hello over the data channel\n5\nm\n")
		require.NoError(t, err)
		listener.out.waitFor(t, "keys-caller says: hello over the data channel", 20*time.Second)
		caller.out.waitFor(t, "microphone muted", 10*time.Second)
		caller.out.waitFor(t, "DTMF", 10*time.Second) // sent, or the peer's refusal
		_, err = fmt.Fprint(caller.stdin, "h\n")
		require.NoError(t, err)
		assert.Equal(t, 0, caller.exit(t, 15*time.Second))
		assert.Equal(t, 0, listener.exit(t, 10*time.Second))
		assert.Contains(t, caller.out.String(), "hanging up")
	})

	// The exit status tells how the call ended.
	t.Run("declined", func(t *testing.T) {
		listener := start(t, bin, "listener", strings.NewReader("n\n"), args("listen", "-user", "decliner", "-tone", "440", "-out", filepath.Join(t.TempDir(), "o.wav"))...)
		listener.out.waitFor(t, "listening as decliner", 20*time.Second)
		caller := start(t, bin, "caller", nil, args("call", "decliner", "-user", "hopeful", "-tone", "440", "-out", filepath.Join(t.TempDir(), "c.wav"))...)
		assert.Equal(t, exitDeclined, caller.exit(t, 20*time.Second))
		assert.Equal(t, exitDeclined, listener.exit(t, 10*time.Second))
		assert.Contains(t, listener.out.String(), "answer? [y/n]")
	})
	t.Run("offline", func(t *testing.T) {
		caller := start(t, bin, "caller", nil, args("call", "nobody", "-user", "lonely", "-tone", "440", "-out", filepath.Join(t.TempDir(), "c.wav"))...)
		assert.Equal(t, exitOffline, caller.exit(t, 20*time.Second))
		assert.Contains(t, caller.out.String(), "call ended (offline)")
	})
	t.Run("server unreachable", func(t *testing.T) {
		caller := start(t, bin, "caller", nil, "call", "bob", "-user", "x", "-server", "ws://127.0.0.1:1/ws", "-tone", "440", "-out", filepath.Join(t.TempDir(), "c.wav"))
		assert.Equal(t, exitError, caller.exit(t, 20*time.Second))
	})
}

func TestExitCodes(t *testing.T) {
	for reason, want := range map[call.Reason]int{
		call.ReasonHangup: 0, call.ReasonRemoteHangup: 0,
		call.ReasonBusy: 3, call.ReasonDeclined: 4,
		call.ReasonNoAnswer: 5, call.ReasonCancelled: 5,
		call.ReasonOffline: 6, call.ReasonPushFailed: 6,
		call.ReasonConnectTimeout: 7, call.ReasonICEFailed: 7, call.ReasonRelayFailed: 7, call.ReasonSignalingLost: 7,
		call.ReasonUnauthorized: 7, call.ReasonError: 7,
	} {
		assert.Equal(t, want, exitCode(reason), "%s", reason)
	}
}

func TestArgs(t *testing.T) {
	t.Setenv("DIALTONE_SERVER", "ws://example.test/ws")
	t.Setenv("DIALTONE_USER", "envuser")
	t.Setenv("DIALTONE_TOKEN", "")
	var stderr bytes.Buffer

	o, err := parseArgs([]string{"call", "bob", "-tone", "440", "-duration", "3s"}, &stderr)
	require.NoError(t, err)
	assert.Equal(t, "bob", o.peer)
	assert.Equal(t, "ws://example.test/ws", o.server)
	assert.Equal(t, "envuser", o.user)
	assert.Equal(t, 440.0, o.audio.tone)
	assert.Equal(t, 3*time.Second, o.duration)

	o, err = parseArgs([]string{"call", "-user", "flaguser", "carol"}, &stderr)
	require.NoError(t, err)
	assert.Equal(t, "carol", o.peer)
	assert.Equal(t, "flaguser", o.user, "a flag beats the environment")

	o, err = parseArgs([]string{"listen", "-auto-answer"}, &stderr)
	require.NoError(t, err)
	assert.True(t, o.autoAnswer)
	assert.False(t, o.relayOnly)

	o, err = parseArgs([]string{"call", "bob", "-relay-only"}, &stderr)
	require.NoError(t, err)
	assert.True(t, o.relayOnly)

	for _, bad := range [][]string{
		{}, {"dance"}, {"call"}, {"call", "a", "b"}, {"listen", "x"},
		{"call", "bob", "-in", "x.wav", "-tone", "440"}, {"call", "bob", "-nope"},
		{"devices", "-user", "x"}, {"call", "bob", "-duration", "-1s"},
	} {
		_, err := parseArgs(bad, &stderr)
		assert.Error(t, err, "%q", bad)
		assert.Equal(t, exitUsage, run(context.Background(), bad, strings.NewReader(""), io.Discard, io.Discard), "%q", bad)
	}
	t.Setenv("DIALTONE_USER", "")
	_, err = parseArgs([]string{"listen"}, &stderr)
	assert.ErrorContains(t, err, "-user")
}

func TestDevicesVirtual(t *testing.T) {
	var out bytes.Buffer
	code := run(context.Background(), []string{"devices", "-audio", "virtual"}, strings.NewReader(""), &out, io.Discard)
	assert.Equal(t, 0, code)
	assert.Contains(t, out.String(), "capture devices:")
	assert.Contains(t, out.String(), "* Virtual Microphone")
	assert.Contains(t, out.String(), "playback devices:")
}

func TestBar(t *testing.T) {
	assert.Equal(t, "[..........]", bar(media.SilenceDBov))
	assert.Equal(t, "[..........]", bar(-70))
	assert.Equal(t, "[#####.....]", bar(-30))
	assert.Equal(t, "[##########]", bar(0))
}

// With -relay-only two dialers talk through a real coturn whose shared
// secret the server holds: the call connects, the recording is the
// caller's file, and coturn logged an allocation for each of them.
func TestDialerRelayOnly(t *testing.T) {
	turn := coturntest.Start(t, coturntest.Options{Verbose: true})
	bin := buildDialer(t)
	url, _ := startServerWith(t, server.Config{TURNURLs: turn.URLs(), TURNSecret: turn.Secret})
	args := func(a ...string) []string { return append(a, "-server", url, "-loopback", "-relay-only") }
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.wav"), filepath.Join(dir, "out.wav")
	ref := mediatest.MultiTone(5*sec, 5)
	writeWAV(t, in, ref)

	listener := start(t, bin, "listener", nil, args("listen", "-user", "relay-listener", "-auto-answer", "-out", out)...)
	listener.out.waitFor(t, "listening as relay-listener", 20*time.Second)
	caller := start(t, bin, "caller", nil, args("call", "relay-listener", "-user", "relay-caller", "-in", in, "-duration", "3s")...)
	assert.Equal(t, 0, caller.exit(t, 30*time.Second), "caller")
	assert.Equal(t, 0, listener.exit(t, 10*time.Second), "listener")
	assert.Contains(t, caller.out.String(), "call connected")

	w, err := media.OpenWAV(out)
	require.NoError(t, err)
	corr, _, found := heard(ref, w.Samples)
	t.Logf("out.wav through coturn: signal in %v, corr %.3f", found, corr)
	assert.GreaterOrEqual(t, found, 2*time.Second)
	assert.Greater(t, corr, 0.8)
	for _, user := range []string{"relay-caller", "relay-listener"} {
		t.Log(turn.WaitLog(t, time.Second, ":"+user+">", "ALLOCATE processed, success"))
	}
}
