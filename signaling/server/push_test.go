package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/signaling"
)

// offline → push → waiting → pending → delivered in order on connect.
func TestPushPendingDeliveredOnConnect(t *testing.T) {
	p := &recordingPusher{done: make(chan Push, 1)}
	s := newTestServer(t, Config{Pusher: p})
	url := startHTTP(t, s)
	alice := dialUser(t, url, "alice", signaling.DialConfig{})

	send(t, alice, msg(t, signaling.TypeInvite, "bob", "c1", signaling.Invite{DisplayName: "Alice"}))
	pushed := <-p.done
	assert.Equal(t, Push{User: "bob", From: "alice", Call: "c1", Invite: signaling.Invite{DisplayName: "Alice"}, Expires: pushed.Expires}, pushed)
	w := recvType(t, alice, signaling.TypeWaiting)
	assert.Equal(t, "bob", w.From)
	send(t, alice, msg(t, signaling.TypeSignal, "bob", "c1", map[string]int{"n": 1}))
	send(t, alice, msg(t, signaling.TypeSignal, "bob", "c1", map[string]int{"n": 2}))
	// A message of another call, without a pending invite, is held (for
	// reconnectHold) without an answer.
	send(t, alice, msg(t, signaling.TypeSignal, "bob", "other", nil))
	barrier(t, alice)

	bob := dialUser(t, url, "bob", signaling.DialConfig{})
	inv := recvType(t, bob, signaling.TypeInvite)
	assert.Equal(t, "alice", inv.From)
	assert.Equal(t, "c1", inv.Call)
	for n := 1; n <= 2; n++ {
		sig := recvType(t, bob, signaling.TypeSignal)
		assert.JSONEq(t, `{"n":`+string(rune('0'+n))+`}`, string(sig.Data))
	}
	assert.Equal(t, "other", recvType(t, bob, signaling.TypeSignal).Call)
	// Pending is consumed: a reconnection gets nothing again.
	send(t, bob, msg(t, signaling.TypeRinging, "alice", "c1", nil))
	recvType(t, alice, signaling.TypeRinging)
	st := s.Stats()
	assert.Equal(t, uint64(4), st.Pending)
	assert.Equal(t, uint64(4), st.Delivered)
	assert.Equal(t, uint64(1), st.PushOK)
	noMessage(t, alice, 50*time.Millisecond) // no second `waiting`
}

// Pending messages older than the TTL are dropped, not delivered.
func TestPendingTTLExpiry(t *testing.T) {
	clock := newFakeClock()
	p := &recordingPusher{done: make(chan Push, 2)}
	s := newTestServer(t, Config{Pusher: p, PendingTTL: 2 * time.Second})
	s.hub.now = clock.Now
	alice := connectLocal(t, s, "alice", LocalOptions{})

	send(t, alice, msg(t, signaling.TypeInvite, "bob", "old", nil))
	<-p.done
	recvType(t, alice, signaling.TypeWaiting)
	clock.Advance(1500 * time.Millisecond)
	send(t, alice, msg(t, signaling.TypeInvite, "bob", "new", nil))
	<-p.done
	recvType(t, alice, signaling.TypeWaiting)
	clock.Advance(time.Second) // "old" is 2.5 s old, "new" 1 s

	bob := connectLocal(t, s, "bob", LocalOptions{})
	got := recvType(t, bob, signaling.TypeInvite)
	assert.Equal(t, "new", got.Call)
	// Round trip as a barrier, then nothing else may have come.
	send(t, alice, msg(t, signaling.TypeRinging, "bob", "sync", nil))
	assert.Equal(t, "sync", recvType(t, bob, signaling.TypeRinging).Call)
	assert.Equal(t, uint64(1), s.Stats().Expired)

	// Messages for an expired call are dropped, not kept (and not
	// answered: only invites are answered `offline`).
	clock.Advance(5 * time.Second)
	bob.Disconnect()
	send(t, alice, msg(t, signaling.TypeSignal, "bob", "new", nil))
	barrier(t, alice)
}

// A failing push hook answers push-failed and keeps nothing.
func TestPushFailed(t *testing.T) {
	p := &recordingPusher{err: errPush}
	s := newTestServer(t, Config{Pusher: p})
	alice := connectLocal(t, s, "alice", LocalOptions{})
	send(t, alice, msg(t, signaling.TypeInvite, "bob", "c1", nil))
	m := recvType(t, alice, signaling.TypePushFailed)
	assert.Equal(t, "bob", m.From)
	assert.Equal(t, "c1", m.Call)
	var e signaling.Error
	require.NoError(t, m.Unmarshal(&e))
	assert.Equal(t, signaling.CodePushFailed, e.Code)

	bob := connectLocal(t, s, "bob", LocalOptions{})
	send(t, alice, msg(t, signaling.TypeRinging, "bob", "sync", nil))
	assert.Equal(t, "sync", recvType(t, bob, signaling.TypeRinging).Call, "the failed invite was not kept")
	assert.Equal(t, uint64(1), s.Stats().PushFailed)
}

// A hook slower than PushTimeout fails; the callee connecting while the push
// is still running gets the invite and the late result changes nothing.
func TestPushTimeoutAndRace(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	s := newTestServer(t, Config{PushTimeout: time.Hour, Pusher: PusherFunc(func(ctx context.Context, p Push) error {
		started <- struct{}{}
		select {
		case <-release:
			return errPush
		case <-ctx.Done():
			return ctx.Err()
		}
	})})
	alice := connectLocal(t, s, "alice", LocalOptions{})
	send(t, alice, msg(t, signaling.TypeInvite, "bob", "c1", nil))
	<-started
	bob := connectLocal(t, s, "bob", LocalOptions{})
	recvType(t, bob, signaling.TypeInvite)
	recvType(t, alice, signaling.TypeWaiting) // reached on connect
	close(release)
	require.Eventually(t, func() bool { return s.Stats().PushFailed == 1 }, waitFor, time.Millisecond)
	send(t, bob, msg(t, signaling.TypeRinging, "alice", "c1", nil))
	recvType(t, alice, signaling.TypeRinging) // no push-failed before it

	s2 := newTestServer(t, Config{PushTimeout: 20 * time.Millisecond, Pusher: PusherFunc(func(ctx context.Context, p Push) error {
		<-ctx.Done()
		return ctx.Err()
	})})
	a2 := connectLocal(t, s2, "alice", LocalOptions{})
	send(t, a2, msg(t, signaling.TypeInvite, "bob", "c1", nil))
	recvType(t, a2, signaling.TypePushFailed)
}

func TestWebhook(t *testing.T) {
	var got Push
	var auth string
	status := http.StatusNoContent
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &got)
		auth = r.Header.Get("Authorization")
		w.WriteHeader(status)
	}))
	defer hook.Close()
	wh := &Webhook{URL: hook.URL, Header: http.Header{"Authorization": {"Bearer hook"}}}
	ctx := context.Background()
	p := Push{User: "bob", From: "alice", Call: "c1", Invite: signaling.Invite{DisplayName: "A"}}
	require.NoError(t, wh.Push(ctx, p))
	assert.Equal(t, "bob", got.User)
	assert.Equal(t, "A", got.Invite.DisplayName)
	assert.Equal(t, "Bearer hook", auth)
	status = http.StatusInternalServerError
	assert.ErrorIs(t, wh.Push(ctx, p), ErrPushStatus)

	stop := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer slow.Close()
	defer close(stop)
	start := time.Now()
	err := (&Webhook{URL: slow.URL, Timeout: 50 * time.Millisecond}).Push(ctx, p)
	assert.Error(t, err)
	assert.Less(t, time.Since(start), 2*time.Second)
}
