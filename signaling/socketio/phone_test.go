package socketio_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/audio"
	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/internal/testlog"
	"github.com/dialtone-dev/dialtone/media"
	"github.com/dialtone-dev/dialtone/media/mediatest"
	"github.com/dialtone-dev/dialtone/media/pcm"
	"github.com/dialtone-dev/dialtone/signaling"
)

// testPhone is a call.Phone on a Socket.IO transport whose microphone
// plays a tone and whose speaker records.
type testPhone struct {
	*call.Phone
	tone    float64
	speaker *pcm.Recorder
}

func newTestPhone(t *testing.T, tr signaling.Transport, tone float64) *testPhone {
	t.Helper()
	p := &testPhone{tone: tone, speaker: &pcm.Recorder{}}
	backend := audio.NewVirtualBackend(audio.VirtualBackendConfig{Devices: []audio.VirtualDevice{
		{ID: "mic", Direction: audio.Capture, Default: true,
			Source: media.NewTone(media.ToneSpec{Frequencies: []float64{tone}, Level: -12})},
		{ID: "speaker", Direction: audio.Playback, Default: true, Sink: p.speaker},
	}})
	var err error
	p.Phone, err = call.NewPhone(tr, call.Config{
		SettingEngine:   calltest.Loopback(),
		Audio:           call.AudioConfig{Backend: backend},
		RingTimeout:     10 * time.Second,
		ConnectTimeout:  15 * time.Second,
		EndToneDuration: -1,
		Logger:          testlog.Logger(t),
	})
	if err != nil {
		_ = tr.Close()
		_ = backend.Close()
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		assert.NoError(t, p.Close())
		assert.NoError(t, backend.Close())
	})
	return p
}

// hears waits for a second and a half of what p plays from now on and
// checks that it is the tone freq: most of its energy there (the median
// over 100 ms blocks), and not p's own tone.
func (p *testPhone) hears(t *testing.T, freq float64) {
	t.Helper()
	mark := p.speaker.Len()
	need := mark + 3*audio.SampleRate/2
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, p.speaker.Wait(ctx, need), "%s played %d samples", p.User(), p.speaker.Len()-mark)
	heard := p.speaker.Samples()[mark:need]
	share, own := mediatest.BlockToneShare(heard, freq), mediatest.BlockToneShare(heard, p.tone)
	t.Logf("%s heard %.0f Hz at %.2f of the energy (its own %.0f Hz: %.3f), %.1f dBov",
		p.User(), freq, share, p.tone, own, media.LevelDBov(heard))
	assert.Greater(t, share, 0.5, "%s hears %.0f Hz", p.User(), freq)
	assert.Less(t, own, 0.05, "%s does not hear its own tone", p.User())
}

// answer accepts in, the callee's end of the call out, waits until both
// ends are connected and checks that each phone hears the other's tone.
func answer(ctx context.Context, t *testing.T, caller *testPhone, out *call.Call, callee *testPhone, in *call.Call) {
	t.Helper()
	require.NoError(t, in.Accept(ctx))
	waitState(t, out, call.Connected, 15*time.Second)
	waitState(t, in, call.Connected, 15*time.Second)
	callee.hears(t, caller.tone)
	caller.hears(t, callee.tone)
}

// hangUp hangs c up and checks that it ends as a hangup and peer, the
// call's other end, as a remote hangup.
func hangUp(t *testing.T, c, peer *call.Call) {
	t.Helper()
	c.Hangup()
	assert.Equal(t, call.ReasonRemoteHangup, waitEnd(t, peer, 10*time.Second))
	assert.Equal(t, call.ReasonHangup, waitEnd(t, c, 10*time.Second))
}

// waitState waits for c to reach state s.
func waitState(t *testing.T, c *call.Call, s call.State, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for c.State() != s {
		select {
		case _, ok := <-c.Events():
			if !ok && c.State() != s {
				t.Fatalf("call %s ended (%s) before %s", c.ID(), c.State(), s)
			}
		case <-deadline:
			t.Fatalf("call %s: no %s within %v (now %s)", c.ID(), s, d, c.State())
		}
	}
}

// waitEnd waits for c to end and returns the reason.
func waitEnd(t *testing.T, c *call.Call, d time.Duration) call.Reason {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	reason, err := c.Wait(ctx)
	require.NoError(t, err, "call %s did not end (%s)", c.ID(), c.State())
	return reason
}

func incoming(t *testing.T, p *testPhone, d time.Duration) *call.Call {
	t.Helper()
	select {
	case c := <-p.Incoming():
		require.NotNil(t, c)
		return c
	case <-time.After(d):
		t.Fatalf("%s: no incoming call within %v", p.User(), d)
		return nil
	}
}
