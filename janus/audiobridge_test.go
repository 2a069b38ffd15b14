package janus

import (
	"context"
	"encoding/json"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/internal/janustest"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// apiConns dials Janus's API in its namespace and keeps the connections,
// so that a test can drop them.
type apiConns struct {
	srv   *janustest.Server
	mu    sync.Mutex
	conns []net.Conn
}

func (a *apiConns) dialer() *websocket.Dialer {
	return &websocket.Dialer{
		HandshakeTimeout: 5 * time.Second,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := a.srv.DialContext(ctx, network, addr)
			if err == nil {
				a.mu.Lock()
				a.conns = append(a.conns, c)
				a.mu.Unlock()
			}
			return c, err
		},
	}
}

// drop closes every API connection dialed so far.
func (a *apiConns) drop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.conns {
		c.Close()
	}
	a.conns = nil
}

func (a *apiConns) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.conns)
}

// connect opens a session on srv; it is closed when the test ends.
func connect(t *testing.T, srv *janustest.Server, cfg Config) (*Session, *apiConns) {
	t.Helper()
	a := &apiConns{srv: srv}
	cfg.URL = srv.URL
	cfg.Dialer = a.dialer()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Connect(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s, a
}

// bridge attaches an AudioBridge handle on a new session.
func bridge(t *testing.T, srv *janustest.Server) (*AudioBridge, *apiConns) {
	t.Helper()
	s, a := connect(t, srv, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := AttachAudioBridge(ctx, s)
	require.NoError(t, err)
	return b, a
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitBridge reads b's events until one matches ok, or fails after d.
func waitBridge(t *testing.T, b *AudioBridge, what string, d time.Duration, ok func(BridgeEvent) bool) BridgeEvent {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case e, open := <-b.Events():
			if !open {
				t.Fatalf("waiting for %s: events ended: %v", what, b.Err())
			}
			if ok(e) {
				return e
			}
		case <-timer.C:
			t.Fatalf("no %s within %v", what, d)
		}
	}
}

func kind(k BridgeEventKind, id uint64) func(BridgeEvent) bool {
	return func(e BridgeEvent) bool { return e.Kind == k && (id == 0 || e.ID == id) }
}

// TestCreateWithOptions: a room made with a PIN, a secret, a sampling rate
// and talking events is listed with them by Janus, takes a joiner who has
// the PIN, lists that joiner, and cannot be made twice.
func TestCreateWithOptions(t *testing.T) {
	srv := janustest.Start(t, janustest.Options{})
	admin, _ := bridge(t, srv)
	ctx := ctxT(t)

	room, err := admin.Create(ctx, RoomOptions{
		Description: "options", Secret: "s3cret", Pin: "1234", SamplingRate: 48000,
		TalkingEvents: true, AudioActivePackets: 25, AudioLevelAverage: 40,
	})
	require.NoError(t, err)
	require.NotZero(t, room)

	r, err := admin.Handle().Message(ctx, map[string]any{"request": "list"}, nil)
	require.NoError(t, err)
	var list struct {
		Rooms []struct {
			Room         uint64 `json:"room"`
			Description  string `json:"description"`
			PinRequired  bool   `json:"pin_required"`
			SamplingRate int    `json:"sampling_rate"`
		} `json:"list"`
	}
	require.NoError(t, json.Unmarshal(r.Data, &list))
	var found bool
	for _, l := range list.Rooms {
		if l.Room == room {
			found = true
			assert.Equal(t, "options", l.Description)
			assert.True(t, l.PinRequired)
			assert.Equal(t, 48000, l.SamplingRate)
		}
	}
	assert.True(t, found, "room %d in Janus's list %s", room, r.Data)

	ok, err := admin.Exists(ctx, room)
	require.NoError(t, err)
	assert.True(t, ok)

	_, err = admin.Create(ctx, RoomOptions{Room: room})
	assert.ErrorIs(t, err, ErrRoomExists)

	member, _ := bridge(t, srv)
	j, err := member.Join(ctx, room, JoinOptions{Display: "alice", Pin: "1234"})
	require.NoError(t, err)
	assert.Equal(t, room, j.Room)
	assert.NotZero(t, j.ID)
	ps, err := admin.Participants(ctx, room)
	require.NoError(t, err)
	require.Len(t, ps, 1)
	assert.Equal(t, Participant{ID: j.ID, Display: "alice"}, ps[0])
}

// TestJoinErrors: a wrong or missing PIN and a room that does not exist are
// clear errors a caller can branch on.
func TestJoinErrors(t *testing.T) {
	srv := janustest.Start(t, janustest.Options{})
	b, _ := bridge(t, srv)
	ctx := ctxT(t)
	room, err := b.Create(ctx, RoomOptions{Pin: "1234", Secret: "adm"})
	require.NoError(t, err)

	_, err = b.Join(ctx, room, JoinOptions{Pin: "9999"})
	assert.ErrorIs(t, err, ErrUnauthorized, "wrong pin")
	assert.Contains(t, err.Error(), "wrong pin")
	var je *Error
	require.ErrorAs(t, err, &je)
	assert.Equal(t, 489, je.Code)
	_, err = b.Join(ctx, room, JoinOptions{})
	assert.ErrorIs(t, err, ErrUnauthorized, "no pin")

	_, err = b.Join(ctx, room+1, JoinOptions{})
	assert.ErrorIs(t, err, ErrNoSuchRoom)
	assert.Contains(t, err.Error(), "no such room")
	_, err = b.Participants(ctx, room+1)
	assert.ErrorIs(t, err, ErrNoSuchRoom)
	assert.ErrorIs(t, b.Destroy(ctx, room, "wrong"), ErrUnauthorized)

	_, err = b.Join(ctx, room, JoinOptions{Pin: "1234"})
	require.NoError(t, err, "the handle still joins after the errors")
	_, err = b.Join(ctx, room, JoinOptions{Pin: "1234"})
	assert.ErrorIs(t, err, ErrAlreadyJoined)
}

// TestRoomEvents: members are told who joins, mutes, leaves and is kicked;
// the kicked member learns it is out.
func TestRoomEvents(t *testing.T) {
	srv := janustest.Start(t, janustest.Options{})
	a, _ := bridge(t, srv)
	b, _ := bridge(t, srv)
	c, _ := bridge(t, srv)
	ctx := ctxT(t)
	room, err := a.Create(ctx, RoomOptions{Secret: "adm"})
	require.NoError(t, err)
	ja, err := a.Join(ctx, room, JoinOptions{Display: "a"})
	require.NoError(t, err)
	jb, err := b.Join(ctx, room, JoinOptions{Display: "b", Muted: true})
	require.NoError(t, err)
	require.Len(t, jb.Participants, 1)
	assert.Equal(t, ja.ID, jb.Participants[0].ID)

	e := waitBridge(t, a, "b joined", 5*time.Second, kind(BridgeJoined, jb.ID))
	assert.Equal(t, "b", e.Participant.Display)
	assert.True(t, e.Participant.Muted)
	assert.Equal(t, room, e.Room)

	require.NoError(t, b.Mute(ctx, false))
	e = waitBridge(t, a, "b unmuted", 5*time.Second, kind(BridgeUpdated, jb.ID))
	assert.False(t, e.Participant.Muted)
	require.NoError(t, b.Mute(ctx, true))
	e = waitBridge(t, a, "b muted", 5*time.Second, kind(BridgeUpdated, jb.ID))
	assert.True(t, e.Participant.Muted)

	require.NoError(t, b.Leave(ctx))
	waitBridge(t, a, "b left", 5*time.Second, kind(BridgeLeft, jb.ID))
	assert.Zero(t, b.Room())

	jc, err := c.Join(ctx, room, JoinOptions{Display: "c"})
	require.NoError(t, err)
	waitBridge(t, a, "c joined", 5*time.Second, kind(BridgeJoined, jc.ID))
	assert.ErrorIs(t, a.Kick(ctx, room, "wrong", jc.ID), ErrUnauthorized)
	require.NoError(t, a.Kick(ctx, room, "adm", jc.ID))
	waitBridge(t, c, "c kicked", 5*time.Second, kind(BridgeKicked, jc.ID))
	waitBridge(t, a, "c kicked, told a", 5*time.Second, kind(BridgeKicked, jc.ID))
	assert.Zero(t, c.Room())
	// Janus removes the kicked participant after telling everyone.
	assert.Eventually(t, func() bool {
		ps, err := a.Participants(ctx, room)
		return err == nil && len(ps) == 1 && ps[0].ID == ja.ID
	}, 5*time.Second, 20*time.Millisecond, "only a is left")
}

// TestDestroyWhileJoined: destroying a room with members in it tells each
// of them; a wrong secret destroys nothing.
func TestDestroyWhileJoined(t *testing.T) {
	srv := janustest.Start(t, janustest.Options{})
	admin, _ := bridge(t, srv)
	m1, _ := bridge(t, srv)
	m2, _ := bridge(t, srv)
	ctx := ctxT(t)
	room, err := admin.Create(ctx, RoomOptions{Secret: "adm"})
	require.NoError(t, err)
	_, err = m1.Join(ctx, room, JoinOptions{})
	require.NoError(t, err)
	_, err = m2.Join(ctx, room, JoinOptions{})
	require.NoError(t, err)

	assert.ErrorIs(t, admin.Destroy(ctx, room, "wrong"), ErrUnauthorized)
	require.NoError(t, admin.Destroy(ctx, room, "adm"))
	for _, m := range []*AudioBridge{m1, m2} {
		e := waitBridge(t, m, "destroyed", 5*time.Second, kind(BridgeDestroyed, 0))
		assert.Equal(t, room, e.Room)
		assert.Zero(t, m.Room())
	}
	ok, err := admin.Exists(ctx, room)
	require.NoError(t, err)
	assert.False(t, ok)
}

// TestDroppedAPIConnection: when the API connection drops, the client
// reconnects and claims its session: same session, still in the room, told
// the room's list afresh, and events flow again; the others never see it
// leave.
func TestDroppedAPIConnection(t *testing.T) {
	srv := janustest.Start(t, janustest.Options{})
	a, conns := bridge(t, srv)
	b, _ := bridge(t, srv)
	ctx := ctxT(t)
	room, err := a.Create(ctx, RoomOptions{})
	require.NoError(t, err)
	ja, err := a.Join(ctx, room, JoinOptions{Display: "a"})
	require.NoError(t, err)
	jb, err := b.Join(ctx, room, JoinOptions{Display: "b"})
	require.NoError(t, err)
	waitBridge(t, a, "b joined", 5*time.Second, kind(BridgeJoined, jb.ID))
	session := a.Handle().s.ID()

	conns.drop()
	waitBridge(t, a, "disconnected", 5*time.Second, kind(BridgeDisconnected, 0))
	e := waitBridge(t, a, "reclaimed", 10*time.Second, kind(BridgeReclaimed, 0))
	require.NoError(t, e.Err)
	assert.Equal(t, 1, conns.count(), "one new connection since the drop")
	ids := []uint64{}
	for _, p := range e.Participants {
		ids = append(ids, p.ID)
	}
	assert.ElementsMatch(t, []uint64{ja.ID, jb.ID}, ids)
	assert.Equal(t, session, a.Handle().s.ID())

	require.NoError(t, b.Mute(ctx, true))
	waitBridge(t, a, "b muted, after the claim", 5*time.Second, kind(BridgeUpdated, jb.ID))
	require.NoError(t, a.Mute(ctx, true), "requests work after the claim")
	waitBridge(t, b, "a muted", 5*time.Second, func(e BridgeEvent) bool {
		return e.Kind == BridgeUpdated && e.ID == ja.ID
	})
	ps, err := b.Participants(ctx, room)
	require.NoError(t, err)
	assert.Len(t, ps, 2, "a never left")
}

// TestDroppedAPIConnectionNoReclaim: a server that does not keep sessions
// of a dropped connection (reclaim_session_timeout 0) makes the claim fail,
// and the session ends with ErrSessionLost.
func TestDroppedAPIConnectionNoReclaim(t *testing.T) {
	srv := janustest.Start(t, janustest.Options{ReclaimTimeout: -1})
	a, conns := bridge(t, srv)
	ctx := ctxT(t)
	_, err := a.Create(ctx, RoomOptions{})
	require.NoError(t, err)
	conns.drop()
	s := a.Handle().s
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("session did not end")
	}
	assert.ErrorIs(t, s.Err(), ErrSessionLost)
	assert.ErrorIs(t, s.Err(), ErrNoSuchSession, "Janus's reason is kept")
	_, err = a.Exists(ctx, 1)
	assert.ErrorIs(t, err, ErrSessionLost)
	for range a.Events() {
	}
	assert.ErrorIs(t, a.Err(), ErrSessionLost)
}

// TestKeepalive: with keepalives more frequent than the server's session
// timeout a session outlives it; without, Janus times it out and the
// session ends with ErrSessionTimeout.
func TestKeepalive(t *testing.T) {
	srv := janustest.Start(t, janustest.Options{SessionTimeout: 2 * time.Second})
	kept, _ := connect(t, srv, Config{KeepaliveInterval: 500 * time.Millisecond})
	idle, _ := connect(t, srv, Config{KeepaliveInterval: time.Hour})
	select {
	case <-idle.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the idle session did not time out")
	}
	assert.ErrorIs(t, idle.Err(), ErrSessionTimeout)
	select {
	case <-kept.Done():
		t.Fatalf("the kept session ended: %v", kept.Err())
	default:
	}
	ctx := ctxT(t)
	b, err := AttachAudioBridge(ctx, kept)
	require.NoError(t, err, "the kept session works")
	_, err = b.Exists(ctx, 1)
	require.NoError(t, err)
}
