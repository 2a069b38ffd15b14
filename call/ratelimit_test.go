package call_test

import (
	"context"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/audio"
	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/media/pcm"
	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/dialtone-dev/dialtone/signaling/server"
)

// wsPhone is a Phone on a WebSocket transport to url (dev mode), with
// virtual audio.
func wsPhone(t *testing.T, url, user string) *call.Phone {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr, err := signaling.Dial(ctx, url+"?user="+user, signaling.DialConfig{})
	require.NoError(t, err)
	backend := audio.NewVirtualBackend(audio.VirtualBackendConfig{Devices: []audio.VirtualDevice{
		{ID: "mic", Direction: audio.Capture, Default: true},
		{ID: "speaker", Direction: audio.Playback, Default: true, Sink: &pcm.Recorder{}},
	}})
	cfg := fast()
	cfg.SettingEngine = calltest.Loopback()
	cfg.Audio.Backend = backend
	p, err := call.NewPhone(tr, cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = p.Close()
		_ = backend.Close()
	})
	return p
}

// An invite the server drops for a rate limit (here the callee's inbound
// one, used up by a flood from someone else) does not end the call: the
// phone's transport sends it again after the server's delay and the
// callee rings.
func TestPhoneResendsRateLimitedInvite(t *testing.T) {
	srv := server.New(server.Config{DevMode: true, InboundRateLimit: 4, InboundBurst: 2})
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		_ = srv.Close()
		hs.Close()
	})
	url := "ws" + strings.TrimPrefix(hs.URL, "http")
	alice := wsPhone(t, url, "alice")
	bob := wsPhone(t, url, "bob")

	ctx := ctxT(t, 10*time.Second)
	spam, err := srv.ConnectLocal(ctx, "spam", server.LocalOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = spam.Close() })
	<-spam.Incoming() // ready
	for i := 0; i < 4; i++ {
		require.NoError(t, spam.Send(ctx, signaling.Message{Type: signaling.TypeSignal, To: "bob", Call: "x" + strconv.Itoa(i)}))
	}
	// The spam used up bob's inbound budget once spam hears `rate-limited`.
	for m := range spam.Incoming() {
		if m.Type == signaling.TypeError {
			break
		}
	}

	c, err := alice.Dial(ctx, "bob")
	require.NoError(t, err)
	w := watch(c)
	select {
	case in := <-bob.Incoming():
		require.Equal(t, "alice", in.Peer())
	case <-time.After(5 * time.Second):
		require.FailNow(t, "bob never rang", "alice's call: %v", w.states())
	}
	w.waitState(t, call.Waiting, 5*time.Second)
	c.Hangup()
	w.waitEnd(t, 5*time.Second)
}
