package socketio_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/dialtone-dev/dialtone/signaling/socketio"
)

// next returns the next value on ch, failing t when ch closes or nothing
// comes within 5 s; what names the value in the failure.
func next[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v, ok := <-ch:
		require.True(t, ok, "closed before a %s", what)
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s within 5 s", what)
		var zero T
		return zero
	}
}

var fastBackoff = signaling.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}

// A dropped connection is reported down, dialled again and reported up
// with the server's new `ready`; a server that then refuses the client
// stops the transport for good.
func TestTransportReconnects(t *testing.T) {
	var conns atomic.Int32
	got := make(chan string, 4)
	url := fakeServer(t, func(ws *websocket.Conn) {
		switch conns.Add(1) {
		case 1:
			handshake(ws, "/")
			send(ws, `42["dialtone",{"type":"ready","data":{"user":"alice","protocol":1}}]`)
			// and drop
		case 2:
			handshake(ws, "/")
			send(ws, `42["dialtone",{"type":"ready","data":{"user":"alice","protocol":1,"relayTTL":60}}]`)
			got <- read(ws)
			send(ws, `41`)
		default:
			send(ws, openPacket)
			read(ws)
			send(ws, `44{"message":"token revoked"}`)
		}
	})
	tr, err := socketio.Dial(context.Background(), url, socketio.Config{Backoff: fastBackoff})
	require.NoError(t, err)
	defer tr.Close()
	assert.Equal(t, signaling.TypeReady, next(t, tr.Incoming(), "message").Type)

	down := next(t, tr.Status(), "status change")
	assert.Equal(t, signaling.StateDown, down.State)
	assert.ErrorIs(t, down.Err, signaling.ErrDisconnected)
	up := next(t, tr.Status(), "status change")
	assert.Equal(t, signaling.StateUp, up.State)
	assert.Equal(t, signaling.TypeReady, next(t, tr.Incoming(), "message").Type)
	assert.Equal(t, 60, tr.Ready().RelayTTL, "the new ready")

	require.NoError(t, tr.Send(context.Background(), signaling.Message{Type: signaling.TypeRelay, Call: "c1"}))
	assert.Equal(t, `42["dialtone",{"type":"relay","call":"c1"}]`, <-got)

	// The server disconnects the socket; the next attempt is refused.
	assert.Equal(t, signaling.StateDown, next(t, tr.Status(), "status change").State)
	closed := next(t, tr.Status(), "status change")
	assert.Equal(t, signaling.StateClosed, closed.State)
	assert.ErrorIs(t, closed.Err, socketio.ErrConnectRefused)
	for range tr.Incoming() {
	}
	assert.ErrorIs(t, tr.Send(context.Background(), signaling.Message{Type: signaling.TypeRelay}), signaling.ErrDisconnected)
}

// With NoReconnect a drop is the end.
func TestTransportNoReconnect(t *testing.T) {
	url := fakeServer(t, func(ws *websocket.Conn) {
		handshake(ws, "/")
		send(ws, `42["dialtone",{"type":"ready","data":{"user":"alice"}}]`, `1`)
	})
	tr, err := socketio.Dial(context.Background(), url, socketio.Config{NoReconnect: true})
	require.NoError(t, err)
	defer tr.Close()
	closed := next(t, tr.Status(), "status change")
	assert.Equal(t, signaling.StateClosed, closed.State)
	assert.ErrorIs(t, closed.Err, socketio.ErrServerDisconnect)
}

// When the connection drops during a call, the call ends (the server told
// the peer that we left); the Room joins the room again on the new
// connection.
func TestRoomReconnects(t *testing.T) {
	var conns atomic.Int32
	joins := make(chan string, 4)
	url := fakeServer(t, func(ws *websocket.Conn) {
		handshake(ws, "/")
		joins <- read(ws)
		if conns.Add(1) == 1 {
			offer, _ := json.Marshal(sdp)
			send(ws, `42["offer",{"type":"offer","sdp":`+string(offer)+`}]`)
			read(ws) // dropped when the test has accepted
			return
		}
		read(ws)
	})
	r, err := socketio.JoinRoom(context.Background(), url, socketio.RoomConfig{Room: "r1", Backoff: fastBackoff})
	require.NoError(t, err)
	defer r.Close()
	assert.Equal(t, `42["join","r1"]`, <-joins)
	assert.Equal(t, signaling.TypeReady, next(t, r.Incoming(), "message").Type)
	user := r.Ready().User
	inv := next(t, r.Incoming(), "message")
	require.Equal(t, signaling.TypeInvite, inv.Type)
	next(t, r.Incoming(), "message") // the offer
	require.NoError(t, r.Send(context.Background(), signaling.Message{Type: signaling.TypeAccept, To: "peer", Call: inv.Call}))
	require.NoError(t, r.Send(context.Background(), signaling.Message{Type: signaling.TypeSignal, To: "peer", Call: inv.Call,
		Data: json.RawMessage(`{"description":{"type":"answer","sdp":"v=0"}}`)})) // the server drops us on reading it

	hangup := next(t, r.Incoming(), "message")
	assert.Equal(t, signaling.TypeHangup, hangup.Type)
	assert.Equal(t, inv.Call, hangup.Call)
	assert.Equal(t, signaling.StateDown, next(t, r.Status(), "status change").State)
	assert.Equal(t, signaling.StateUp, next(t, r.Status(), "status change").State)
	assert.Equal(t, `42["join","r1"]`, <-joins)
	assert.Equal(t, signaling.TypeReady, next(t, r.Incoming(), "message").Type)
	assert.Equal(t, user, r.Ready().User, "the user ID outlives the socket")
}
