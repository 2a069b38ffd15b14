package negotiation

import (
	"context"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"
)

func ptr[T any](v T) *T { return &v }

// TestBadInput: malformed or out-of-place signals return an error, never
// panic, and leave the negotiator usable (a renegotiation still works).
func TestBadInput(t *testing.T) {
	a, b := newPair(t, pairOptions{})
	var aTracks, bTracks []webrtc.TrackLocal
	require.NoError(t, addTrack(t, &aTracks, "a0")(a))
	converged(t, a, b, aTracks, bTracks)
	answer := *b.pc.CurrentLocalDescription() // b answered a's offer
	host := "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host"

	cases := []struct {
		name string
		to   *peer
		sig  Signal
		want error
	}{
		{"empty signal", a, Signal{}, ErrEmptySignal},
		{"description and candidate", a, Signal{Description: &answer, Candidate: &webrtc.ICECandidateInit{Candidate: host}}, ErrEmptySignal},
		{"garbage offer", a, Signal{Description: &webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: "garbage"}}, ErrInvalidDescription},
		{"garbage answer to polite", b, Signal{Description: &webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: "v=0\r\nbroken"}}, ErrInvalidDescription},
		{"offer without ufrag", b, Signal{Description: &webrtc.SessionDescription{Type: webrtc.SDPTypeOffer,
			SDP: "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"}}, ErrInvalidDescription},
		{"rollback type", a, Signal{Description: &webrtc.SessionDescription{Type: webrtc.SDPTypeRollback, SDP: answer.SDP}}, ErrInvalidDescription},
		{"pranswer type", b, Signal{Description: &webrtc.SessionDescription{Type: webrtc.SDPTypePranswer, SDP: answer.SDP}}, ErrInvalidDescription},
		{"answer in stable (impolite)", a, Signal{Description: &answer}, ErrUnexpectedAnswer},
		{"answer in stable (polite)", b, Signal{Description: &answer}, ErrUnexpectedAnswer},
		{"garbage candidate", a, Signal{Candidate: &webrtc.ICECandidateInit{Candidate: "candidate:nonsense"}}, ErrInvalidCandidate},
		{"candidate for unknown mid", a, Signal{Candidate: &webrtc.ICECandidateInit{Candidate: host, SDPMid: ptr("99")}}, ErrUnknownMLine},
		{"candidate for unknown m-line index", b, Signal{Candidate: &webrtc.ICECandidateInit{Candidate: host, SDPMLineIndex: ptr(uint16(7))}}, ErrUnknownMLine},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := tc.to.n.HandleSignal(ctx, tc.sig)
			require.ErrorIs(t, err, tc.want)
		})
	}

	// Still usable: both sides renegotiate a new track each.
	require.NoError(t, addTrack(t, &aTracks, "a1")(a))
	converged(t, a, b, aTracks, bTracks)
	require.NoError(t, addTrack(t, &bTracks, "b1")(b))
	converged(t, a, b, aTracks, bTracks)
	require.Equal(t, webrtc.SignalingStateStable, a.pc.SignalingState())
}

// TestNewValidation: New rejects a missing PeerConnection or Send, and a
// closed negotiator refuses signals.
func TestNewValidation(t *testing.T) {
	_, err := New(nil, Config{Send: func(Signal) error { return nil }})
	require.ErrorIs(t, err, ErrNilPeerConnection)
	pc, err := loopbackAPI(t, nil).NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	defer func() { require.NoError(t, pc.Close()) }()
	_, err = New(pc, Config{})
	require.ErrorIs(t, err, ErrNoSend)
	n, err := New(pc, Config{Send: func(Signal) error { return nil }})
	require.NoError(t, err)
	require.NoError(t, n.Close())
	require.NoError(t, n.Close())
	<-n.Done()
	require.ErrorIs(t, n.Err(), ErrClosed)
	err = n.HandleSignal(context.Background(), Signal{Candidate: &webrtc.ICECandidateInit{Candidate: "candidate:x"}})
	require.ErrorIs(t, err, ErrClosed)
}
