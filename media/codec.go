package media

import (
	"fmt"
	"strings"

	"github.com/pion/webrtc/v4"
)

// SampleRate is the PCM sample rate used everywhere in the package (Hz).
const SampleRate = 48000

// Codec names accepted by [NewEncoder], [NewDecoder] and the Codec fields of
// the configuration structs. They are compared case-insensitively, with or
// without the "audio/" prefix.
const (
	CodecOpus = "opus"
	CodecPCMU = "PCMU"
)

// CodecInfo describes a codec on the wire: what pion needs to negotiate it
// and what the RTP layer needs to time it.
type CodecInfo struct {
	// Name is CodecOpus or CodecPCMU.
	Name string
	// MimeType is the WebRTC MIME type, e.g. webrtc.MimeTypeOpus.
	MimeType string
	// ClockRate is the RTP clock rate in Hz (48000 for Opus, 8000 for PCMU).
	ClockRate uint32
	// Channels is the channel count announced in SDP (2 for Opus, as RFC 7587
	// requires, even though we send mono; 0 for PCMU).
	Channels uint16
	// PayloadType is the payload type we offer.
	PayloadType webrtc.PayloadType
	// SDPFmtpLine is the a=fmtp parameters we offer.
	SDPFmtpLine string
	// FEC reports whether the codec has in-band forward error correction.
	FEC bool
}

// Capability returns the pion codec capability for c.
func (c CodecInfo) Capability() webrtc.RTPCodecCapability {
	return webrtc.RTPCodecCapability{
		MimeType:    c.MimeType,
		ClockRate:   c.ClockRate,
		Channels:    c.Channels,
		SDPFmtpLine: c.SDPFmtpLine,
	}
}

// Parameters returns the pion codec parameters (capability plus payload type).
func (c CodecInfo) Parameters() webrtc.RTPCodecParameters {
	return webrtc.RTPCodecParameters{RTPCodecCapability: c.Capability(), PayloadType: c.PayloadType}
}

// samplesPerTick converts RTP timestamp units to 48 kHz samples: 1 for Opus,
// 6 for PCMU.
func (c CodecInfo) samplesPerTick() int {
	if c.ClockRate == 0 {
		return 1
	}
	return SampleRate / int(c.ClockRate)
}

// PCMUInfo describes G.711 μ-law (static payload type 0, 8 kHz).
func PCMUInfo() CodecInfo {
	return CodecInfo{Name: CodecPCMU, MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, PayloadType: 0}
}

// OpusInfo describes Opus as we offer it: payload type 111, in-band FEC and
// 10 ms frames allowed. It is returned even when Opus is unavailable in
// this build; check [OpusAvailable].
func OpusInfo() CodecInfo {
	return CodecInfo{
		Name: CodecOpus, MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
		PayloadType: 111, SDPFmtpLine: "minptime=10;useinbandfec=1", FEC: true,
	}
}

// Codecs returns the codecs this build can encode and decode, in order of
// preference (Opus first when available, then PCMU).
func Codecs() []CodecInfo {
	if OpusAvailable {
		return []CodecInfo{OpusInfo(), PCMUInfo()}
	}
	return []CodecInfo{PCMUInfo()}
}

// LookupCodec returns the info of an available codec by name or MIME type.
func LookupCodec(name string) (CodecInfo, error) {
	n := strings.TrimPrefix(strings.ToLower(name), "audio/")
	for _, c := range Codecs() {
		if strings.ToLower(c.Name) == n {
			return c, nil
		}
	}
	return CodecInfo{}, fmt.Errorf("%w: %q", ErrUnknownCodec, name)
}

// RegisterCodecs registers on m the audio codecs this build supports, or only
// those named in names (by name or MIME type) when names is not empty, in
// preference order. It also registers RFC 4733 telephone-event (DTMF) at
// the clock rates of those codecs (48000 with Opus, payload type 110; 8000
// with PCMU, payload type 126 — the ones Chrome offers), and the RFC 6464
// audio-level header extension so a [Track] can send levels.
func RegisterCodecs(m *webrtc.MediaEngine, names ...string) error {
	list := Codecs()
	if len(names) > 0 {
		list = list[:0:0]
		for _, n := range names {
			c, err := LookupCodec(n)
			if err != nil {
				return err
			}
			list = append(list, c)
		}
	}
	// RFC 4733 DTMF: telephone-event at the clock rate of every registered
	// codec (48000 pairs with Opus, 8000 with PCMU), after the audio codecs.
	// pion only keeps the remote's exact matches (MIME type, clock rate,
	// channels and shared fmtp keys) when there are any, so the clock rate
	// must be explicit (pion's default for unknown types is 90000) and the
	// fmtp is the bare event range browsers offer ("0-15").
	rates := map[uint32]bool{}
	for _, c := range list {
		rates[c.ClockRate] = true
	}
	for _, rate := range []uint32{48000, 8000} {
		if rates[rate] {
			list = append(list, TelephoneEventInfo(rate))
		}
	}
	for _, c := range list {
		if err := m.RegisterCodec(c.Parameters(), webrtc.RTPCodecTypeAudio); err != nil {
			return fmt.Errorf("media: register %s: %w", c.Name, err)
		}
	}
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: AudioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		return fmt.Errorf("media: register audio level extension: %w", err)
	}
	return nil
}

// AudioLevelURI is the RFC 6464 client-to-mixer audio level header extension.
const AudioLevelURI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

// Encoder turns one frame of 48 kHz mono PCM into one RTP payload. An Encoder
// is not safe for concurrent use.
type Encoder interface {
	// Info describes the codec.
	Info() CodecInfo
	// Encode encodes exactly one frame (480 or 960 samples) into out and
	// returns the payload length. A length of 0 to 2 bytes from Opus in DTX
	// means "nothing worth sending".
	Encode(pcm []int16, out []byte) (int, error)
	// SetPacketLoss tells the encoder the loss rate the far end reports
	// (percent, 0–100). Codecs with in-band FEC turn it on when pct > 0 and
	// FEC is allowed, and off on a clean link.
	SetPacketLoss(pct int) error
	// Close releases the encoder.
	Close() error
}

// Decoder turns RTP payloads into 48 kHz mono PCM. A Decoder is not safe for
// concurrent use.
type Decoder interface {
	// Info describes the codec.
	Info() CodecInfo
	// Decode decodes one payload into pcm and returns the number of samples.
	// pcm must hold at least 120 ms (5760 samples) for Opus packets of any
	// duration.
	Decode(payload []byte, pcm []int16) (int, error)
	// DecodePLC fills pcm (a multiple of 2.5 ms) with concealment for a lost
	// frame.
	DecodePLC(pcm []int16) error
	// DecodeFEC fills pcm (the lost frame's duration) from the in-band FEC
	// data carried by payload, the packet that followed the lost one. It
	// returns ErrNoFEC for codecs without FEC.
	DecodeFEC(payload []byte, pcm []int16) error
	// Duration returns the number of 48 kHz samples payload decodes to, or
	// 0 if unknown.
	Duration(payload []byte) int
	// Close releases the decoder.
	Close() error
}

// EncoderConfig configures an Encoder. The zero value is valid.
type EncoderConfig struct {
	// FrameMillis is the frame duration in milliseconds: 10 or 20 (default 20).
	FrameMillis int
	// Bitrate in bit/s for Opus (default 32000).
	Bitrate int
	// Complexity 1–10 for Opus (default DefaultOpusComplexity; see the
	// package documentation for the cost/quality trade-off).
	Complexity int
	// Application is the Opus application mode (default OpusVoIP).
	Application OpusApplication
	// MaxBandwidth caps the Opus audio bandwidth (default
	// OpusFullband: no cap).
	MaxBandwidth OpusBandwidth
	// DisableFEC keeps Opus in-band FEC off even when loss is reported.
	DisableFEC bool
	// DTX enables Opus discontinuous transmission in silence.
	DTX bool
}

func (c EncoderConfig) withDefaults() (EncoderConfig, error) {
	if c.FrameMillis == 0 {
		c.FrameMillis = 20
	}
	if c.FrameMillis != 10 && c.FrameMillis != 20 {
		return c, fmt.Errorf("%w: %d ms", ErrFrameSize, c.FrameMillis)
	}
	if c.Bitrate == 0 {
		c.Bitrate = 32000
	}
	if c.Complexity == 0 {
		c.Complexity = DefaultOpusComplexity
	}
	c.Complexity = max(1, min(c.Complexity, 10))
	return c, nil
}

// DefaultOpusComplexity is the Opus encoder complexity used when none is
// configured: what desktop browsers use, and where speech quality stops
// rising (see the package documentation, Quality and capacity).
const DefaultOpusComplexity = 9

// CapacityEncoder is the encoder profile for a process that holds many
// calls at once: complexity 1, capped at wideband (SILK alone, 8 kHz of
// audio band). It encodes at a fraction of the default's cost; speech
// scores a little lower up to 8 kHz, and loses what lies above
// (docs/PERFORMANCE.md has the figures).
func CapacityEncoder() EncoderConfig {
	return EncoderConfig{Complexity: 1, MaxBandwidth: OpusWideband}
}

// OpusApplication is the Opus encoder's application mode.
type OpusApplication int

// Opus application modes (see the package documentation, Capacity).
const (
	// OpusVoIP favours speech intelligibility: SILK or hybrid on speech,
	// in-band FEC and DTX available. The default.
	OpusVoIP OpusApplication = iota
	// OpusAudio favours fidelity to the input: CELT on speech at low
	// complexity, hybrid at high complexity.
	OpusAudio
	// OpusLowDelay (restricted low delay) is CELT only: cheapest to
	// encode and 2.5 ms less codec delay, but no in-band FEC and no DTX,
	// and worse than SILK at low bitrates.
	OpusLowDelay
)

// OpusBandwidth caps the audio bandwidth Opus may code.
type OpusBandwidth int

// Opus bandwidth caps.
const (
	OpusFullband      OpusBandwidth = iota // 20 kHz: no cap (default)
	OpusSuperWideband                      // 12 kHz
	OpusWideband                           // 8 kHz: SILK only on speech ("HD voice")
	OpusNarrowband                         // 4 kHz: telephone band
)

// NewEncoder returns an encoder for the named codec.
func NewEncoder(name string, cfg EncoderConfig) (Encoder, error) {
	info, err := LookupCodec(name)
	if err != nil {
		return nil, err
	}
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	switch info.Name {
	case CodecOpus:
		return newOpusEncoder(cfg)
	default:
		return newPCMUEncoder(cfg), nil
	}
}

// NewDecoder returns a decoder for the named codec.
func NewDecoder(name string) (Decoder, error) {
	info, err := LookupCodec(name)
	if err != nil {
		return nil, err
	}
	switch info.Name {
	case CodecOpus:
		return newOpusDecoder()
	default:
		return newPCMUDecoder(), nil
	}
}
