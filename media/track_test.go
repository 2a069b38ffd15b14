package media

import (
	"sync"
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/media/mediatest"
)

// fakeBinding is the TrackLocalContext one PeerConnection's RTPSender gives
// a track, recording what is written to it.
type fakeBinding struct {
	id    string
	ssrc  webrtc.SSRC
	pt    webrtc.PayloadType
	codec CodecInfo // the far end's one codec; zero: Opus

	mu  sync.Mutex
	got []rtp.Packet
}

func (b *fakeBinding) CodecParameters() []webrtc.RTPCodecParameters {
	c := b.codec
	if c.Name == "" {
		c = OpusInfo()
	}
	p := c.Parameters()
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

// TestSenderMixedCodecs: a room's Track bound to a member that negotiated
// Opus and one that has PCMU alone. The Sender encodes each frame once
// per codec and each member gets its codec's stream alone (its payload
// type, consecutive sequence numbers, its clock's timestamps), which
// decodes to the microphone's tone; once the PCMU member leaves, PCMU is
// no longer encoded.
func TestSenderMixedCodecs(t *testing.T) {
	if !OpusAvailable {
		t.Skip("built without cgo: PCMU is the only codec")
	}
	tr := NewTrack("audio", "room")
	opus := &fakeBinding{id: "opus", ssrc: 1111, pt: 111}
	pcmu := &fakeBinding{id: "pcmu", ssrc: 2222, pt: 0, codec: PCMUInfo()}
	for _, b := range []*fakeBinding{opus, pcmu} {
		_, err := tr.Bind(b)
		require.NoError(t, err)
	}
	s, err := NewSender(tr, SenderConfig{})
	require.NoError(t, err)
	defer s.Close()
	const frames = 25
	tone := mediatest.Sine(frames*960, 1000, 0.3)
	for i := 0; i < len(tone); i += 480 {
		_, err := s.WritePCM(tone[i : i+480])
		require.NoError(t, err)
	}
	for _, c := range []struct {
		b     *fakeBinding
		codec string
		tick  uint32
	}{{opus, CodecOpus, 960}, {pcmu, CodecPCMU, 160}} {
		got := c.b.packets()
		require.Len(t, got, frames, "%s: a packet per frame", c.codec)
		dec, err := NewDecoder(c.codec)
		require.NoError(t, err)
		var out []int16
		for i, p := range got {
			assert.Equal(t, uint8(c.b.pt), p.PayloadType)
			assert.Equal(t, uint32(c.b.ssrc), p.SSRC)
			if i > 0 {
				assert.Equal(t, got[i-1].SequenceNumber+1, p.SequenceNumber, "%s: consecutive sequence numbers", c.codec)
				assert.Equal(t, got[i-1].Timestamp+c.tick, p.Timestamp, "%s: timestamps in its clock", c.codec)
			}
			pcm := make([]int16, 960)
			n, err := dec.Decode(p.Payload, pcm)
			require.NoError(t, err, "%s packet %d decodes", c.codec, i)
			out = append(out, pcm[:n]...)
		}
		_ = dec.Close()
		share := mediatest.ToneShare(out[len(out)/2:], 1000)
		assert.Greater(t, share, 0.9, "%s: the receiver decodes the microphone's tone", c.codec)
	}

	require.NoError(t, tr.Unbind(pcmu))
	for i := 0; i < 960*5; i += 480 {
		_, err := s.WritePCM(tone[i : i+480])
		require.NoError(t, err)
	}
	assert.Len(t, pcmu.packets(), frames, "nothing more for the member gone")
	assert.Len(t, opus.packets(), frames+5)
	assert.Equal(t, uint64(2*frames+5), s.Stats().Packets, "one packet per codec in use and frame")
	assert.Empty(t, s.more, "the PCMU encoder is released")
}
