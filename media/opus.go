//go:build cgo

package media

import (
	"fmt"

	"github.com/hraban/opus"
)

// OpusAvailable reports whether this build links libopus (it needs cgo).
const OpusAvailable = true

type opusEncoder struct {
	enc        *opus.Encoder
	frame      int
	disableFEC bool
	fecOn      bool
	loss       int
}

func newOpusEncoder(cfg EncoderConfig) (*opusEncoder, error) {
	app := opus.AppVoIP
	switch cfg.Application {
	case OpusAudio:
		app = opus.AppAudio
	case OpusLowDelay:
		app = opus.AppRestrictedLowdelay
	}
	bw := opus.Fullband
	switch cfg.MaxBandwidth {
	case OpusSuperWideband:
		bw = opus.SuperWideband
	case OpusWideband:
		bw = opus.Wideband
	case OpusNarrowband:
		bw = opus.Narrowband
	}
	enc, err := opus.NewEncoder(SampleRate, 1, app)
	if err != nil {
		return nil, fmt.Errorf("media: opus encoder: %w", err)
	}
	e := &opusEncoder{enc: enc, frame: SampleRate * cfg.FrameMillis / 1000, disableFEC: cfg.DisableFEC, loss: -1}
	for _, set := range []func() error{
		func() error { return enc.SetBitrate(cfg.Bitrate) },
		func() error { return enc.SetComplexity(cfg.Complexity) },
		func() error { return enc.SetMaxBandwidth(bw) },
		func() error { return enc.SetDTX(cfg.DTX) },
		func() error { return enc.SetInBandFEC(false) },
		func() error { return enc.SetPacketLossPerc(0) },
	} {
		if err := set(); err != nil {
			return nil, fmt.Errorf("media: opus encoder setup: %w", err)
		}
	}
	e.loss = 0
	return e, nil
}

func (e *opusEncoder) Info() CodecInfo { return OpusInfo() }

func (e *opusEncoder) Encode(pcm []int16, out []byte) (int, error) {
	if len(pcm) != e.frame {
		return 0, fmt.Errorf("%w: %d samples, want %d", ErrFrameSize, len(pcm), e.frame)
	}
	n, err := e.enc.Encode(pcm, out)
	if err != nil {
		return 0, fmt.Errorf("media: opus encode: %w", err)
	}
	return n, nil
}

func (e *opusEncoder) SetPacketLoss(pct int) error {
	pct = max(0, min(pct, 100))
	if pct == e.loss {
		return nil
	}
	e.loss = pct
	if err := e.enc.SetPacketLossPerc(pct); err != nil {
		return fmt.Errorf("media: opus loss hint: %w", err)
	}
	fec := pct > 0 && !e.disableFEC
	if fec != e.fecOn {
		if err := e.enc.SetInBandFEC(fec); err != nil {
			return fmt.Errorf("media: opus fec: %w", err)
		}
		e.fecOn = fec
	}
	return nil
}

func (e *opusEncoder) Close() error { return nil }

type opusDecoder struct {
	dec *opus.Decoder
}

func newOpusDecoder() (*opusDecoder, error) {
	dec, err := opus.NewDecoder(SampleRate, 1)
	if err != nil {
		return nil, fmt.Errorf("media: opus decoder: %w", err)
	}
	return &opusDecoder{dec: dec}, nil
}

func (d *opusDecoder) Info() CodecInfo { return OpusInfo() }

func (d *opusDecoder) Decode(payload []byte, pcm []int16) (int, error) {
	n, err := d.dec.Decode(payload, pcm)
	if err != nil {
		return 0, fmt.Errorf("%w: opus: %v", ErrBadPacket, err)
	}
	return n, nil
}

// DecodePLC and DecodeFEC pass pcm with its capacity cut to its length:
// hraban/opus sizes the concealment by cap(pcm), and libopus conceals as
// much audio as it has room for (a 120 ms scratch buffer would conceal
// 120 ms per lost frame, and FEC would play PLC first and land its frame
// past len(pcm)).

func (d *opusDecoder) DecodePLC(pcm []int16) error {
	if err := d.dec.DecodePLC(pcm[:len(pcm):len(pcm)]); err != nil {
		return fmt.Errorf("media: opus plc: %w", err)
	}
	return nil
}

func (d *opusDecoder) DecodeFEC(payload []byte, pcm []int16) error {
	if err := d.dec.DecodeFEC(payload, pcm[:len(pcm):len(pcm)]); err != nil {
		return fmt.Errorf("%w: opus fec: %v", ErrBadPacket, err)
	}
	return nil
}

func (d *opusDecoder) Duration(payload []byte) int { return opusDuration(payload) }

func (d *opusDecoder) Close() error { return nil }
