//go:build !cgo

package media

// OpusAvailable reports whether this build links libopus (it needs cgo).
const OpusAvailable = false

func newOpusEncoder(EncoderConfig) (Encoder, error) { return nil, ErrUnknownCodec }

func newOpusDecoder() (Decoder, error) { return nil, ErrUnknownCodec }
