package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/signaling/server"
)

// restartable is a signaling server that can be killed and started again
// on the same address: while it is down every request gets 503.
type restartable struct {
	mu  sync.Mutex
	srv *server.Server // nil while down
}

func (r *restartable) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	srv := r.srv
	r.mu.Unlock()
	if srv == nil {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	srv.ServeHTTP(w, req)
}

// kill drops every connection and refuses new ones.
func (r *restartable) kill() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// start brings a fresh server up.
func (r *restartable) start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.srv = server.New(server.Config{DevMode: true})
}

// The status line shows the signaling connection next to the call state:
// a server killed mid-call shows "signaling reconnecting" while the call
// stays connected, and "signaling connected" once a server is back; the
// hang-up then reaches the other side through it.
func TestDialerSignalingLost(t *testing.T) {
	bin := buildDialer(t)
	rs := &restartable{}
	rs.start()
	ts := httptest.NewServer(rs)
	t.Cleanup(func() {
		rs.kill()
		ts.Close()
	})
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/"
	args := func(a ...string) []string { return append(a, "-server", url, "-loopback") }

	listener := start(t, bin, "listener", nil, args("listen", "-user", "sig-listener", "-auto-answer", "-tone", "660", "-out", filepath.Join(t.TempDir(), "o.wav"))...)
	listener.out.waitFor(t, "listening as sig-listener", 20*time.Second)
	caller := startPiped(t, bin, "caller", args("call", "sig-listener", "-user", "sig-caller", "-tone", "440", "-out", filepath.Join(t.TempDir(), "c.wav"))...)
	caller.out.waitFor(t, "call connected", 20*time.Second)
	caller.out.waitFor(t, "connected 00:", 10*time.Second) // a status line
	assert.Contains(t, lastStatusLine(caller.out.String()), "signaling connected")

	rs.kill()
	for _, p := range []*proc{caller, listener} {
		p.out.waitFor(t, "signaling lost", 15*time.Second)
	}
	// The call goes on, media peer to peer, and its line says signaling
	// is reconnecting.
	mark := len(caller.out.String())
	waitLine(t, caller, mark, "connected 00:", "signaling reconnecting")

	rs.start()
	for _, p := range []*proc{caller, listener} {
		p.out.waitFor(t, "signaling connected again", 20*time.Second)
	}
	mark = len(caller.out.String())
	waitLine(t, caller, mark, "connected 00:", "signaling connected")

	_, err := fmt.Fprint(caller.stdin, "h\n")
	require.NoError(t, err)
	assert.Equal(t, 0, caller.exit(t, 15*time.Second))
	assert.Equal(t, 0, listener.exit(t, 15*time.Second))
	assert.Contains(t, listener.out.String(), "call ended (remote-hangup)", "the hang-up went through the new server")
}

// lastStatusLine is the last status line (one with the meters) in out.
func lastStatusLine(out string) string {
	lines := strings.Split(out, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "  mic [") {
			return lines[i]
		}
	}
	return ""
}

// waitLine waits for a status line, printed after byte mark of p's output,
// that holds every one of parts.
func waitLine(t *testing.T, p *proc, mark int, parts ...string) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		p.out.mu.Lock()
		out, changed := p.out.buf.String(), p.out.changed
		p.out.mu.Unlock()
		for _, l := range strings.Split(out[min(mark, len(out)):], "\n") {
			if strings.Contains(l, "  mic [") && containsAll(l, parts) {
				return
			}
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("%s: no status line with %q within 10 s in:\n%s", p.name, parts, out[min(mark, len(out)):])
		}
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
