package media

import (
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// RTPWriter is where a Sender writes its packets: a [*Track],
// a *webrtc.TrackLocalStaticRTP, or a test double.
type RTPWriter interface {
	WriteRTP(p *rtp.Packet) error
}

// Negotiated is what a [Track] learned from the offer/answer exchange.
type Negotiated struct {
	// Codec is the codec the track sends with.
	Codec CodecInfo
	// AudioLevelID is the negotiated RFC 6464 header extension ID (0: not
	// negotiated).
	AudioLevelID uint8
	// DTMF is the negotiated RFC 4733 telephone-event codec, with the
	// payload type the far end expects (ClockRate 0: not negotiated). Bind
	// prefers the one whose clock rate matches Codec's.
	DTMF CodecInfo
}

// NegotiatedWriter is an RTPWriter that knows the negotiated codec; a Sender
// writing to one follows it (encoding PCMU when the far end has no Opus).
type NegotiatedWriter interface {
	RTPWriter
	// Negotiated returns the current negotiation result and false while the
	// writer is not bound to a PeerConnection.
	Negotiated() (Negotiated, bool)
}

// MultiCodecWriter is a NegotiatedWriter whose receivers may have
// negotiated different codecs: a [*Track] bound to the peer connections
// of a room, where one member's phone may lack Opus. A Sender writing to
// one encodes each frame once per codec in use and writes each packet to
// the receivers of its codec.
type MultiCodecWriter interface {
	NegotiatedWriter
	// NegotiatedCodecs returns one Negotiated per codec in use, the one
	// Negotiated returns first; nil while unbound. The caller must not
	// modify the slice.
	NegotiatedCodecs() []Negotiated
	// WriteRTPFor writes p to the receivers that negotiated codec (a
	// codec name) and to no other.
	WriteRTPFor(codec string, p *rtp.Packet) error
}

// Track is a webrtc.TrackLocal for one audio stream that, unlike pion's
// static tracks, accepts whichever of its codecs the far end supports: Bind
// picks the first codec of the track's list that was negotiated, and reports
// it (with the audio-level extension ID) through Negotiated. Add it with
// pc.AddTrack and give it to NewSender.
type Track struct {
	id, streamID string
	codecs       []CodecInfo

	mu       sync.RWMutex
	bindings []trackBinding
	inUse    []Negotiated // one per codec of bindings, bindings[0]'s first; replaced, never modified
	onBound  func()
}

type trackBinding struct {
	id     string
	ssrc   uint32
	pt     uint8
	dtmfPT int // -1: telephone-event not negotiated
	neg    Negotiated
	stream webrtc.TrackLocalWriter
}

// NewTrack returns a track with the given IDs that can send the given codecs
// (default: [Codecs], i.e. Opus then PCMU when cgo is available).
func NewTrack(id, streamID string, codecs ...CodecInfo) *Track {
	if len(codecs) == 0 {
		codecs = Codecs()
	}
	return &Track{id: id, streamID: streamID, codecs: codecs}
}

// ID implements webrtc.TrackLocal.
func (t *Track) ID() string { return t.id }

// StreamID implements webrtc.TrackLocal.
func (t *Track) StreamID() string { return t.streamID }

// RID implements webrtc.TrackLocal (no simulcast for audio).
func (t *Track) RID() string { return "" }

// Kind implements webrtc.TrackLocal.
func (t *Track) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeAudio }

// Bind implements webrtc.TrackLocal; pion calls it once negotiation is done.
func (t *Track) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	var ext uint8
	for _, h := range ctx.HeaderExtensions() {
		if h.URI == AudioLevelURI && h.ID > 0 && h.ID < 15 {
			ext = uint8(h.ID)
		}
	}
	for _, want := range t.codecs {
		for _, got := range ctx.CodecParameters() {
			if strings.EqualFold(got.MimeType, want.MimeType) && got.ClockRate == want.ClockRate {
				neg := Negotiated{Codec: want, AudioLevelID: ext}
				dtmfPT := -1
				if te, ok := pickTelephoneEvent(ctx.CodecParameters(), want); ok {
					neg.DTMF, dtmfPT = te, int(te.PayloadType)
				}
				t.mu.Lock()
				t.bindings = append(t.bindings, trackBinding{
					id: ctx.ID(), ssrc: uint32(ctx.SSRC()), pt: uint8(got.PayloadType), dtmfPT: dtmfPT,
					neg: neg, stream: ctx.WriteStream(),
				})
				t.codecsChanged()
				f := t.onBound
				t.mu.Unlock()
				if f != nil {
					f()
				}
				return got, nil
			}
		}
	}
	return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
}

// OnBound sets f to be called, on pion's goroutine, each time a
// PeerConnection binds the track. pion binds a track only once the
// transport is up, a moment after the PeerConnection reports connected, so
// a caller that must write to the track as soon as it can (DTMF queued
// before the call connected) waits for this rather than for the state.
// f must not block.
func (t *Track) OnBound(f func()) {
	t.mu.Lock()
	t.onBound = f
	t.mu.Unlock()
}

// Unbind implements webrtc.TrackLocal.
func (t *Track) Unbind(ctx webrtc.TrackLocalContext) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range t.bindings {
		if t.bindings[i].id == ctx.ID() {
			t.bindings = append(t.bindings[:i], t.bindings[i+1:]...)
			t.codecsChanged()
			return nil
		}
	}
	return webrtc.ErrUnbindFailed
}

// codecsChanged recomputes inUse. Called with t.mu held for writing.
func (t *Track) codecsChanged() {
	var in []Negotiated
	for _, b := range t.bindings {
		if !slices.ContainsFunc(in, func(n Negotiated) bool { return n.Codec.Name == b.neg.Codec.Name }) {
			in = append(in, b.neg)
		}
	}
	t.inUse = in
}

// NegotiatedCodecs implements MultiCodecWriter.
func (t *Track) NegotiatedCodecs() []Negotiated {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.inUse
}

// Negotiated implements NegotiatedWriter: the first binding's codec.
func (t *Track) Negotiated() (Negotiated, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if len(t.bindings) == 0 {
		return Negotiated{}, false
	}
	return t.bindings[0].neg, true
}

// pickTelephoneEvent finds the negotiated telephone-event codec to send with
// audio codec want: the one with want's clock rate, else any (its
// duration field then counts in its own clock, as libwebrtc does). One
// whose payload type equals want's is unusable (Track.WriteRTP could not
// tell the packets apart).
func pickTelephoneEvent(codecs []webrtc.RTPCodecParameters, want CodecInfo) (CodecInfo, bool) {
	var found CodecInfo
	ok := false
	for _, c := range codecs {
		if !isTelephoneEvent(c.MimeType) || c.ClockRate == 0 || c.PayloadType == want.PayloadType {
			continue
		}
		if !ok || (c.ClockRate == want.ClockRate && found.ClockRate != want.ClockRate) {
			found = TelephoneEventInfo(c.ClockRate)
			found.PayloadType, found.SDPFmtpLine = c.PayloadType, c.SDPFmtpLine
			ok = true
		}
	}
	return found, ok
}

// headerPool holds the headers WriteRTP hands to pion.
var headerPool = sync.Pool{New: func() any { return new(rtp.Header) }}

// WriteRTP writes p to every binding whose codec matches the first one's
// (the SSRC and payload type are set per binding; p is not modified). A
// packet whose payload type is Negotiated().DTMF.PayloadType is a
// telephone-event packet and goes out with each binding's telephone-event
// payload type. It returns ErrNotBound before negotiation completes.
func (t *Track) WriteRTP(p *rtp.Packet) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if len(t.bindings) == 0 {
		return ErrNotBound
	}
	return t.write(t.bindings[0].neg.Codec.Name, p)
}

// WriteRTPFor implements MultiCodecWriter: as WriteRTP, for the bindings
// of codec.
func (t *Track) WriteRTPFor(codec string, p *rtp.Packet) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if len(t.bindings) == 0 {
		return ErrNotBound
	}
	return t.write(codec, p)
}

// write sends p to the bindings of codec. Called with t.mu held.
func (t *Track) write(codec string, p *rtp.Packet) error {
	var errs []error
	// The header goes to pion behind an interface, so it would escape:
	// take it from a pool instead of allocating one per packet.
	h := headerPool.Get().(*rtp.Header)
	defer func() { *h = rtp.Header{}; headerPool.Put(h) }()
	*h = p.Header
	dtmf := codec == t.bindings[0].neg.Codec.Name && t.bindings[0].dtmfPT >= 0 && int(p.PayloadType) == t.bindings[0].dtmfPT
	for _, b := range t.bindings {
		if b.neg.Codec.Name != codec {
			continue
		}
		h.SSRC, h.PayloadType = b.ssrc, b.pt
		if dtmf {
			if b.dtmfPT < 0 {
				continue
			}
			h.PayloadType = uint8(b.dtmfPT)
		}
		// Interceptors may append extensions: never into our backing array.
		h.Extensions = p.Extensions[:len(p.Extensions):len(p.Extensions)]
		if _, err := b.stream.WriteRTP(h, p.Payload); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
