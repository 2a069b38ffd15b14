package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/signaling"
)

// Every client-to-client type crosses real WebSockets unchanged, with from
// set by the server; invite is answered `waiting`.
func TestWebSocketRoutesEveryType(t *testing.T) {
	s := newTestServer(t, Config{})
	url := startHTTP(t, s)
	alice := dialUser(t, url, "alice", signaling.DialConfig{})
	bob := dialUser(t, url, "bob", signaling.DialConfig{})

	cases := []struct {
		typ      signaling.Type
		from, to *signaling.Client
		data     any
	}{
		{signaling.TypeInvite, alice, bob, signaling.Invite{DisplayName: "Alice A.", Extra: map[string]string{"k": "v"}}},
		{signaling.TypeRinging, bob, alice, nil},
		{signaling.TypeAccept, bob, alice, nil},
		{signaling.TypeSignal, alice, bob, map[string]any{"description": map[string]string{"type": "offer", "sdp": "v=0\r\n"}}},
		{signaling.TypeSignal, bob, alice, map[string]any{"candidate": map[string]any{"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host"}}},
		{signaling.TypeDecline, bob, alice, signaling.Hangup{Reason: "declined"}},
		{signaling.TypeBusy, bob, alice, nil},
		{signaling.TypeCancel, alice, bob, signaling.Hangup{Reason: "cancelled"}},
		{signaling.TypeHangup, alice, bob, signaling.Hangup{Reason: "hangup"}},
	}
	for _, tc := range cases {
		t.Run(string(tc.typ), func(t *testing.T) {
			to := tc.to.Ready().User
			m := msg(t, tc.typ, to, "call-1", tc.data)
			send(t, tc.from, m)
			got := recvType(t, tc.to, tc.typ)
			assert.Equal(t, tc.from.Ready().User, got.From)
			assert.Equal(t, to, got.To)
			assert.Equal(t, "call-1", got.Call)
			if tc.data != nil {
				assert.JSONEq(t, string(m.Data), string(got.Data))
			}
			if tc.typ == signaling.TypeInvite {
				w := recvType(t, tc.from, signaling.TypeWaiting)
				assert.Equal(t, "bob", w.From)
				assert.Equal(t, "call-1", w.Call)
			}
		})
	}
	assert.Equal(t, uint64(len(cases)), s.Stats().Routed)
}

func TestOfflineRecipient(t *testing.T) {
	s := newTestServer(t, Config{})
	url := startHTTP(t, s)
	alice := dialUser(t, url, "alice", signaling.DialConfig{})
	send(t, alice, msg(t, signaling.TypeInvite, "nobody", "c9", signaling.Invite{}))
	m := recvType(t, alice, signaling.TypeOffline)
	assert.Equal(t, "nobody", m.From)
	assert.Equal(t, "c9", m.Call)
	// Only an invite is answered `offline`: anything else to an absent
	// user goes unanswered, as it would to a present one.
	send(t, alice, msg(t, signaling.TypeSignal, "nobody", "c9", map[string]any{}))
	barrier(t, alice)
}

func TestTokenAuth(t *testing.T) {
	secret := []byte("s3cret")
	s := New(Config{Authenticator: TokenAuth{Secret: secret}})
	url := startHTTP(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	tok, err := NewToken(secret, "alice", time.Minute)
	require.NoError(t, err)
	c, err := signaling.Dial(ctx, url, signaling.DialConfig{Token: tok})
	require.NoError(t, err)
	assert.Equal(t, "alice", c.Ready().User)
	require.NoError(t, c.Close())

	// Browsers put the token in the query.
	ws, resp, err := websocket.DefaultDialer.Dial(url+"?token="+tok, nil)
	require.NoError(t, err)
	_ = resp.Body.Close()
	r := rawRecv(t, ws)
	assert.Equal(t, signaling.TypeReady, r.Type)
	_ = ws.Close()

	// Alice's token with another user's name, or a later expiry, under
	// her signature.
	parts := strings.Split(tok, ".")
	require.Len(t, parts, 4)
	swapped := strings.Join([]string{parts[0], base64.RawURLEncoding.EncodeToString([]byte("bob")), parts[2], parts[3]}, ".")
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	require.NoError(t, err)
	extended := strings.Join([]string{parts[0], parts[1], strconv.FormatInt(exp+3600, 10), parts[3]}, ".")
	bad := map[string]string{
		"none":            "",
		"wrong secret":    mustToken(t, []byte("other"), "alice", time.Minute),
		"expired":         mustToken(t, secret, "alice", -time.Second),
		"tampered":        strings.Replace(tok, "v1.", "v1.x", 1),
		"another user":    swapped,
		"expiry extended": extended,
		"future-dated":    mustToken(t, secret, "alice", 10*365*24*time.Hour),
		"garbage":         "abc.def",
		"huge":            strings.Repeat("a", 64<<10),
		"signature only":  "." + parts[3],
	}
	for name, tok := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := signaling.Dial(ctx, url, signaling.DialConfig{Token: tok})
			require.ErrorIs(t, err, signaling.ErrUnauthorized)
		})
	}
	// Dev mode is off by default: a bare user name is not enough.
	_, err = signaling.Dial(ctx, url+"?user=alice", signaling.DialConfig{})
	require.ErrorIs(t, err, signaling.ErrUnauthorized)
	assert.GreaterOrEqual(t, s.Stats().Unauthorized, uint64(len(bad)+1))
}

func TestNoAuthenticatorRejectsAll(t *testing.T) {
	s := New(Config{})
	url := startHTTP(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err := signaling.Dial(ctx, url+"?user=alice", signaling.DialConfig{Token: "alice"})
	require.ErrorIs(t, err, signaling.ErrUnauthorized)
}

func mustToken(t *testing.T, secret []byte, user string, ttl time.Duration) string {
	t.Helper()
	tok, err := NewToken(secret, user, ttl)
	require.NoError(t, err)
	return tok
}

func TestVerifyToken(t *testing.T) {
	secret := []byte("k")
	tok := mustToken(t, secret, "user@example.com", time.Hour)
	u, err := VerifyToken(secret, tok)
	require.NoError(t, err)
	assert.Equal(t, "user@example.com", u)
	_, err = VerifyToken(secret, mustToken(t, secret, "a", -time.Minute))
	assert.ErrorIs(t, err, ErrTokenExpired)
	_, err = VerifyToken([]byte("x"), tok)
	assert.ErrorIs(t, err, ErrBadToken)
	_, err = NewToken(secret, "bad user", time.Hour)
	assert.ErrorIs(t, err, ErrBadUser)
	_, err = NewToken(nil, "a", time.Hour)
	assert.Error(t, err)
}

// A forged from is overwritten with the authenticated user.
func TestForgedFromOverwritten(t *testing.T) {
	s := newTestServer(t, Config{})
	url := startHTTP(t, s)
	mallory := rawDial(t, url, "mallory")
	bob := dialUser(t, url, "bob", signaling.DialConfig{})
	require.NoError(t, mallory.WriteMessage(websocket.TextMessage,
		[]byte(`{"type":"invite","from":"alice","to":"bob","call":"x","data":{"displayName":"Alice"}}`)))
	got := recvType(t, bob, signaling.TypeInvite)
	assert.Equal(t, "mallory", got.From)
	w := rawRecv(t, mallory)
	assert.Equal(t, signaling.TypeWaiting, w.Type)
}

// A second connection of a user replaces the first, which is told why and,
// told to stop when replaced, does not reconnect; routing goes to the new
// one.
func TestReplacement(t *testing.T) {
	s := newTestServer(t, Config{})
	url := startHTTP(t, s)
	old := dialUser(t, url, "alice", signaling.DialConfig{Backoff: signaling.Backoff{Initial: time.Millisecond}, StopWhenReplaced: true})
	bob := dialUser(t, url, "bob", signaling.DialConfig{})
	newer := dialUser(t, url, "alice", signaling.DialConfig{})

	e := recvError(t, old)
	assert.Equal(t, signaling.CodeReplaced, e.Code)
	st := waitStatus(t, old, signaling.StateClosed)
	assert.ErrorIs(t, st.Err, signaling.ErrReplaced)
	_, ok := <-old.Incoming()
	assert.False(t, ok, "incoming closed after replacement")
	assert.ErrorIs(t, old.Send(context.Background(), msg(t, signaling.TypeRinging, "bob", "c", nil)), signaling.ErrClosed)

	send(t, bob, msg(t, signaling.TypeRinging, "alice", "c", nil))
	recvType(t, newer, signaling.TypeRinging)
	assert.Equal(t, uint64(1), s.Stats().Replaced)

	// A local conn replaces a WebSocket one just the same.
	loc := connectLocal(t, s, "alice", LocalOptions{})
	assert.Equal(t, signaling.CodeReplaced, recvError(t, newer).Code)
	send(t, bob, msg(t, signaling.TypeRinging, "alice", "c", nil))
	recvType(t, loc, signaling.TypeRinging)
}

// By default a replaced client reconnects (after a backoff): a stolen
// token or a stale second device cannot sign the user out for good.
func TestReplacedClientReconnects(t *testing.T) {
	s := newTestServer(t, Config{})
	url := startHTTP(t, s)
	old := dialUser(t, url, "alice", signaling.DialConfig{Backoff: signaling.Backoff{Initial: 10 * time.Millisecond, Max: time.Second}})
	thief := rawDial(t, url, "alice")

	assert.Equal(t, signaling.CodeReplaced, recvError(t, old).Code)
	st := waitStatus(t, old, signaling.StateDown)
	assert.ErrorIs(t, st.Err, signaling.ErrReplaced)
	waitStatus(t, old, signaling.StateUp)
	recvType(t, old, signaling.TypeReady)
	assert.Equal(t, signaling.CodeReplaced, rawRecvError(t, thief).Code)
	bob := dialUser(t, url, "bob", signaling.DialConfig{})
	send(t, bob, msg(t, signaling.TypeRinging, "alice", "c", nil))
	recvType(t, old, signaling.TypeRinging)
}

// The TURN REST credentials verify with an independent HMAC-SHA1.
func TestRelayCredentials(t *testing.T) {
	secret := []byte("turn-secret")
	clock := newFakeClock()
	s := newTestServer(t, Config{
		ICEServers: []signaling.ICEServer{{URLs: []string{"stun:127.0.0.1:3478"}}},
		TURNURLs:   []string{"turn:127.0.0.1:3478?transport=udp"},
		TURNSecret: secret,
		TURNTTL:    10 * time.Minute,
	})
	s.hub.now = clock.Now
	url := startHTTP(t, s)
	alice := dialUser(t, url, "alice", signaling.DialConfig{})
	check := func(servers []signaling.ICEServer) {
		t.Helper()
		require.Len(t, servers, 2)
		assert.Equal(t, []string{"stun:127.0.0.1:3478"}, servers[0].URLs)
		assert.Empty(t, servers[0].Username)
		turn := servers[1]
		assert.Equal(t, []string{"turn:127.0.0.1:3478?transport=udp"}, turn.URLs)
		exp, user, ok := strings.Cut(turn.Username, ":")
		require.True(t, ok)
		assert.Equal(t, "alice", user)
		assert.Equal(t, strconv.FormatInt(clock.Now().Add(10*time.Minute).Unix(), 10), exp)
		mac := hmac.New(sha1.New, secret)
		mac.Write([]byte(turn.Username))
		assert.Equal(t, base64.StdEncoding.EncodeToString(mac.Sum(nil)), turn.Credential)
	}
	check(alice.Ready().ICEServers)
	assert.Equal(t, 600, alice.Ready().RelayTTL)
	assert.Equal(t, signaling.ProtocolVersion, alice.Ready().Protocol)

	clock.Advance(time.Minute)
	send(t, alice, signaling.Message{Type: signaling.TypeRelay, Call: "c1"})
	m := recvType(t, alice, signaling.TypeRelayConfig)
	assert.Equal(t, "c1", m.Call)
	var rc signaling.RelayConfig
	require.NoError(t, m.Unmarshal(&rc))
	assert.Equal(t, 600, rc.RelayTTL)
	check(rc.ICEServers)
}

func TestRejectedInputKeepsConnection(t *testing.T) {
	s := newTestServer(t, Config{MaxMessageSize: 1024})
	url := startHTTP(t, s)
	ws := rawDial(t, url, "alice")
	bob := dialUser(t, url, "bob", signaling.DialConfig{})
	cases := []struct {
		name  string
		frame string
		code  string
	}{
		{"malformed", `{"type":`, signaling.CodeMalformed},
		{"not an object", `[1,2]`, signaling.CodeMalformed},
		{"missing type", `{"to":"bob"}`, signaling.CodeMissingType},
		{"type not well formed", `{"type":"tele port","to":"bob","call":"c"}`, signaling.CodeUnknownType},
		{"unknown type without to", `{"type":"teleport","call":"c"}`, signaling.CodeMissingTo},
		{"server-only type", `{"type":"ready"}`, signaling.CodeForbiddenType},
		{"missing to", `{"type":"invite","call":"c"}`, signaling.CodeMissingTo},
		{"missing call", `{"type":"invite","to":"bob"}`, signaling.CodeMissingCall},
		{"bad recipient", `{"type":"invite","to":"a b","call":"c"}`, signaling.CodeBadRecipient},
		{"too large", `{"type":"signal","to":"bob","call":"c","data":{"x":"` + strings.Repeat("a", 2000) + `"}}`, signaling.CodeTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(tc.frame)))
			assert.Equal(t, tc.code, rawRecvError(t, ws).Code)
		})
	}
	require.NoError(t, ws.WriteMessage(websocket.BinaryMessage, []byte(`{"type":"ringing","to":"bob","call":"c"}`)))
	assert.Equal(t, signaling.CodeMalformed, rawRecvError(t, ws).Code)
	// Still routable after all that.
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"ringing","to":"bob","call":"c"}`)))
	got := recvType(t, bob, signaling.TypeRinging)
	assert.Equal(t, "alice", got.From)

	// A frame far over the limit (8×) closes the connection.
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(strings.Repeat(" ", 9*1024))))
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(waitFor)))
	_, _, err := ws.ReadMessage()
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, websocket.CloseMessageTooBig, ce.Code)
}

// A sender over its rate is slowed down, not refused: its messages wait
// (up to RateWait each) and all arrive, paced at the rate.
func TestRatePaced(t *testing.T) {
	s := newTestServer(t, Config{RateLimit: 4, RateBurst: 3, MaxStrikes: 1})
	url := startHTTP(t, s)
	ws := rawDial(t, url, "alice")
	bob := dialUser(t, url, "bob", signaling.DialConfig{})
	start := time.Now()
	for i := 0; i < 7; i++ {
		require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"signal","to":"bob","call":"c`+strconv.Itoa(i)+`"}`)))
	}
	for i := 0; i < 7; i++ {
		assert.Equal(t, "c"+strconv.Itoa(i), recvType(t, bob, signaling.TypeSignal).Call)
	}
	assert.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond, "4 past the burst at 4/s")
	assert.True(t, s.Online("alice"))
	assert.Zero(t, s.Stats().Rejected)
}

// A message that would wait longer than RateWait is answered
// `rate-limited` with its call ID and frame number, and the connection
// stays: it costs no strike.
func TestRateLimit(t *testing.T) {
	s := newTestServer(t, Config{RateLimit: 2, RateBurst: 3, RateWait: 10 * time.Millisecond, MaxStrikes: 1})
	url := startHTTP(t, s)
	ws := rawDial(t, url, "alice")
	bob := dialUser(t, url, "bob", signaling.DialConfig{})
	for i := 0; i < 5; i++ {
		require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"signal","to":"bob","call":"c`+strconv.Itoa(i)+`"}`)))
	}
	for i := 0; i < 3; i++ {
		assert.Equal(t, "c"+strconv.Itoa(i), recvType(t, bob, signaling.TypeSignal).Call)
	}
	for _, i := range []int{3, 4} {
		m := rawRecv(t, ws)
		require.Equal(t, signaling.TypeError, m.Type)
		var e signaling.RateLimited
		require.NoError(t, m.Unmarshal(&e))
		assert.Equal(t, signaling.CodeRateLimited, e.Code)
		assert.Equal(t, "c"+strconv.Itoa(i), m.Call, "the answer names the call")
		assert.Equal(t, signaling.TypeSignal, e.Rejected)
		assert.Equal(t, uint64(i+1), e.Seq, "the answer names the frame")
		assert.Positive(t, e.RetryAfter)
	}
	assert.True(t, s.Online("alice"), "rate limiting alone does not disconnect")
	assert.Zero(t, s.Stats().Abusive)
}

// A client that keeps sending rejected input is closed as abusive.
func TestAbusiveClientClosed(t *testing.T) {
	s := newTestServer(t, Config{MaxStrikes: 3})
	url := startHTTP(t, s)
	ws := rawDial(t, url, "alice")
	for i := 0; i < 10; i++ {
		if ws.WriteMessage(websocket.TextMessage, []byte(`nonsense`)) != nil {
			break
		}
	}
	var last signaling.Error
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(waitFor)))
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, websocket.ClosePolicyViolation, ce.Code)
			break
		}
		m, err := signaling.Decode(b, 0)
		require.NoError(t, err)
		require.NoError(t, m.Unmarshal(&last))
	}
	assert.Equal(t, signaling.CodeAbusive, last.Code)
	assert.Equal(t, uint64(1), s.Stats().Abusive)
}

func TestOriginCheck(t *testing.T) {
	s := newTestServer(t, Config{AllowedOrigins: []string{"https://app.example"}})
	url := startHTTP(t, s)
	dial := func(origin string) (int, error) {
		h := http.Header{}
		h.Set("Origin", origin)
		ws, resp, err := websocket.DefaultDialer.Dial(url+"?user=alice", h)
		if ws != nil {
			_ = ws.Close()
		}
		if resp != nil {
			_ = resp.Body.Close()
			return resp.StatusCode, err
		}
		return 0, err
	}
	code, err := dial("https://evil.example")
	require.Error(t, err)
	assert.Equal(t, http.StatusForbidden, code)
	code, err = dial("https://app.example")
	require.NoError(t, err)
	assert.Equal(t, http.StatusSwitchingProtocols, code)
	host := strings.TrimPrefix(url, "ws://")
	_, err = dial("http://" + host)
	require.NoError(t, err, "same-host origin")
}

// Shutdown tells every client, refuses new ones and returns in time.
func TestShutdown(t *testing.T) {
	s := New(Config{DevMode: true})
	url := startHTTP(t, s)
	ws := dialUser(t, url, "alice", signaling.DialConfig{Backoff: signaling.Backoff{Initial: time.Hour}})
	loc := connectLocal(t, s, "bob", LocalOptions{})

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	start := time.Now()
	require.NoError(t, s.Shutdown(ctx))
	assert.Less(t, time.Since(start), 3*time.Second)

	assert.Equal(t, signaling.CodeShutdown, recvError(t, ws).Code)
	assert.Equal(t, signaling.CodeShutdown, recvError(t, loc).Code)
	st := waitStatus(t, loc, signaling.StateClosed)
	assert.ErrorIs(t, st.Err, signaling.ErrServerShutdown)
	waitStatus(t, ws, signaling.StateDown)

	_, err := s.ConnectLocal(ctx, "carol", LocalOptions{})
	assert.ErrorIs(t, err, ErrServerClosed)
	resp, err := http.Get(strings.Replace(url, "ws://", "http://", 1) + "?user=carol")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

// Shutdown with an expired deadline still tears everything down.
func TestShutdownDeadline(t *testing.T) {
	s := New(Config{DevMode: true})
	url := startHTTP(t, s)
	ws := rawDial(t, url, "alice") // never reads: cannot take part in a clean close
	_ = ws
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Shutdown(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	s.hub.mu.Lock()
	assert.Empty(t, s.hub.live)
	s.hub.mu.Unlock()
}

// A sender cannot get a recipient cut off: once others' messages fill
// 3/4 of the recipient's queue, more are dropped and their sender is
// answered `rate-limited`; the recipient stays connected and gets what
// was queued. The sender is never blocked and others are served.
func TestFloodDoesNotCutOffRecipient(t *testing.T) {
	s := newTestServer(t, Config{SendQueue: 8, RateLimit: 1e6, RateBurst: 1e6})
	alice := connectLocal(t, s, "alice", LocalOptions{IncomingBuffer: 4096})
	slow := connectLocal(t, s, "slow", LocalOptions{IncomingBuffer: 1})
	carol := connectLocal(t, s, "carol", LocalOptions{})

	big := map[string]string{"pad": strings.Repeat("x", 100)}
	limited := 0
	for i := 1; i <= 40; i++ {
		send(t, alice, msg(t, signaling.TypeSignal, "slow", "c"+strconv.Itoa(i), big))
		require.Eventually(t, func() bool {
			st := s.Stats()
			return st.Routed+st.Rejected >= uint64(i)
		}, waitFor, 100*time.Microsecond)
		for len(alice.Incoming()) > 0 { // alice reads: she must not be the slow one
			m := <-alice.Incoming()
			require.Equal(t, signaling.TypeError, m.Type)
			var e signaling.Error
			require.NoError(t, m.Unmarshal(&e))
			assert.Equal(t, signaling.CodeRateLimited, e.Code)
			assert.NotEmpty(t, m.Call)
			limited++
		}
	}
	send(t, alice, msg(t, signaling.TypeRinging, "carol", "c2", nil))
	recvType(t, carol, signaling.TypeRinging)
	assert.GreaterOrEqual(t, limited, 40-14, "at most 14 fit: 6 queued, the rest in flight")
	assert.True(t, s.Online("slow"), "the recipient was cut off")
	assert.Zero(t, s.Stats().SlowConsumers)
	// The slow reader, once it reads, gets the messages queued for it and
	// keeps its connection.
	for i := 0; i < 6; i++ {
		recvType(t, slow, signaling.TypeSignal)
	}
	send(t, carol, msg(t, signaling.TypeRinging, "slow", "c3", nil))
	for {
		if m := recvT(t, slow); m.Type == signaling.TypeRinging {
			break
		}
	}
}

// Same over a real socket: a client that never reads is cut off while
// others are served.
func TestSlowWebSocketConsumer(t *testing.T) {
	s := newTestServer(t, Config{SendQueue: 8, RateLimit: 1e6, RateBurst: 1e6, WriteTimeout: 200 * time.Millisecond})
	url := startHTTP(t, s)
	alice := connectLocal(t, s, "alice", LocalOptions{IncomingBuffer: 4096})
	_ = rawDial(t, url, "slow") // never reads again
	carol := connectLocal(t, s, "carol", LocalOptions{})
	big := map[string]string{"pad": strings.Repeat("x", 60<<10)}
	m := msg(t, signaling.TypeSignal, "slow", "c", big)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// One message in flight at a time: once slow is cut off, alice gets a
	// single `offline`, never a burst that could overflow her own queue.
	for sent := uint64(1); s.Online("slow") && ctx.Err() == nil; sent++ {
		require.NoError(t, alice.Send(ctx, m))
		require.Eventually(t, func() bool {
			st := s.Stats()
			return st.Routed+st.Rejected >= sent || !s.Online("slow")
		}, waitFor, 100*time.Microsecond)
		for len(alice.Incoming()) > 0 {
			<-alice.Incoming()
		}
	}
	require.NoError(t, ctx.Err(), "slow consumer never cut off")
	send(t, alice, msg(t, signaling.TypeRinging, "carol", "c2", nil))
	recvType(t, carol, signaling.TypeRinging)
}

var errPush = errors.New("push service down")

type recordingPusher struct {
	mu    sync.Mutex
	calls []Push
	err   error
	done  chan Push
}

func (p *recordingPusher) Push(ctx context.Context, req Push) error {
	p.mu.Lock()
	p.calls = append(p.calls, req)
	err := p.err
	p.mu.Unlock()
	if p.done != nil {
		p.done <- req
	}
	return err
}

// The extension rule: a type this version does not know is peer-to-peer.
// The server relays it like `signal` (from set, data and its unknown fields
// untouched; like every type but `invite`, no answer when nobody can take
// it), and a Go client passes it on instead of dropping it.
func TestUnknownTypeRelayed(t *testing.T) {
	s := newTestServer(t, Config{})
	url := startHTTP(t, s)
	alice := dialUser(t, url, "alice", signaling.DialConfig{})
	bob := dialUser(t, url, "bob", signaling.DialConfig{})
	const later = signaling.Type("screen-share")
	require.False(t, later.Known())

	send(t, alice, signaling.Message{Type: later, To: "bob", Call: "c1", Data: []byte(`{"track":"t1","newField":[1,2]}`)})
	got := recvType(t, bob, later)
	assert.Equal(t, "alice", got.From)
	assert.Equal(t, "c1", got.Call)
	assert.JSONEq(t, `{"track":"t1","newField":[1,2]}`, string(got.Data))
	assert.Equal(t, uint64(1), s.Stats().Routed)

	send(t, alice, signaling.Message{Type: later, To: "carol", Call: "c1"})
	barrier(t, alice)
}

// A TURN credential TTL that is negative or under a second is refused, not
// turned into the default hour; zero takes the default.
func TestConfigTURNTTL(t *testing.T) {
	for _, tc := range []struct {
		ttl  time.Duration
		want time.Duration // 0: invalid
	}{
		{-time.Minute, 0},
		{-1, 0},
		{500 * time.Millisecond, 0},
		{0, time.Hour},
		{time.Second, time.Second},
		{10 * time.Minute, 10 * time.Minute},
	} {
		cfg := Config{DevMode: true, TURNURLs: []string{"turn:127.0.0.1:3478"}, TURNSecret: []byte("s"), TURNTTL: tc.ttl}
		err := cfg.Validate()
		if tc.want == 0 {
			assert.ErrorIs(t, err, ErrConfig, "TTL %v", tc.ttl)
			assert.PanicsWithError(t, err.Error(), func() { New(cfg) }, "TTL %v", tc.ttl)
			continue
		}
		require.NoError(t, err, "TTL %v", tc.ttl)
		s := New(cfg)
		assert.Equal(t, int(tc.want/time.Second), s.relayConfig("alice").RelayTTL, "TTL %v", tc.ttl)
		require.NoError(t, s.Close())
	}
}
