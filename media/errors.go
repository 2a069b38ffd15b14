package media

import "errors"

var (
	// ErrUnknownCodec is returned for a codec name or MIME type this build
	// cannot encode or decode (for example Opus in a CGO_ENABLED=0 build).
	ErrUnknownCodec = errors.New("media: unknown or unavailable codec")
	// ErrFrameSize is returned when a frame duration or a PCM frame length
	// is not one the codec supports (10 ms and 20 ms at 48 kHz).
	ErrFrameSize = errors.New("media: unsupported frame size")
	// ErrNoFEC is returned by Decoder.DecodeFEC for codecs without in-band FEC.
	ErrNoFEC = errors.New("media: codec has no in-band FEC")
	// ErrClosed is returned by methods of a closed Sender, Receiver or sink.
	ErrClosed = errors.New("media: closed")
	// ErrNotBound is returned when a Track has no negotiated codec yet.
	ErrNotBound = errors.New("media: track not bound to a negotiated codec")
	// ErrUnsupportedWAV is returned for WAV files that are not 16-bit PCM.
	ErrUnsupportedWAV = errors.New("media: unsupported WAV format (need 16-bit PCM)")
	// ErrBadPacket is returned for an RTP payload the decoder rejects.
	ErrBadPacket = errors.New("media: malformed packet")
	// ErrNoDTMF is returned by Sender.SendDTMF when telephone-event was not
	// negotiated (or, for writers that do not negotiate, no
	// SenderConfig.DTMFPayloadType is set).
	ErrNoDTMF = errors.New("media: telephone-event (DTMF) not negotiated")
	// ErrDTMFDigit is returned by Sender.SendDTMF for a rune that is not a
	// DTMF digit (0-9, *, #, A-D).
	ErrDTMFDigit = errors.New("media: not a DTMF digit")
	// ErrDTMFQueueFull is returned by Sender.SendDTMF when too many digits
	// are already waiting to be sent.
	ErrDTMFQueueFull = errors.New("media: DTMF queue full")
)
