package media

import (
	"sync"
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeBinding is the TrackLocalContext one PeerConnection's RTPSender gives
// a track, recording what is written to it.
type fakeBinding struct {
	id   string
	ssrc webrtc.SSRC
	pt   webrtc.PayloadType

	mu  sync.Mutex
	got []rtp.Packet
}

func (b *fakeBinding) CodecParameters() []webrtc.RTPCodecParameters {
	p := OpusInfo().Parameters()
	p.PayloadType = b.pt
	return []webrtc.RTPCodecParameters{p}
}

func (b *fakeBinding) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter { return nil }
func (b *fakeBinding) SSRC() webrtc.SSRC                                      { return b.ssrc }
func (b *fakeBinding) SSRCRetransmission() webrtc.SSRC                        { return 0 }
func (b *fakeBinding) SSRCForwardErrorCorrection() webrtc.SSRC                { return 0 }
func (b *fakeBinding) WriteStream() webrtc.TrackLocalWriter                   { return b }
func (b *fakeBinding) ID() string                                             { return b.id }
func (b *fakeBinding) RTCPReader() interceptor.RTCPReader                     { return nil }

func (b *fakeBinding) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = append(b.got, rtp.Packet{Header: *h, Payload: append([]byte(nil), payload...)})
	return len(payload), nil
}

func (b *fakeBinding) Write(p []byte) (int, error) { return len(p), nil }

func (b *fakeBinding) packets() []rtp.Packet {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]rtp.Packet(nil), b.got...)
}

// TestTrackSeveralBindings: a room adds one Track to the PeerConnection of
// every member, so each packet the Sender encodes once must go to every
// binding, with that binding's SSRC and payload type and the same payload;
// a member leaving (Unbind) must not stop the others' stream, and each
// binding is reported to OnBound.
func TestTrackSeveralBindings(t *testing.T) {
	tr := NewTrack("audio", "room", OpusInfo())
	bound := 0
	tr.OnBound(func() { bound++ })
	a := &fakeBinding{id: "a", ssrc: 1111, pt: 111}
	b := &fakeBinding{id: "b", ssrc: 2222, pt: 96}
	c := &fakeBinding{id: "c", ssrc: 3333, pt: 109}
	for _, x := range []*fakeBinding{a, b, c} {
		_, err := tr.Bind(x)
		require.NoError(t, err)
	}
	assert.Equal(t, 3, bound, "OnBound is told every binding")

	p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: 7, Timestamp: 960}, Payload: []byte{1, 2, 3}}
	require.NoError(t, tr.WriteRTP(p))
	for _, x := range []*fakeBinding{a, b, c} {
		got := x.packets()
		require.Len(t, got, 1, "binding %s", x.id)
		assert.Equal(t, uint32(x.ssrc), got[0].SSRC, "binding %s: its own SSRC", x.id)
		assert.Equal(t, uint8(x.pt), got[0].PayloadType, "binding %s: its own payload type", x.id)
		assert.Equal(t, p.Payload, got[0].Payload, "binding %s: the same payload", x.id)
		assert.Equal(t, p.SequenceNumber, got[0].SequenceNumber)
	}
	assert.Equal(t, uint32(0), p.SSRC, "the caller's packet is not modified")

	// The first binding goes: the others keep receiving, and Negotiated
	// follows the first remaining binding.
	require.NoError(t, tr.Unbind(a))
	assert.ErrorIs(t, tr.Unbind(a), webrtc.ErrUnbindFailed, "a binding is unbound once")
	neg, ok := tr.Negotiated()
	require.True(t, ok)
	assert.Equal(t, CodecOpus, neg.Codec.Name)
	require.NoError(t, tr.WriteRTP(p))
	assert.Len(t, a.packets(), 1, "an unbound binding gets nothing more")
	assert.Len(t, b.packets(), 2)
	assert.Len(t, c.packets(), 2)

	require.NoError(t, tr.Unbind(b))
	require.NoError(t, tr.Unbind(c))
	_, ok = tr.Negotiated()
	assert.False(t, ok)
	assert.ErrorIs(t, tr.WriteRTP(p), ErrNotBound)
}
