package call_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/audio"
	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/dialtone-dev/dialtone/signaling/server"
)

// relayAsker is a transport that reports each `relay` request its phone
// sends.
type relayAsker struct {
	signaling.Transport
	asked chan time.Time
}

func (a relayAsker) Send(ctx context.Context, m signaling.Message) error {
	if m.Type == signaling.TypeRelay {
		select {
		case a.asked <- time.Now():
		default:
		}
	}
	return a.Transport.Send(ctx, m)
}

// TestRoomRefreshesRelayCredentials: TURN credentials expire (the
// server's TURNTTL, 2 s here), and a room outlives the set-up that
// refreshes a call's. While in a room the phone asks for fresh ones each
// time they reach half their lifetime, so the peer connections made for
// later members and the ICE restarts of the live ones have valid
// credentials; the media carries on meanwhile.
func TestRoomRefreshesRelayCredentials(t *testing.T) {
	lab := newLab(t, server.Config{
		// Nothing listens there: no relay candidate, the host ones work.
		TURNURLs:   []string{"turn:127.0.0.1:9?transport=tcp"},
		TURNSecret: []byte("test secret"),
		TURNTTL:    2 * time.Second,
	})
	conn, err := lab.Server.ConnectLocal(ctxT(t, setupWait), "alice", server.LocalOptions{})
	require.NoError(t, err)
	asker := relayAsker{Transport: conn, asked: make(chan time.Time, 16)}
	backend := audio.NewVirtualBackend(audio.VirtualBackendConfig{Devices: []audio.VirtualDevice{
		{ID: "mic", Direction: audio.Capture, Default: true, Source: toneMic(440)},
		{ID: "speaker", Direction: audio.Playback, Default: true},
	}})
	t.Cleanup(func() { _ = backend.Close() })
	var logs syncBuffer
	cfg := fast()
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg.SettingEngine = calltest.Loopback()
	cfg.Audio.Backend = backend
	phone, err := call.NewPhone(asker, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = phone.Close() })
	alice := &member{Phone: &calltest.Phone{Phone: phone}, tone: 440}
	bob := newMember(t, lab, "bob", 620)
	all := []*member{alice, bob}
	for _, m := range all {
		m.join(t, "relay")
	}
	joined := time.Now()
	bob.waitConnected(t, alice)

	// Fresh credentials at join (ready): stale 1 s later, and every second
	// after each answer.
	deadline := time.After(5 * time.Second)
	for n := range 2 {
		select {
		case at := <-asker.asked:
			require.True(t, at.After(joined), "request %d before the join", n)
		case <-deadline:
			t.Fatalf("alice asked for fresh relay credentials %d times in 5 s of a room with 2 s credentials", n)
		}
	}
	require.Greater(t, toneShare(bob.heard(t, time.Second), 440), 0.5, "bob still hears alice")
	// The live peer connection took the new servers.
	require.NotContains(t, logs.String(), "relay servers not updated")
}
