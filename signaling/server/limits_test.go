package server

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/signaling"
)

// The message budget is the user's: reconnecting does not refill it.
func TestRateBudgetSurvivesReconnect(t *testing.T) {
	s := newTestServer(t, Config{RateLimit: 0.5, RateBurst: 4, RateWait: 10 * time.Millisecond})
	url := startHTTP(t, s)
	bob := dialUser(t, url, "bob", signaling.DialConfig{})
	for conn := 0; conn < 2; conn++ {
		ws := rawDial(t, url, "mallory")
		for i := 0; i < 4; i++ {
			call := "c" + strconv.Itoa(conn) + strconv.Itoa(i)
			require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"invite","to":"bob","call":"`+call+`"}`)))
			if conn == 0 {
				assert.Equal(t, call, recvType(t, bob, signaling.TypeInvite).Call)
				assert.Equal(t, signaling.TypeWaiting, rawRecv(t, ws).Type)
				continue
			}
			e := rawRecvError(t, ws)
			assert.Equal(t, signaling.CodeRateLimited, e.Code, "a new connection has no new budget")
		}
		_ = ws.Close()
	}
	barrier(t, bob) // nothing more reached bob
}

// A legitimate burst of 150 trickled ICE candidates is delayed to the
// rate, never refused nor the connection closed.
func TestTrickleBurstAccepted(t *testing.T) {
	s := newTestServer(t, Config{})
	url := startHTTP(t, s)
	alice := dialUser(t, url, "alice", signaling.DialConfig{})
	bob := dialUser(t, url, "bob", signaling.DialConfig{})
	const n = 150
	for i := 0; i < n; i++ {
		send(t, alice, msg(t, signaling.TypeSignal, "bob", "c1", map[string]any{
			"candidate": map[string]any{"candidate": "candidate:" + strconv.Itoa(i) + " 1 udp 2122260223 127.0.0.1 5000 typ host", "sdpMLineIndex": 0}}))
	}
	for i := 0; i < n; i++ {
		recvType(t, bob, signaling.TypeSignal)
	}
	barrier(t, alice) // no `rate-limited`, no close
	assert.True(t, s.Online("alice"))
	assert.Zero(t, s.Stats().Rejected)
}

// An auto-responder's answers to others' invites draw on those invites,
// not on its own budget: three callers keep it busy, and its `busy`
// replies all go out while the callers are each within their rate.
func TestAutoResponderBudget(t *testing.T) {
	s := newTestServer(t, Config{RateLimit: 1, RateBurst: 3, RateWait: 10 * time.Millisecond,
		InboundRateLimit: 100, InboundBurst: 100})
	url := startHTTP(t, s)
	bot := dialUser(t, url, "bot", signaling.DialConfig{})
	callers := []*signaling.Client{
		dialUser(t, url, "c0", signaling.DialConfig{}),
		dialUser(t, url, "c1", signaling.DialConfig{}),
		dialUser(t, url, "c2", signaling.DialConfig{}),
	}
	for i, c := range callers {
		for k := 0; k < 3; k++ {
			send(t, c, msg(t, signaling.TypeInvite, "bot", "call"+strconv.Itoa(i)+strconv.Itoa(k), nil))
		}
	}
	for range 9 {
		inv := recvType(t, bot, signaling.TypeInvite)
		send(t, bot, signaling.Message{Type: signaling.TypeBusy, To: inv.From, Call: inv.Call})
	}
	for _, c := range callers {
		got := 0
		for got < 3 {
			if m := recvT(t, c); m.Type == signaling.TypeBusy {
				got++
			} else {
				require.Equal(t, signaling.TypeWaiting, m.Type)
			}
		}
	}
	barrier(t, bot) // the bot was answered no `rate-limited`
	assert.True(t, s.Online("bot"))
	// The credit is for answers: the bot's own messages still draw on its
	// budget.
	for i := 0; i < 4; i++ {
		send(t, bot, msg(t, signaling.TypeSignal, "c0", "call00", nil))
	}
	assert.Equal(t, signaling.CodeRateLimited, recvError(t, bot).Code)
}

// Over its rate a sender is answered `rate-limited`, over and over,
// without a strike: it is never closed as abusive for it.
func TestRateLimitIsNoStrike(t *testing.T) {
	s := newTestServer(t, Config{RateLimit: 1, RateBurst: 1, RateWait: time.Millisecond, MaxStrikes: 2})
	url := startHTTP(t, s)
	ws := rawDial(t, url, "alice")
	_ = dialUser(t, url, "bob", signaling.DialConfig{})
	for i := 0; i < 10; i++ {
		require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"signal","to":"bob","call":"c"}`)))
	}
	for i := 1; i < 10; i++ {
		assert.Equal(t, signaling.CodeRateLimited, rawRecvError(t, ws).Code)
	}
	assert.True(t, s.Online("alice"))
	assert.Zero(t, s.Stats().Abusive)
}

// Messages to absent users other than invites are not answered, as they
// are not when the user is present: a `hangup` cannot tell who is online.
func TestPresenceNotObservable(t *testing.T) {
	s := newTestServer(t, Config{})
	url := startHTTP(t, s)
	eve := dialUser(t, url, "eve", signaling.DialConfig{})
	_ = dialUser(t, url, "present", signaling.DialConfig{})
	for _, typ := range []signaling.Type{signaling.TypeHangup, signaling.TypeSignal, signaling.TypeCancel,
		signaling.TypeRinging, signaling.TypeAccept, signaling.TypeDecline, signaling.TypeBusy} {
		for _, to := range []string{"present", "absent"} {
			send(t, eve, msg(t, typ, to, "scan", nil))
			barrier(t, eve)
		}
	}
	send(t, eve, msg(t, signaling.TypeInvite, "absent", "c", nil))
	recvType(t, eve, signaling.TypeOffline)
}

// One address may hold MaxConnsPerAddr connections and open ConnBurst at
// once; past either the upgrade is answered 429, and others are served.
func TestPerAddressLimits(t *testing.T) {
	t.Run("count", func(t *testing.T) {
		s := newTestServer(t, Config{MaxConnsPerAddr: 3})
		url := startHTTP(t, s)
		for i := 0; i < 3; i++ {
			rawDial(t, url, "u"+strconv.Itoa(i))
		}
		_, resp, err := websocket.DefaultDialer.Dial(url+"?user=u3", nil)
		require.Error(t, err)
		require.NotNil(t, resp)
		assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		_ = resp.Body.Close()
	})
	t.Run("rate", func(t *testing.T) {
		s := newTestServer(t, Config{ConnRate: 0.1, ConnBurst: 4})
		url := startHTTP(t, s)
		for i := 0; i < 4; i++ {
			ws := rawDial(t, url, "u")
			_ = ws.Close()
		}
		_, resp, err := websocket.DefaultDialer.Dial(url+"?user=u", nil)
		require.Error(t, err)
		require.NotNil(t, resp)
		assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		_ = resp.Body.Close()
		// Failed attempts count too: unauthenticated floods are limited.
		_, resp, err = websocket.DefaultDialer.Dial(url, nil)
		require.Error(t, err)
		assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		_ = resp.Body.Close()
	})
}

// The WebSocket client sends again what the server dropped for a rate
// limit (here the recipient's): every message arrives, later.
func TestClientResendsRateLimited(t *testing.T) {
	s := newTestServer(t, Config{RateLimit: 100, RateBurst: 2, InboundRateLimit: 10, InboundBurst: 2})
	url := startHTTP(t, s)
	alice := dialUser(t, url, "alice", signaling.DialConfig{})
	bob := dialUser(t, url, "bob", signaling.DialConfig{})
	const n = 8
	for i := 0; i < n; i++ {
		send(t, alice, msg(t, signaling.TypeSignal, "bob", "c"+strconv.Itoa(i), nil))
	}
	got := map[string]bool{}
	for len(got) < n {
		got[recvType(t, bob, signaling.TypeSignal).Call] = true
	}
	limited := 0
	for len(alice.Incoming()) > 0 {
		if m := <-alice.Incoming(); m.Type == signaling.TypeError {
			limited++
		}
	}
	assert.Positive(t, limited, "the server did drop some")
}
