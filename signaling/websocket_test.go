package signaling_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/dialtone-dev/dialtone/signaling/server"
)

const waitFor = 5 * time.Second

// serveOn serves a fresh dev-mode server on ln; the returned stop shuts it
// down and closes the HTTP server.
func serveOn(t *testing.T, ln net.Listener) (*server.Server, func()) {
	t.Helper()
	s := server.New(server.Config{DevMode: true, PingInterval: 50 * time.Millisecond, ReadTimeout: 300 * time.Millisecond})
	hs := httptest.NewUnstartedServer(s)
	hs.Listener = ln
	hs.Start()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		_ = s.Shutdown(ctx)
		hs.Close()
	}
	t.Cleanup(stop)
	return s, stop
}

func next(t *testing.T, tr signaling.Transport) signaling.Message {
	t.Helper()
	select {
	case m, ok := <-tr.Incoming():
		require.True(t, ok)
		return m
	case <-time.After(waitFor):
		require.FailNow(t, "no message")
	}
	return signaling.Message{}
}

func status(t *testing.T, tr signaling.Transport, want signaling.State) signaling.Status {
	t.Helper()
	for {
		select {
		case s, ok := <-tr.Status():
			require.True(t, ok)
			if s.State == want {
				return s
			}
		case <-time.After(waitFor):
			require.FailNow(t, "no status", "%v", want)
		}
	}
}

// The client reconnects (backoff) after the server restarts on the same
// address, reports down then up, and routes again.
func TestClientReconnectsAfterServerRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	_, stop := serveOn(t, ln)
	url := "ws://" + addr + "/?user="
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	cfg := signaling.DialConfig{Backoff: signaling.Backoff{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond},
		PingInterval: 50 * time.Millisecond, ReadTimeout: 300 * time.Millisecond}
	alice, err := signaling.Dial(ctx, url+"alice", cfg)
	require.NoError(t, err)
	defer alice.Close()
	assert.Equal(t, signaling.TypeReady, next(t, alice).Type)

	stop()
	status(t, alice, signaling.StateDown)
	require.ErrorIs(t, alice.Send(ctx, signaling.Message{Type: signaling.TypeRelay}), signaling.ErrDisconnected)

	ln2, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	serveOn(t, ln2)
	up := status(t, alice, signaling.StateUp)
	assert.GreaterOrEqual(t, up.Attempt, 1)
	for m := next(t, alice); m.Type != signaling.TypeReady; m = next(t, alice) {
		// the shutdown error comes first
	}
	bob, err := signaling.Dial(ctx, url+"bob", cfg)
	require.NoError(t, err)
	defer bob.Close()
	require.NoError(t, bob.Send(ctx, signaling.Message{Type: signaling.TypeRinging, To: "alice", Call: "c"}))
	m := next(t, alice)
	assert.Equal(t, signaling.TypeRinging, m.Type)
	assert.Equal(t, "bob", m.From)
}

// Keepalive: with a read timeout of 300 ms, pings keep an idle connection
// up for much longer.
func TestClientKeepalive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s, _ := serveOn(t, ln)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := signaling.Dial(ctx, "ws://"+ln.Addr().String()+"/?user=alice", signaling.DialConfig{
		PingInterval: 50 * time.Millisecond, ReadTimeout: 300 * time.Millisecond})
	require.NoError(t, err)
	defer c.Close()
	select {
	case st := <-c.Status():
		t.Fatalf("status change while idle: %+v", st)
	case <-time.After(time.Second): // idle for > 3 read timeouts
	}
	assert.True(t, s.Online("alice"))
	assert.Equal(t, uint64(1), s.Stats().Connects)
}

func TestDialErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	// Nothing listening: a network error, not an auth one.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	_, err = signaling.Dial(ctx, "ws://"+addr+"/", signaling.DialConfig{})
	assert.ErrorIs(t, err, signaling.ErrConnect)
	assert.NotErrorIs(t, err, signaling.ErrUnauthorized)

	// 401 is ErrUnauthorized.
	secret := []byte("k")
	s := server.New(server.Config{Authenticator: server.TokenAuth{Secret: secret}})
	hs := httptest.NewServer(s)
	defer hs.Close()
	defer s.Close()
	wsURL := "ws" + strings.TrimPrefix(hs.URL, "http")
	_, err = signaling.Dial(ctx, wsURL, signaling.DialConfig{Token: "nope"})
	assert.ErrorIs(t, err, signaling.ErrUnauthorized)
	tok, err := server.NewToken(secret, "alice", time.Minute)
	require.NoError(t, err)
	c, err := signaling.Dial(ctx, wsURL, signaling.DialConfig{Token: tok, TokenInQuery: true})
	require.NoError(t, err)
	require.NoError(t, c.Close())

	// Other statuses are connection errors.
	h404 := httptest.NewServer(http.NotFoundHandler())
	defer h404.Close()
	_, err = signaling.Dial(ctx, "ws"+strings.TrimPrefix(h404.URL, "http"), signaling.DialConfig{})
	assert.ErrorIs(t, err, signaling.ErrConnect)

	// A server that upgrades but never says ready.
	mute := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		_, _, _ = ws.ReadMessage()
	}))
	defer mute.Close()
	start := time.Now()
	_, err = signaling.Dial(ctx, "ws"+strings.TrimPrefix(mute.URL, "http"), signaling.DialConfig{ReadyTimeout: 100 * time.Millisecond})
	assert.ErrorIs(t, err, signaling.ErrReadyTimeout)
	assert.Less(t, time.Since(start), 2*time.Second)

	// The context bounds the wait as well.
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	_, err = signaling.Dial(short, "ws"+strings.TrimPrefix(mute.URL, "http"), signaling.DialConfig{})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

// A reconnect rejected with 401 is terminal and not retried.
func TestReconnectUnauthorizedIsTerminal(t *testing.T) {
	secret := []byte("k")
	var current atomic.Pointer[server.Server]
	s := server.New(server.Config{Authenticator: server.TokenAuth{Secret: secret}})
	current.Store(s)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		current.Load().ServeHTTP(w, r)
	}))
	defer hs.Close()
	tok, err := server.NewToken(secret, "alice", time.Minute)
	require.NoError(t, err)
	var calls atomic.Int32
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := signaling.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), signaling.DialConfig{
		Backoff: signaling.Backoff{Initial: time.Millisecond},
		TokenFunc: func(context.Context) (string, error) {
			if calls.Add(1) == 1 {
				return tok, nil
			}
			return "revoked", nil
		}})
	require.NoError(t, err)
	defer c.Close()
	s2 := server.New(server.Config{Authenticator: server.TokenAuth{Secret: secret}})
	defer s2.Close()
	current.Store(s2)
	require.NoError(t, s.Close()) // drops alice; her reconnection meets s2
	st := status(t, c, signaling.StateClosed)
	assert.ErrorIs(t, st.Err, signaling.ErrUnauthorized)
	assert.Equal(t, int32(2), calls.Load())
	_, ok := <-c.Incoming()
	for ok {
		_, ok = <-c.Incoming()
	}
}

// Send encodes in one pass into a reused buffer: data that is not JSON is
// refused with a clear error and nothing is sent; messages of any size
// before and after arrive intact, in order.
func TestClientSendEncoding(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	_, _ = serveOn(t, ln)
	url := "ws://" + ln.Addr().String() + "/"
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	dial := func(user string) *signaling.Client {
		c, err := signaling.Dial(ctx, url+"?user="+user, signaling.DialConfig{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		require.Equal(t, signaling.TypeReady, next(t, c).Type)
		return c
	}
	alice, bob := dial("alice"), dial("bob")

	bad := signaling.Message{Type: signaling.TypeSignal, To: "bob", Call: "c", Data: []byte(`{"sdp":`)}
	err = alice.Send(ctx, bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "encode signal")

	for _, size := range []int{10, 60 << 10, 100} {
		data := `{"sdp":"` + strings.Repeat("x", size) + `"}`
		m := signaling.Message{Type: signaling.TypeSignal, To: "bob", Call: "c", Data: []byte(data)}
		require.NoError(t, alice.Send(ctx, m))
		got := next(t, bob)
		assert.Equal(t, "alice", got.From)
		assert.JSONEq(t, data, string(got.Data))
	}
}

// DialConfig.User signs in to a dev-mode server by name; with a token the
// token decides, and a server with real authentication refuses a bare name.
func TestDialUser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	dev := server.New(server.Config{DevMode: true})
	devHS := httptest.NewServer(dev)
	defer devHS.Close()
	defer dev.Close()
	devURL := "ws" + strings.TrimPrefix(devHS.URL, "http") + "/?room=x" // other query parameters stay
	c, err := signaling.Dial(ctx, devURL, signaling.DialConfig{User: "carol"})
	require.NoError(t, err)
	assert.Equal(t, "carol", c.Ready().User)
	require.NoError(t, c.Close())
	c, err = signaling.Dial(ctx, devURL, signaling.DialConfig{User: "carol", Token: "dave"})
	require.NoError(t, err)
	assert.Equal(t, "dave", c.Ready().User, "a token wins over User")
	require.NoError(t, c.Close())

	secret := []byte("k")
	auth := server.New(server.Config{Authenticator: server.TokenAuth{Secret: secret}})
	authHS := httptest.NewServer(auth)
	defer authHS.Close()
	defer auth.Close()
	_, err = signaling.Dial(ctx, "ws"+strings.TrimPrefix(authHS.URL, "http"), signaling.DialConfig{User: "carol"})
	assert.ErrorIs(t, err, signaling.ErrUnauthorized)
}

// With several addresses, a client whose server goes away reconnects to
// the next one at its first attempt, and a first connection skips an
// address nobody answers at.
func TestClientRotatesAddresses(t *testing.T) {
	lnA, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	lnB, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	_, stopA := serveOn(t, lnA)
	b, _ := serveOn(t, lnB)
	urlA, urlB := "ws://"+lnA.Addr().String()+"/?user=alice", "ws://"+lnB.Addr().String()+"/?user=alice"
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	// A long backoff: only a move to B on the first attempt comes back
	// within waitFor.
	cfg := signaling.DialConfig{URLs: []string{urlB}, Backoff: signaling.Backoff{Initial: 20 * time.Millisecond, Max: time.Minute, Multiplier: 1000},
		PingInterval: 50 * time.Millisecond, ReadTimeout: 300 * time.Millisecond}
	alice, err := signaling.Dial(ctx, urlA, cfg)
	require.NoError(t, err)
	defer alice.Close()
	assert.Equal(t, signaling.TypeReady, next(t, alice).Type)
	assert.False(t, b.Online("alice"))

	stopA()
	status(t, alice, signaling.StateDown)
	up := status(t, alice, signaling.StateUp)
	assert.Equal(t, 1, up.Attempt)
	assert.True(t, b.Online("alice"))

	// A first connection whose first address is dead reaches the next.
	bob, err := signaling.Dial(ctx, "ws://"+lnA.Addr().String()+"/?user=bob",
		signaling.DialConfig{URLs: []string{"ws://" + lnB.Addr().String() + "/?user=bob"}})
	require.NoError(t, err)
	defer bob.Close()
	assert.True(t, b.Online("bob"))
}

// A hang-up written to a server that dies before it reads it (the write
// succeeds, the message is lost) is sent again after the reconnection; an
// invite, which a phone must not get twice, is not.
func TestClientResendsCallControlAfterDrop(t *testing.T) {
	up := websocket.Upgrader{}
	got := make(chan signaling.Message, 8)
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		ready, err := signaling.NewMessage(signaling.TypeReady, "", "", signaling.Ready{User: "alice"})
		if err != nil {
			return
		}
		b, err := signaling.Encode(ready)
		if err != nil || ws.WriteMessage(websocket.TextMessage, b) != nil {
			return
		}
		first := conns.Add(1) == 1
		for n := 0; ; n++ {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if first {
				if n == 1 {
					return // read both, handled neither: died
				}
				continue
			}
			m, err := signaling.Decode(b, signaling.DefaultMaxMessageSize)
			if err == nil {
				got <- m
			}
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := signaling.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), signaling.DialConfig{
		Backoff: signaling.Backoff{Initial: 10 * time.Millisecond}})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Send(ctx, signaling.Message{Type: signaling.TypeInvite, To: "bob", Call: "c1"}))
	require.NoError(t, c.Send(ctx, signaling.Message{Type: signaling.TypeHangup, To: "bob", Call: "c1"}))
	status(t, c, signaling.StateUp)
	require.NoError(t, c.Send(ctx, signaling.Message{Type: signaling.TypeRinging, To: "bob", Call: "c2"}))
	select {
	case m := <-got:
		assert.Equal(t, signaling.TypeHangup, m.Type)
		assert.Equal(t, "c1", m.Call)
	case <-time.After(waitFor):
		t.Fatal("the hang-up was not sent again")
	}
	select {
	case m := <-got:
		assert.Equal(t, signaling.TypeRinging, m.Type, "only the hang-up is sent again")
	case <-time.After(waitFor):
		t.Fatal("no message after the reconnection")
	}
}
