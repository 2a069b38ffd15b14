package socketio_test

import (
	"context"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/dialtone-dev/dialtone/signaling/socketio"
)

func dialDialtone(t *testing.T, base, user string) *socketio.Transport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr, err := socketio.Dial(ctx, base, socketio.Config{Conn: socketio.ConnConfig{
		Namespace: "/dialtone",
		Auth:      map[string]string{"user": user},
	}})
	require.NoError(t, err)
	return tr
}

// Two Go phones call each other through a Node Socket.IO server that
// forwards dialtone envelopes; audio is checked by content both ways.
func TestDialtoneOverSocketIO(t *testing.T) {
	base := startNode(t)
	alice := newTestPhone(t, dialDialtone(t, base, "alice"), 600)
	bob := newTestPhone(t, dialDialtone(t, base, "bob"), 1000)
	assert.Equal(t, "alice", alice.User())

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ac, err := alice.Dial(ctx, "bob")
	require.NoError(t, err)
	bc := incoming(t, bob, 10*time.Second)
	assert.Equal(t, "alice", bc.Peer())
	assert.Equal(t, ac.ID(), bc.ID())
	answer(ctx, t, alice, ac, bob, bc)
	hangUp(t, bc, ac)

	// Nobody signed in as carol: the server says offline.
	cc, err := alice.Dial(ctx, "carol")
	require.NoError(t, err)
	assert.Equal(t, call.ReasonOffline, waitEnd(t, cc, 10*time.Second))
}

func TestDialtoneOverSocketIORefused(t *testing.T) {
	base := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := socketio.Dial(ctx, base, socketio.Config{Conn: socketio.ConnConfig{
		Namespace: "/dialtone",
		Auth:      map[string]string{"user": "has space"},
	}})
	require.ErrorIs(t, err, socketio.ErrConnectRefused)
	assert.ErrorIs(t, err, signaling.ErrConnect)
	assert.Contains(t, err.Error(), "auth.user is not a valid user name")

	// Closing the transport closes Incoming and Status.
	tr := dialDialtone(t, base, "dave")
	require.NoError(t, tr.Close())
	for range tr.Incoming() {
	}
	for range tr.Status() {
	}
}

// Events that are not envelopes, or not of the transport's event, are
// skipped; the envelopes around them arrive.
func TestTransportSkipsGarbage(t *testing.T) {
	url := fakeServer(t, func(ws *websocket.Conn) {
		handshake(ws, "/")
		send(ws, `42["dialtone","not an object"]`, `42["dialtone",{"type":"ready","data":{"user":"alice","protocol":1}}]`)
		send(ws, `42["dialtone"]`, `42["dialtone",1,2]`, `42["dialtone",{"type":""}]`, `42["dialtone",{"type":"BAD TYPE"}]`,
			`42["dialtone",{"type":"signal","data":"x"}]`, `42["other",{"type":"invite"}]`,
			`42["dialtone",{"type":"invite","from":"bob","to":"alice","call":"c1"}]`)
		read(ws)
	})
	tr, err := socketio.Dial(context.Background(), url, socketio.Config{})
	require.NoError(t, err)
	defer tr.Close()
	assert.Equal(t, "alice", tr.Ready().User)
	var got []signaling.Type
	for m := range tr.Incoming() {
		got = append(got, m.Type)
		if m.Type == signaling.TypeInvite {
			assert.Equal(t, "bob", m.From)
			break
		}
	}
	assert.Equal(t, []signaling.Type{signaling.TypeReady, signaling.TypeInvite}, got)
}

// Without `ready` in time, Dial fails with ErrReadyTimeout.
func TestTransportReadyTimeout(t *testing.T) {
	url := fakeServer(t, func(ws *websocket.Conn) {
		handshake(ws, "/")
		read(ws)
	})
	_, err := socketio.Dial(context.Background(), url, socketio.Config{ReadyTimeout: 200 * time.Millisecond})
	assert.ErrorIs(t, err, signaling.ErrReadyTimeout)
}
