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
// preference order. It also registers the RFC 6464 audio-level header
// extension so a [Track] can send levels.
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
	// Complexity 0–10 for Opus (default 9; see the package benchmarks: 10
	// costs about the same on x86 and 5 is slower because it switches to
	// SILK).
	Complexity int
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
		c.Complexity = 9
	}
	return c, nil
}

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
