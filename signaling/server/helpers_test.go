package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/signaling"
)

const waitFor = 5 * time.Second

// newTestServer returns a dev-mode server closed at the end of the test.
func newTestServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	cfg.DevMode = true
	s := New(cfg)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func connectLocal(t *testing.T, s *Server, user string, opts LocalOptions) *LocalConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	lc, err := s.ConnectLocal(ctx, user, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = lc.Close() })
	first := recvT(t, lc)
	require.Equal(t, signaling.TypeReady, first.Type)
	return lc
}

// recvT waits for the next message on tr.
func recvT(t *testing.T, tr signaling.Transport) signaling.Message {
	t.Helper()
	select {
	case m, ok := <-tr.Incoming():
		require.True(t, ok, "incoming closed")
		return m
	case <-time.After(waitFor):
		require.FailNow(t, "no message")
	}
	return signaling.Message{}
}

// recvType waits for the next message and checks its type.
func recvType(t *testing.T, tr signaling.Transport, typ signaling.Type) signaling.Message {
	t.Helper()
	m := recvT(t, tr)
	require.Equal(t, typ, m.Type, "message %+v data %s", m, m.Data)
	return m
}

// recvError waits for an `error` message and returns its data.
func recvError(t *testing.T, tr signaling.Transport) signaling.Error {
	t.Helper()
	m := recvType(t, tr, signaling.TypeError)
	var e signaling.Error
	require.NoError(t, m.Unmarshal(&e))
	return e
}

// noMessage checks nothing arrives on tr for d. It is only used after a
// synchronising round trip, so d bounds a negative check, not a race.
func noMessage(t *testing.T, tr signaling.Transport, d time.Duration) {
	t.Helper()
	select {
	case m := <-tr.Incoming():
		require.FailNow(t, "unexpected message", "%+v %s", m, m.Data)
	case <-time.After(d):
	}
}

func send(t *testing.T, tr signaling.Transport, m signaling.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, tr.Send(ctx, m))
}

func msg(t *testing.T, typ signaling.Type, to, call string, data any) signaling.Message {
	t.Helper()
	m, err := signaling.NewMessage(typ, to, call, data)
	require.NoError(t, err)
	return m
}

// waitStatus waits for the next status of the given state.
func waitStatus(t *testing.T, tr signaling.Transport, st signaling.State) signaling.Status {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case s, ok := <-tr.Status():
			require.True(t, ok, "status closed while waiting for %v", st)
			if s.State == st {
				return s
			}
		case <-deadline:
			require.FailNow(t, "no status", "%v", st)
		}
	}
}

// startHTTP serves s on 127.0.0.1 and returns its ws:// URL.
func startHTTP(t *testing.T, s *Server) string {
	t.Helper()
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		_ = s.Close()
		hs.Close()
	})
	return "ws" + strings.TrimPrefix(hs.URL, "http")
}

// dialUser connects a WebSocket client as user (dev mode).
func dialUser(t *testing.T, url, user string, cfg signaling.DialConfig) *signaling.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := signaling.Dial(ctx, url+"?user="+user, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	recvType(t, c, signaling.TypeReady)
	return c
}

// rawDial opens a bare gorilla connection (for input a Client would never
// send) and consumes `ready`.
func rawDial(t *testing.T, url, user string) *websocket.Conn {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(url+"?user="+user, nil)
	require.NoError(t, err)
	if resp.Body != nil {
		_ = resp.Body.Close()
	}
	t.Cleanup(func() { _ = ws.Close() })
	m := rawRecv(t, ws)
	require.Equal(t, signaling.TypeReady, m.Type)
	return ws
}

func rawRecv(t *testing.T, ws *websocket.Conn) signaling.Message {
	t.Helper()
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(waitFor)))
	_, b, err := ws.ReadMessage()
	require.NoError(t, err)
	m, err := signaling.Decode(b, 0)
	require.NoError(t, err, "%s", b)
	return m
}

func rawRecvError(t *testing.T, ws *websocket.Conn) signaling.Error {
	t.Helper()
	m := rawRecv(t, ws)
	require.Equal(t, signaling.TypeError, m.Type, "%+v %s", m, m.Data)
	var e signaling.Error
	require.NoError(t, m.Unmarshal(&e))
	return e
}

// fakeClock is a settable clock for TTL tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_900_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// sendRaw hands arbitrary bytes to the server core as one frame from lc,
// as a broken or hostile client could.
func sendRaw(lc *LocalConn, raw []byte) error {
	c := lc.current()
	if c == nil {
		return signaling.ErrDisconnected
	}
	lc.up.push(linkItem{raw: append([]byte(nil), raw...), msg: c})
	return nil
}

// barrier makes a round trip to the server on tr (a `relay` request) and
// fails if any other message arrives before its answer: the server
// answered nothing to what tr sent before.
func barrier(t *testing.T, tr signaling.Transport) {
	t.Helper()
	send(t, tr, signaling.Message{Type: signaling.TypeRelay})
	recvType(t, tr, signaling.TypeRelayConfig)
}

func requestWithToken(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}
