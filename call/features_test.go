package call_test

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/audio"
	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/media"
	"github.com/dialtone-dev/dialtone/media/mediatest"
	"github.com/dialtone-dev/dialtone/media/pcm"
	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/dialtone-dev/dialtone/signaling/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTonesRingbackAndBusyPlayedBeforeRelease(t *testing.T) {
	lab := newLab(t, server.Config{})
	cfg := fast()
	cfg.EndToneDuration = 600 * time.Millisecond
	a := newPhone(t, lab, "alice", calltest.PhoneOptions{})
	b := newPhone(t, lab, "bob", calltest.PhoneOptions{})
	c := newPhone(t, lab, "carol", calltest.PhoneOptions{Config: cfg})

	// Ringback while waiting: ITU 425 Hz, 1 s on.
	ac, err := a.Dial(t.Context(), "bob")
	require.NoError(t, err)
	aw := watch(ac)
	aw.waitState(t, call.Waiting, setupWait)
	start := a.Speaker.Len()
	require.NoError(t, a.Speaker.Wait(ctxT(t, 5*time.Second), start+sec/2))
	ring := a.Speaker.Samples()[start : start+sec/2]
	assert.Greater(t, mediatest.ToneShare(ring[sec/10:], 425), 0.8, "ringback is 425 Hz")
	bc := nextIncoming(t, b, setupWait)
	bw := watch(bc)
	require.NoError(t, bc.Accept(ctxT(t, setupWait)))
	aw.waitState(t, call.Connected, setupWait)

	// Carol calls busy bob: she hears the whole busy tone before her call
	// releases the device.
	cc, err := c.Dial(t.Context(), "bob")
	require.NoError(t, err)
	cw := watch(cc)
	// The busy tone is played after the end event; the recording from then
	// to Done must hold the full EndToneDuration of 425 Hz cadence.
	endAt := cw.waitState(t, call.Ended, setupWait)
	require.Equal(t, call.ReasonBusy, endAt.Reason)
	mark := c.Speaker.Len()
	<-cc.Done()
	tail := c.Speaker.Samples()[mark:]
	t.Logf("recorded %d ms of end tone", len(tail)*1000/sec)
	assert.GreaterOrEqual(t, len(tail), int(cfg.EndToneDuration.Seconds()*sec*0.9),
		"the busy tone must be heard in full before the device is released")
	assert.Greater(t, mediatest.ToneShare(tail, 425), 0.5)

	ac.Hangup()
	aw.waitEnd(t, setupWait)
	bw.waitEnd(t, setupWait)
}

func TestMuteTextAndStats(t *testing.T) {
	lab := newLab(t, server.Config{})
	sigA := signalFor(3, 2)
	a := newPhone(t, lab, "alice", calltest.PhoneOptions{Mic: pcm.Loop(sigA)})
	b := newPhone(t, lab, "bob", calltest.PhoneOptions{Mic: pcm.Loop(signalFor(4, 2))})
	ac, bc, aw, bw := connect(t, a, b)

	// Stats arrive periodically with sensible values.
	e := bw.waitFor(t, "stats with traffic", setupWait, func(e call.Event) bool {
		return e.Kind == call.EventStats && e.Stats.PacketsReceived > 20 && e.Stats.RecvBitrate > 0
	})
	st := e.Stats
	t.Logf("bob stats: %+v", st)
	assert.Greater(t, st.MOS, 4.0)
	assert.Less(t, st.Loss, 1.0)
	assert.Greater(t, st.SendBitrate, 10000.0)
	assert.Greater(t, st.RecvBitrate, 10000.0)
	assert.Positive(t, st.RTT, "RTT from RTCP or ICE consent checks")
	assert.Less(t, st.RTT, 50*time.Millisecond, "loopback")
	// What the jitter buffer adds: its 10 ms minimum, give or take, not
	// the audio queued at the instant of the snapshot (often none).
	assert.Greater(t, st.BufferDelay, 2*time.Millisecond, "jitter buffer delay")
	assert.Less(t, st.BufferDelay, 200*time.Millisecond, "jitter buffer delay")
	wantCodec := "opus"
	if !media.OpusAvailable {
		wantCodec = "pcmu" // the cgo-free build's only codec
	}
	assert.Equal(t, wantCodec, strings.ToLower(st.Codec))

	// Text both ways.
	require.NoError(t, ac.SendText(ctxT(t, time.Second), "hello bob"))
	require.NoError(t, bc.SendText(ctxT(t, time.Second), "hi alice"))
	assert.Equal(t, "hello bob", bw.waitFor(t, "text", setupWait, func(e call.Event) bool { return e.Kind == call.EventText }).Text)
	assert.Equal(t, "hi alice", aw.waitFor(t, "text", setupWait, func(e call.Event) bool { return e.Kind == call.EventText }).Text)

	// Mute: bob hears (near) silence, then alice again after unmute.
	ac.Mute(true)
	require.Eventually(t, ac.Muted, time.Second, 5*time.Millisecond)
	require.NoError(t, b.Speaker.Wait(ctxT(t, 5*time.Second), b.Speaker.Len()+sec/2)) // let the buffer drain
	m := b.Speaker.Len()
	require.NoError(t, b.Speaker.Wait(ctxT(t, 5*time.Second), m+sec/2))
	assert.Less(t, rms(b.Speaker.Samples()[m:m+sec/2]), 100.0, "muted caller must be silent")
	ac.Mute(false)
	require.NoError(t, b.Speaker.Wait(ctxT(t, 5*time.Second), b.Speaker.Len()+2*sec+sec/4))
	corr, _ := heard(t, sigA, b.Speaker.Samples())
	assert.Greater(t, corr, 0.9, "audio resumes after unmute")

	ac.Hangup()
	aw.waitEnd(t, setupWait)
	bw.waitEnd(t, setupWait)
}

func rms(p []int16) float64 {
	var s float64
	for _, v := range p {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(max(1, len(p))))
}

// The callee is offline; the server's push hook wakes it, and it connects
// within the TTL: it still gets the call and can accept it (cold start).
// After the TTL it does not.
func TestPushColdStart(t *testing.T) {
	for _, tc := range []struct {
		name      string
		lateBy    time.Duration
		delivered bool
	}{
		{"within TTL", 100 * time.Millisecond, true},
		{"after TTL", 900 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pushed := make(chan server.Push, 1)
			lab := newLab(t, server.Config{
				PendingTTL: 500 * time.Millisecond,
				Pusher: server.PusherFunc(func(_ context.Context, p server.Push) error {
					pushed <- p
					return nil
				}),
			})
			a := newPhone(t, lab, "alice", calltest.PhoneOptions{})
			ac, err := a.Dial(t.Context(), "bob")
			require.NoError(t, err)
			aw := watch(ac)
			aw.waitState(t, call.Waiting, setupWait)
			p := <-pushed
			assert.Equal(t, "bob", p.User)
			assert.Equal(t, ac.ID(), p.Call)

			// The app wakes up and connects (after the TTL in the second case).
			waitFor(tc.lateBy)
			b := newPhone(t, lab, "bob", calltest.PhoneOptions{})
			if !tc.delivered {
				select {
				case c := <-b.Incoming():
					t.Fatalf("stale invite delivered: %s", describe(c))
				case <-time.After(300 * time.Millisecond):
				}
				ac.Hangup()
				aw.waitEnd(t, setupWait)
				return
			}
			bc := nextIncoming(t, b, setupWait)
			require.Equal(t, ac.ID(), bc.ID())
			bw := watch(bc)
			require.NoError(t, bc.Accept(ctxT(t, setupWait)))
			aw.waitState(t, call.Connected, setupWait)
			bw.waitState(t, call.Connected, setupWait)
			bc.Hangup()
			assert.Equal(t, call.ReasonRemoteHangup, aw.waitEnd(t, setupWait))
		})
	}
}

// waitFor models the passage of real time in a scenario (an app waking up);
// it is not synchronisation.
func waitFor(d time.Duration) { <-time.After(d) }

func TestPushFailed(t *testing.T) {
	lab := newLab(t, server.Config{
		Pusher: server.PusherFunc(func(context.Context, server.Push) error { return assert.AnError }),
	})
	a := newPhone(t, lab, "alice", calltest.PhoneOptions{})
	ac, err := a.Dial(t.Context(), "bob")
	require.NoError(t, err)
	assert.Equal(t, call.ReasonPushFailed, watch(ac).waitEnd(t, setupWait))
}

// swallowRelay is a transport that never lets a `relay` request out, like a
// server that does not answer it.
type swallowRelay struct {
	signaling.Transport
	asked atomic.Int32
}

func (s *swallowRelay) Send(ctx context.Context, m signaling.Message) error {
	if m.Type == signaling.TypeRelay {
		s.asked.Add(1)
		return nil
	}
	return s.Transport.Send(ctx, m)
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Relay credentials past half their life are refreshed with a `relay`
// request; when the server does not answer in RelayTimeout the call goes on
// with what it has, and says so in the log.
func TestRelayConfigTimeout(t *testing.T) {
	lab := newLab(t, server.Config{
		TURNURLs:   []string{"turn:127.0.0.1:9?transport=tcp"},
		TURNSecret: []byte("s3cret"),
		TURNTTL:    time.Second,
	})
	var logs syncBuffer
	cfg := fast()
	cfg.RelayTimeout = 300 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))

	ctx := ctxT(t, 10*time.Second)
	conn, err := lab.Server.ConnectLocal(ctx, "alice", server.LocalOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, conn.Ready().ICEServers, "the server hands out relay config with ready")
	tr := &swallowRelay{Transport: conn}
	cfg.SettingEngine = calltest.Loopback()
	cfg.Audio.Backend = nil
	cfg.Audio.Kind = audio.KindVirtual
	a, err := call.NewPhone(tr, cfg)
	require.NoError(t, err)
	defer a.Close()
	b := newPhone(t, lab, "bob", calltest.PhoneOptions{})

	waitFor(600 * time.Millisecond) // the credentials age past half their 1 s life
	ac, err := a.Dial(ctx, "bob")
	require.NoError(t, err)
	aw := watch(ac)
	bc := nextIncoming(t, b, setupWait)
	bw := watch(bc)
	require.NoError(t, bc.Accept(ctx))
	aw.waitState(t, call.Connected, setupWait)
	bw.waitState(t, call.Connected, setupWait)
	assert.GreaterOrEqual(t, tr.asked.Load(), int32(1), "a relay refresh was requested")
	assert.Contains(t, logs.String(), "no relay config from the server in time")
	ac.Hangup()
	aw.waitEnd(t, setupWait)
	bw.waitEnd(t, setupWait)
}

// Signaling drops mid-call: media keeps flowing, the phone reconnects, and
// a hang-up made during the outage still reaches the other side.
func TestSignalingLostMidCall(t *testing.T) {
	lab := newLab(t, server.Config{})
	sigA := signalFor(5, 2)
	a := newPhone(t, lab, "alice", calltest.PhoneOptions{Mic: pcm.Loop(sigA)})
	b := newPhone(t, lab, "bob", calltest.PhoneOptions{})
	ac, bc, aw, bw := connect(t, a, b)

	a.Conn.Disconnect()
	// Media does not need signaling: bob keeps hearing alice.
	require.NoError(t, b.Speaker.Wait(ctxT(t, 5*time.Second), b.Speaker.Len()+2*sec+sec/4))
	corr, _ := heard(t, sigA, b.Speaker.Samples())
	assert.Greater(t, corr, 0.9)
	assert.Equal(t, call.Connected, ac.State())

	// Alice hangs up while her signaling is down; the hang-up waits in her
	// phone's outbox.
	ac.Hangup()
	assert.Equal(t, call.ReasonHangup, aw.waitEnd(t, setupWait))
	assert.Equal(t, call.Connected, bc.State())

	require.NoError(t, a.Conn.Reconnect(ctxT(t, 5*time.Second)))
	assert.Equal(t, call.ReasonRemoteHangup, bw.waitEnd(t, setupWait))
}

// DTMF digits sent with SendDTMF travel as RFC 4733 telephone events and
// arrive as EventDTMF, in order, while audio keeps flowing.
func TestDTMF(t *testing.T) {
	lab := newLab(t, server.Config{})
	a := newPhone(t, lab, "alice", calltest.PhoneOptions{Mic: pcm.Loop(signalFor(7, 2))})
	b := newPhone(t, lab, "bob", calltest.PhoneOptions{})
	ac, _, aw, bw := connect(t, a, b)
	require.NoError(t, ac.SendDTMF(ctxT(t, time.Second), "12#"))
	assert.Equal(t, "12#", digits(t, bw, 3))
	assert.ErrorIs(t, ac.SendDTMF(ctxT(t, time.Second), "x"), call.ErrBadDTMF)
	ac.Hangup()
	aw.waitEnd(t, setupWait)
	bw.waitEnd(t, setupWait)
}

// Text sent the moment the call is connected (before the data channel has
// opened) waits for the channel instead of failing; Muted reflects Mute at
// once.
func TestTextRightAfterConnectAndMuteState(t *testing.T) {
	lab := newLab(t, server.Config{})
	a := newPhone(t, lab, "alice", calltest.PhoneOptions{})
	b := newPhone(t, lab, "bob", calltest.PhoneOptions{})
	ac, bc, aw, bw := ring(t, a, b)
	require.ErrorIs(t, bc.SendText(ctxT(t, time.Second), "too early"), call.ErrState, "not answered yet")
	require.NoError(t, bc.Accept(ctxT(t, setupWait)))
	require.NoError(t, bc.SendText(ctxT(t, setupWait), "first words"), "sent while connecting")
	assert.Equal(t, "first words", aw.waitFor(t, "text", setupWait, func(e call.Event) bool { return e.Kind == call.EventText }).Text)
	ac.Mute(true)
	assert.True(t, ac.Muted())
	ac.Hangup()
	aw.waitEnd(t, setupWait)
	bw.waitEnd(t, setupWait)
	assert.ErrorIs(t, ac.SendText(ctxT(t, time.Second), "late"), call.ErrEnded)
}

// RelayOnly calls go through the server's embedded TURN relay, with the
// time-limited credentials the server hands out in `ready`: only relay
// candidates exist, so a connected call with audio proves the relay path.
func TestRelayOnlyThroughEmbeddedTURN(t *testing.T) {
	secret := []byte("turn-secret")
	turn, err := server.NewTURN(server.TURNConfig{
		ListenAddr:         "127.0.0.1:0",
		Secret:             secret,
		AllowLoopbackPeers: true,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = turn.Close() })
	lab := newLab(t, server.Config{TURNURLs: turn.URLs(), TURNSecret: secret})

	cfg := fast()
	cfg.RelayOnly = true
	sigA := signalFor(8, 2)
	a := newPhone(t, lab, "alice", calltest.PhoneOptions{Config: cfg, Mic: pcm.Loop(sigA)})
	b := newPhone(t, lab, "bob", calltest.PhoneOptions{Config: cfg})
	ac, _, aw, bw := connect(t, a, b)
	require.NoError(t, b.Speaker.Wait(ctxT(t, 10*time.Second), b.Speaker.Len()+2*sec+sec/4))
	corr, snr := heard(t, sigA, b.Speaker.Samples())
	t.Logf("through the relay: corr %.3f SNR %.1f dB", corr, snr)
	assert.Greater(t, corr, 0.9)
	ac.Hangup()
	aw.waitEnd(t, setupWait)
	bw.waitEnd(t, setupWait)
}
