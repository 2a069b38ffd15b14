package socketio_test

import (
	"context"
	"testing"
	"time"

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
	require.NoError(t, bc.Accept(ctx))
	waitState(t, ac, call.Connected, 15*time.Second)
	waitState(t, bc, call.Connected, 15*time.Second)

	bob.hears(t, 600)
	alice.hears(t, 1000)

	bc.Hangup()
	assert.Equal(t, call.ReasonRemoteHangup, waitEnd(t, ac, 10*time.Second))
	assert.Equal(t, call.ReasonHangup, waitEnd(t, bc, 10*time.Second))

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
