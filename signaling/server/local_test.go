package server

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/signaling"
)

func TestLocalRouting(t *testing.T) {
	s := newTestServer(t, Config{})
	alice := connectLocal(t, s, "alice", LocalOptions{})
	bob := connectLocal(t, s, "bob", LocalOptions{})
	assert.Equal(t, "alice", alice.Ready().User)

	send(t, alice, msg(t, signaling.TypeInvite, "bob", "c1", signaling.Invite{DisplayName: "Alice"}))
	in := recvType(t, bob, signaling.TypeInvite)
	assert.Equal(t, "alice", in.From)
	assert.Equal(t, "c1", in.Call)
	var inv signaling.Invite
	require.NoError(t, in.Unmarshal(&inv))
	assert.Equal(t, "Alice", inv.DisplayName)
	w := recvType(t, alice, signaling.TypeWaiting)
	assert.Equal(t, "bob", w.From)
	assert.Equal(t, "c1", w.Call)

	send(t, bob, msg(t, signaling.TypeAccept, "alice", "c1", nil))
	acc := recvType(t, alice, signaling.TypeAccept)
	assert.Equal(t, "bob", acc.From)
}

// Disconnect makes the user unreachable (offline / pending), Reconnect
// brings it back with a new ready, Status up, and the messages sent to it
// meanwhile.
func TestLocalDisconnectReconnect(t *testing.T) {
	p := &recordingPusher{}
	s := newTestServer(t, Config{Pusher: p})
	alice := connectLocal(t, s, "alice", LocalOptions{})
	bob := connectLocal(t, s, "bob", LocalOptions{})

	bob.Disconnect()
	st := waitStatus(t, bob, signaling.StateDown)
	assert.ErrorIs(t, st.Err, signaling.ErrDisconnected)
	assert.ErrorIs(t, bob.Send(context.Background(), msg(t, signaling.TypeRinging, "alice", "c", nil)), signaling.ErrDisconnected)
	assert.False(t, s.Online("bob"))
	send(t, alice, msg(t, signaling.TypeSignal, "bob", "c", nil))
	barrier(t, alice) // not an invite: no `offline`
	send(t, alice, msg(t, signaling.TypeInvite, "bob", "c2", nil))
	recvType(t, alice, signaling.TypeWaiting)

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, bob.Reconnect(ctx))
	waitStatus(t, bob, signaling.StateUp)
	recvType(t, bob, signaling.TypeReady)
	assert.Equal(t, "c", recvType(t, bob, signaling.TypeSignal).Call) // held for the reconnection
	assert.Equal(t, "c2", recvType(t, bob, signaling.TypeInvite).Call)
	require.NoError(t, bob.Close())
	waitStatus(t, bob, signaling.StateClosed)
	assert.ErrorIs(t, bob.Send(ctx, msg(t, signaling.TypeRinging, "alice", "c", nil)), signaling.ErrClosed)
	assert.ErrorIs(t, bob.Reconnect(ctx), signaling.ErrClosed)
}

func TestConnectLocalBadUser(t *testing.T) {
	s := newTestServer(t, Config{})
	_, err := s.ConnectLocal(context.Background(), "", LocalOptions{})
	assert.ErrorIs(t, err, ErrBadUser)
	_, err = s.ConnectLocal(context.Background(), "a:b", LocalOptions{})
	assert.ErrorIs(t, err, ErrBadUser)
}
