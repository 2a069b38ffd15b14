package socketio_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/dialtone-dev/dialtone/signaling/socketio"
)

// fakeServer is an Engine.IO endpoint whose every connection runs script.
// Its handler goroutines end before the test does.
func fakeServer(t *testing.T, script func(ws *websocket.Conn)) string {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/socket.io/" || r.URL.Query().Get("EIO") != "4" || r.URL.Query().Get("transport") != "websocket" {
			http.Error(w, "not an Engine.IO 4 WebSocket request", http.StatusBadRequest)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		script(ws)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

const openPacket = `0{"sid":"e1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`

func send(ws *websocket.Conn, frames ...string) {
	for _, f := range frames {
		_ = ws.WriteMessage(websocket.TextMessage, []byte(f))
	}
}

func read(ws *websocket.Conn) string {
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		return "error: " + err.Error()
	}
	return string(b)
}

// handshake answers the client's CONNECT for namespace ns.
func handshake(ws *websocket.Conn, ns string) string {
	send(ws, openPacket)
	got := read(ws)
	prefix := "40"
	if ns != "/" {
		prefix += ns + ","
	}
	send(ws, prefix+`{"sid":"s1"}`)
	return got
}

func dialFake(t *testing.T, url string, cfg socketio.ConnConfig) *socketio.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := socketio.DialConn(ctx, url, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func nextEvent(t *testing.T, c *socketio.Conn) socketio.Event {
	t.Helper()
	select {
	case e, ok := <-c.Events():
		require.True(t, ok, "events closed: %v", c.Err())
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
		return socketio.Event{}
	}
}

func TestConnHandshakePingEventsEmit(t *testing.T) {
	got := make(chan string, 8)
	url := fakeServer(t, func(ws *websocket.Conn) {
		got <- handshake(ws, "/calls")
		send(ws, "2")
		got <- read(ws) // the pong
		send(ws, `42/calls,["hello",{"n":1},"x"]`, `42["other namespace"]`, `42/calls,7["with ack"]`)
		got <- read(ws) // the client's event
		got <- read(ws) // DISCONNECT on Close
	})
	c := dialFake(t, url, socketio.ConnConfig{Namespace: "/calls", Auth: map[string]string{"user": "alice"}})
	assert.Equal(t, `40/calls,{"user":"alice"}`, <-got)
	assert.Equal(t, "s1", c.ID())
	assert.Equal(t, "3", <-got, "pong")

	e := nextEvent(t, c)
	assert.Equal(t, "hello", e.Name)
	require.Len(t, e.Args, 2)
	assert.JSONEq(t, `{"n":1}`, string(e.Args[0]))
	assert.Equal(t, "with ack", nextEvent(t, c).Name, "the other namespace's event is not ours")

	require.NoError(t, c.Emit(context.Background(), "answer", map[string]int{"a": 1}, "r1"))
	assert.Equal(t, `42/calls,["answer",{"a":1},"r1"]`, <-got)
	require.NoError(t, c.Close())
	assert.Equal(t, `41/calls,`, <-got)
	assert.NoError(t, c.Err())
	assert.ErrorIs(t, c.Emit(context.Background(), "late"), signaling.ErrClosed)
}

func TestConnHandshakeFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script func(ws *websocket.Conn)
		want   []error
	}{
		{"not an open packet", func(ws *websocket.Conn) { send(ws, `hello`) }, []error{signaling.ErrConnect, socketio.ErrBadPacket}},
		{"open without sid", func(ws *websocket.Conn) { send(ws, `0{"pingInterval":1}`) }, []error{socketio.ErrBadPacket}},
		{"open without pings", func(ws *websocket.Conn) { send(ws, `0{"sid":"x"}`) }, []error{socketio.ErrBadPacket}},
		{"refused", func(ws *websocket.Conn) {
			send(ws, openPacket)
			read(ws)
			send(ws, `44{"message":"bad token"}`)
		}, []error{signaling.ErrConnect, socketio.ErrConnectRefused}},
		{"garbage answer", func(ws *websocket.Conn) {
			send(ws, openPacket)
			read(ws)
			send(ws, `4zz`)
		}, []error{socketio.ErrBadPacket}},
		{"event before connect", func(ws *websocket.Conn) {
			send(ws, openPacket)
			read(ws)
			send(ws, `42["early"]`)
		}, []error{socketio.ErrBadPacket}},
		{"closed", func(ws *websocket.Conn) {
			send(ws, openPacket)
			read(ws)
			send(ws, `1`)
		}, []error{socketio.ErrServerDisconnect}},
		{"silent", func(ws *websocket.Conn) { read(ws) }, []error{signaling.ErrConnect, context.DeadlineExceeded}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := fakeServer(t, tc.script)
			_, err := socketio.DialConn(context.Background(), url, socketio.ConnConfig{ConnectTimeout: 300 * time.Millisecond})
			require.Error(t, err)
			for _, w := range tc.want {
				assert.ErrorIs(t, err, w)
			}
		})
	}
}

// Garbage from the server after the handshake is logged and skipped; the
// connection and the events after it go on.
func TestConnSkipsGarbage(t *testing.T) {
	url := fakeServer(t, func(ws *websocket.Conn) {
		handshake(ws, "/")
		send(ws, ``, `9`, `4`, `4zz`, `42{"a":1}`, `42[`, `42[1,2]`, `42[]`, `451-["bin",{"_placeholder":true,"num":0}]`, `43`, "4\xff\xfe")
		_ = ws.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3})
		send(ws, `42["still here"]`)
		read(ws)
	})
	c := dialFake(t, url, socketio.ConnConfig{})
	assert.Equal(t, "still here", nextEvent(t, c).Name)
}

func TestConnEnds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		open   string
		script func(ws *websocket.Conn)
		want   error
	}{
		{"server disconnects the socket", openPacket, func(ws *websocket.Conn) { send(ws, `41`); read(ws) }, socketio.ErrServerDisconnect},
		{"server closes Engine.IO", openPacket, func(ws *websocket.Conn) { send(ws, `1`); read(ws) }, socketio.ErrServerDisconnect},
		{"pings stop", `0{"sid":"e1","pingInterval":100,"pingTimeout":100}`, func(ws *websocket.Conn) { read(ws) }, socketio.ErrPingTimeout},
		{"connection drops", openPacket, func(ws *websocket.Conn) {}, signaling.ErrDisconnected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := fakeServer(t, func(ws *websocket.Conn) {
				send(ws, tc.open)
				read(ws)
				send(ws, `40{"sid":"s1"}`)
				tc.script(ws)
			})
			c := dialFake(t, url, socketio.ConnConfig{})
			select {
			case _, ok := <-c.Events():
				assert.False(t, ok, "no event, only the end")
			case <-time.After(5 * time.Second):
				t.Fatal("connection did not end")
			}
			<-c.Done()
			assert.ErrorIs(t, c.Err(), tc.want)
			assert.ErrorIs(t, c.Emit(context.Background(), "x"), signaling.ErrDisconnected)
		})
	}
}

// The URL's path names the namespace, as in the JavaScript client.
func TestConnNamespaceFromURL(t *testing.T) {
	got := make(chan string, 1)
	url := fakeServer(t, func(ws *websocket.Conn) {
		got <- handshake(ws, "/calls")
		read(ws)
	})
	c := dialFake(t, url+"/calls", socketio.ConnConfig{})
	assert.Equal(t, `40/calls,`, <-got)
	require.NoError(t, c.Close())

	_, err := socketio.DialConn(context.Background(), url+"/calls", socketio.ConnConfig{Namespace: "/other"})
	assert.ErrorIs(t, err, signaling.ErrConnect)
	_, err = socketio.DialConn(context.Background(), "ftp://127.0.0.1/", socketio.ConnConfig{})
	assert.ErrorIs(t, err, signaling.ErrConnect)
}
