package site

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"github.com/dialtone-dev/dialtone/internal/testenv"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/dialtone-dev/dialtone/signaling/server"
)

func newSite(t *testing.T, cfg Config) *Site {
	t.Helper()
	s, err := New(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func get(t *testing.T, h http.Handler, target string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
	return w
}

// TestRoutes checks what each mode serves.
func TestRoutes(t *testing.T) {
	dev := newSite(t, Config{Dev: true, Metrics: true})
	prod := newSite(t, Config{Secret: []byte("s3cret")})
	tests := []struct {
		name    string
		site    *Site
		target  string
		status  int
		ctype   string
		contain string
	}{
		{"page", prod, "/", 200, "text/html", `<audio id="remote-audio" autoplay>`},
		{"script", prod, "/app.js", 200, "javascript", "onnegotiationneeded"},
		{"style", prod, "/style.css", 200, "text/css", "meter"},
		{"health", prod, "/healthz", 200, "application/json", `"status":"ok"`},
		{"no token endpoint in production", prod, "/token?user=alice", 404, "", ""},
		{"no metrics unless asked", prod, "/metrics", 404, "", ""},
		{"token", dev, "/token?user=alice", 200, "application/json", `"user":"alice"`},
		{"bad user", dev, "/token?user=a:b", 400, "application/json", "error"},
		{"no user", dev, "/token", 400, "application/json", "error"},
		{"metrics", dev, "/metrics", 200, "text/plain", "dialtone_signaling_connections"},
		{"unknown", dev, "/nope", 404, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := get(t, tt.site, tt.target)
			assert.Equal(t, tt.status, w.Code)
			assert.Contains(t, w.Header().Get("Content-Type"), tt.ctype)
			assert.Contains(t, w.Body.String(), tt.contain)
		})
	}
	page := get(t, prod, "/")
	assert.Contains(t, page.Header().Get("Content-Security-Policy"), "default-src 'self'")
	assert.NotContains(t, page.Body.String()+get(t, prod, "/app.js").Body.String(), "http://", "the page loads nothing from elsewhere")
}

// TestTokenLogin: a token from /token (dev mode) logs in over the real
// WebSocket, as the web page does; so does a bare ?user= name; a forged
// token does not.
func TestTokenLogin(t *testing.T) {
	s := newSite(t, Config{Dev: true})
	ts := httptest.NewServer(s)
	defer ts.Close()
	ws := "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var tok struct{ Token string }
	require.NoError(t, json.Unmarshal(get(t, s, "/token?user=alice").Body.Bytes(), &tok))
	c, err := signaling.Dial(ctx, ws, signaling.DialConfig{Token: tok.Token, TokenInQuery: true, NoReconnect: true})
	require.NoError(t, err)
	assert.Equal(t, "alice", c.Ready().User)
	require.NoError(t, c.Close())

	c, err = signaling.Dial(ctx, ws+"?user=bob", signaling.DialConfig{NoReconnect: true})
	require.NoError(t, err)
	assert.Equal(t, "bob", c.Ready().User)
	require.NoError(t, c.Close())

	forged, err := server.NewToken([]byte("another secret"), "mallory", time.Hour)
	require.NoError(t, err)
	_, err = signaling.Dial(ctx, ws, signaling.DialConfig{Token: forged, NoReconnect: true})
	assert.ErrorIs(t, err, signaling.ErrUnauthorized)
}

func TestAuthenticator(t *testing.T) {
	secret := []byte("k")
	good, err := server.NewToken(secret, "alice", time.Hour)
	require.NoError(t, err)
	tests := []struct {
		name   string
		secret []byte
		dev    bool
		query  string
		user   string
		err    error
	}{
		{"token", secret, false, "?token=" + good, "alice", nil},
		{"bad token", secret, false, "?token=v1.x.1.y", "", server.ErrBadToken},
		{"bad token even in dev mode", secret, true, "?token=v1.x.1.y", "", server.ErrBadToken},
		{"name without token in production", secret, false, "?user=bob", "", server.ErrNoCredentials},
		{"name in dev mode", nil, true, "?user=bob", "bob", nil},
		{"token and dev mode", secret, true, "?token=" + good, "alice", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Authenticator(tt.secret, tt.dev)
			require.NoError(t, err)
			user, err := a.Authenticate(httptest.NewRequest(http.MethodGet, "/ws"+tt.query, nil))
			if tt.err != nil {
				assert.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.user, user)
			// A token's connection ends when the token does.
			_, exp, err := a.(server.ExpiringAuthenticator).AuthenticateExpiry(httptest.NewRequest(http.MethodGet, "/ws"+tt.query, nil))
			require.NoError(t, err)
			assert.Equal(t, strings.HasPrefix(tt.query, "?token="), !exp.IsZero())
		})
	}
	_, err = Authenticator(nil, false)
	assert.ErrorIs(t, err, ErrNoAuth)
	_, err = New(context.Background(), Config{})
	assert.ErrorIs(t, err, ErrNoAuth)
}

// TestSelfSignedServe serves HTTPS with a self-signed certificate and
// shuts down gracefully when the context ends, closing a connected client.
func TestSelfSignedServe(t *testing.T) {
	_, err := SelfSigned([]string{" ", ""}, time.Now())
	require.ErrorIs(t, err, ErrNoHosts)

	cert, err := SelfSigned([]string{"phone.test", "127.0.0.1"}, time.Now())
	require.NoError(t, err)
	assert.Equal(t, []string{"phone.test"}, cert.Leaf.DNSNames)
	require.Len(t, cert.Leaf.IPAddresses, 1)
	assert.True(t, cert.Leaf.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)))

	s, err := New(context.Background(), Config{Dev: true, ShutdownTimeout: 5 * time.Second})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- s.Serve(ctx, ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}()

	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	tlsCfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	defer client.CloseIdleConnections()
	base := "https://" + ln.Addr().String()
	resp, err := client.Get(base + "/healthz")
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dialer := &websocket.Dialer{TLSClientConfig: tlsCfg, HandshakeTimeout: 5 * time.Second}
	c, err := signaling.Dial(dctx, "wss://"+ln.Addr().String()+"/ws?user=alice", signaling.DialConfig{Dialer: dialer, NoReconnect: true})
	require.NoError(t, err)
	defer c.Close()

	start := time.Now()
	stop()
	select {
	case err := <-served:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	t.Logf("graceful shutdown with one client: %v", time.Since(start))
	// The client was told and closed for good (NoReconnect).
	for st := range c.Status() {
		if st.State == signaling.StateClosed {
			break
		}
	}
}

// TestEmbeddedTURN: the relay starts with the site and `ready` hands out
// credentials for it that verify against the relay's secret.
func TestEmbeddedTURN(t *testing.T) {
	s := newSite(t, Config{Dev: true, TURN: &server.TURNConfig{ListenAddr: "127.0.0.1:0", AllowLoopbackPeers: true}})
	require.NotNil(t, s.TURN())
	ts := httptest.NewServer(s)
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := signaling.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/ws?user=alice", signaling.DialConfig{NoReconnect: true})
	require.NoError(t, err)
	defer c.Close()
	var turn *signaling.ICEServer
	for i, is := range c.Ready().ICEServers {
		if strings.HasPrefix(is.URLs[0], "turn:") {
			turn = &c.Ready().ICEServers[i]
		}
	}
	require.NotNil(t, turn, "ready carries the relay: %+v", c.Ready().ICEServers)
	assert.Contains(t, turn.URLs[0], s.TURN().Addr().(*net.UDPAddr).AddrPort().String())
	assert.True(t, strings.HasSuffix(turn.Username, ":alice"))
	assert.NotEmpty(t, turn.Credential)
}

// TestRedisCluster: two sites sharing one Redis route an invite from a
// user on one to a user on the other.
func TestRedisCluster(t *testing.T) {
	bin := testenv.Program(t, "redis-server")
	addr := startRedis(t, bin)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	url := "redis://" + addr + "/0"
	down := newSite(t, Config{Dev: true, RedisURL: "redis://127.0.0.1:1/0"})
	assert.Equal(t, http.StatusServiceUnavailable, get(t, down, "/healthz").Code, "not ready while Redis is unreachable")

	a := newSite(t, Config{Dev: true, RedisURL: url, Signaling: server.Config{NodeID: "a"}})
	b := newSite(t, Config{Dev: true, RedisURL: url, Signaling: server.Config{NodeID: "b"}})
	tsA, tsB := httptest.NewServer(a), httptest.NewServer(b)
	defer tsA.Close()
	defer tsB.Close()
	for _, st := range []*Site{a, b} {
		require.Eventually(t, func() bool { return get(t, st, "/healthz").Code == http.StatusOK }, 10*time.Second, 10*time.Millisecond)
	}
	dial := func(ts *httptest.Server, user string) *signaling.Client {
		c, err := signaling.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/ws?user="+user, signaling.DialConfig{NoReconnect: true})
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	alice, bob := dial(tsA, "alice"), dial(tsB, "bob")
	inv, err := signaling.NewMessage(signaling.TypeInvite, "bob", "c-1", signaling.Invite{DisplayName: "Alice"})
	require.NoError(t, err)
	require.NoError(t, alice.Send(ctx, inv))
	for {
		select {
		case m := <-bob.Incoming():
			if m.Type != signaling.TypeInvite {
				continue
			}
			assert.Equal(t, "alice", m.From)
			assert.Equal(t, "c-1", m.Call)
			return
		case <-ctx.Done():
			t.Fatal("bob never got the invite across nodes")
		}
	}
}

// startRedis runs a throwaway redis-server on 127.0.0.1 and stops it (by
// its PID) at cleanup.
func startRedis(t *testing.T, bin string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	dir := t.TempDir()
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling a port that is not open yet: no event to wait on
	}
}
