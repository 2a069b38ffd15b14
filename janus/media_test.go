package janus

import (
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/internal/janustest"
	"github.com/dialtone-dev/dialtone/negotiation"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/stretchr/testify/require"
)

// TestMixerPeerConnection: a PeerConnection negotiated through the
// AudioBridge (our offer with configure, Janus's answer and candidates as
// Signals for the negotiator, our candidates trickled to Janus) connects,
// and the mixer's audio reaches us.
func TestMixerPeerConnection(t *testing.T) {
	srv := janustest.Start(t, janustest.Options{})
	b, _ := bridge(t, srv)
	ctx := ctxT(t)
	room, err := b.Create(ctx, RoomOptions{})
	require.NoError(t, err)
	_, err = b.Join(ctx, room, JoinOptions{Display: "pc"})
	require.NoError(t, err)

	var m webrtc.MediaEngine
	require.NoError(t, m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType:        111,
	}, webrtc.RTPCodecTypeAudio))
	api := webrtc.NewAPI(webrtc.WithMediaEngine(&m), webrtc.WithSettingEngine(*srv.SettingEngine()))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	defer pc.Close()
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "pc")
	require.NoError(t, err)
	_, err = pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
	require.NoError(t, err)
	heard := make(chan struct{})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if _, _, err := tr.ReadRTP(); err == nil {
			close(heard)
		}
	})
	n, err := negotiation.New(pc, negotiation.Config{Send: b.Signal})
	require.NoError(t, err)
	defer n.Close()

	// Opus silence frames keep the mixer fed.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_ = track.WriteSample(media.Sample{Data: []byte{0xf8, 0xff, 0xfe}, Duration: 20 * time.Millisecond})
			}
		}
	}()

	var up, answered, candidates bool
	deadline := time.After(10 * time.Second)
	for !up || !answered {
		select {
		case e, ok := <-b.Events():
			require.True(t, ok, "events ended: %v", b.Err())
			switch e.Kind {
			case BridgeSignal:
				if e.Signal.Description != nil {
					answered = true
				} else {
					candidates = true
				}
				require.NoError(t, n.HandleSignal(ctx, e.Signal))
			case BridgeSignalFailed:
				t.Fatalf("offer rejected: %v", e.Err)
			case BridgeMediaUp:
				up = true
			}
		case <-deadline:
			t.Fatalf("no connection: answered %v, up %v, ICE %v", answered, up, pc.ICEConnectionState())
		}
	}
	t.Logf("Janus trickled candidates: %v", candidates)
	select {
	case <-heard:
	case <-time.After(5 * time.Second):
		t.Fatal("no audio from the mixer")
	}
}
