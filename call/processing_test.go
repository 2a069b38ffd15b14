package call_test

import (
	"math"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/audio"
	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/media/apm"
	"github.com/dialtone-dev/dialtone/media/pcm"
	"github.com/dialtone-dev/dialtone/signaling/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// echoRoom is a microphone that hears its own speaker: what the speaker
// played comes back after a delay at a gain.
type echoRoom struct {
	line *audio.DelayLine
	gain float64
}

func (r *echoRoom) ReadPCM(p []int16) (int, error) {
	n, err := r.line.ReadPCM(p)
	for i := range p[:n] {
		p[i] = int16(float64(p[i]) * r.gain)
	}
	return n, err
}

// echoingDevices is a virtual sound card whose microphone hears its
// speaker 30 ms later, 6 dB down.
func echoingDevices(t *testing.T) *audio.VirtualBackend {
	room := &echoRoom{line: audio.NewDelayLine(30 * time.Millisecond), gain: 0.5}
	backend := audio.NewVirtualBackend(audio.VirtualBackendConfig{Devices: []audio.VirtualDevice{
		{ID: "mic", Direction: audio.Capture, Default: true, Source: room},
		{ID: "speaker", Direction: audio.Playback, Default: true, Sink: room.line},
	}})
	t.Cleanup(func() { _ = backend.Close() })
	return backend
}

func rmsDB(p []int16) float64 {
	var e float64
	for _, v := range p {
		e += float64(v) * float64(v)
	}
	return 10 * math.Log10(e/float64(max(1, len(p)))+1e-9)
}

// TestEchoCancelledInCall: bob's speaker feeds his own microphone (30 ms
// later, 6 dB down). With the processing on, alice does not hear herself
// back; with it off, she does.
func TestEchoCancelledInCall(t *testing.T) {
	if !apm.Available() {
		t.Skip("built without cgo: the processing is a pass-through")
	}
	for _, tc := range []struct {
		name string
		cfg  apm.Config
	}{
		{"on", apm.Default()},
		{"off", apm.Config{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lab := newLab(t, server.Config{})
			voice := signalFor(7, 4)
			alice := newPhone(t, lab, "alice", calltest.PhoneOptions{Mic: pcm.Loop(voice)})

			cfg := fast()
			cfg.Audio.Backend = echoingDevices(t)
			cfg.Processing = &tc.cfg
			bob := newPhone(t, lab, "bob", calltest.PhoneOptions{Config: cfg})

			c, err := alice.Dial(ctxT(t, 5*time.Second), "bob")
			require.NoError(t, err)
			in := nextIncoming(t, bob, 5*time.Second)
			require.NoError(t, in.Accept(ctxT(t, 5*time.Second)))
			watch(c).waitState(t, call.Connected, 10*time.Second)

			// Six seconds of alice talking: the canceller has converged
			// well before the last two, which are measured.
			start := alice.Speaker.Len()
			const sr = 48000
			require.NoError(t, alice.Speaker.Wait(ctxT(t, 15*time.Second), start+6*sr))
			heard := alice.Speaker.Samples()[start+4*sr : start+6*sr]
			echo := rmsDB(heard) - rmsDB(voice)
			st := in.Stats().Processing // the latest sample, a quarter of a second old at most
			t.Logf("processing %s: alice hears herself at %.1f dB; bob's stats %+v", tc.name, echo, st)
			assert.Equal(t, tc.cfg, st.Config)
			if tc.cfg.EchoCancel {
				assert.Less(t, echo, -35.0, "echo with the processing on")
				assert.Greater(t, st.ERLE, 10.0, "the reported echo removed")
			} else {
				assert.Greater(t, echo, -15.0, "echo with the processing off")
			}
		})
	}
}

// TestEchoCancelledInRoom: the same echo in a room. Bob's microphone hears
// his speaker; with the processing on alice does not hear herself back
// through him, and once bob switches it off mid-room (Room.SetProcessing)
// she does.
func TestEchoCancelledInRoom(t *testing.T) {
	if !apm.Available() {
		t.Skip("built without cgo: the processing is a pass-through")
	}
	lab := newLab(t, server.Config{})
	voice := signalFor(7, 4)
	alice := &member{Phone: newPhone(t, lab, "alice", calltest.PhoneOptions{Mic: pcm.Loop(voice)})}
	cfg := fast()
	cfg.Audio.Backend = echoingDevices(t)
	on := apm.Default()
	cfg.Processing = &on
	bob := &member{Phone: newPhone(t, lab, "bob", calltest.PhoneOptions{Config: cfg})}
	alice.join(t, "echo")
	bob.join(t, "echo")
	alice.waitConnected(t, bob)
	bob.waitConnected(t, alice)

	// The canceller converges within the first seconds; the last two of
	// six are measured.
	echoAt := func() float64 {
		heard := alice.heard(t, 6*time.Second)
		return rmsDB(heard[4*sec:]) - rmsDB(voice)
	}
	withProcessing := echoAt()
	bob.room.SetProcessing(apm.Config{})
	without := echoAt()
	t.Logf("alice hears herself through bob at %.1f dB with his processing on, %.1f dB with it off", withProcessing, without)
	assert.Less(t, withProcessing, -35.0, "echo with the processing on")
	assert.Greater(t, without, -15.0, "echo with the processing off")
}
