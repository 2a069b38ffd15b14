package media

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// SenderConfig configures a Sender. The zero value is valid.
type SenderConfig struct {
	// Codec is the codec name used when the writer does not report a
	// negotiated codec (see NegotiatedWriter). Default: the first of Codecs().
	Codec string
	// FrameMillis is the packet duration in ms: 10 or 20 (default 20).
	FrameMillis int
	// Bitrate is the Opus bitrate in bit/s (default 32000).
	Bitrate int
	// Complexity is the Opus complexity 1–10 (default DefaultOpusComplexity).
	Complexity int
	// Application is the Opus application mode (default OpusVoIP).
	Application OpusApplication
	// MaxBandwidth caps the Opus audio bandwidth (default OpusFullband).
	MaxBandwidth OpusBandwidth
	// DisableFEC keeps Opus in-band FEC off even when SetPacketLoss reports loss.
	DisableFEC bool
	// DTX lets Opus stop sending in silence (the receiver plays silence
	// and the next packet carries the marker bit).
	DTX bool
	// AudioLevelID is the RFC 6464 header extension ID to use with writers
	// that do not report one (0: do not send levels).
	AudioLevelID uint8
	// VAD configures voice activity detection on the sent audio.
	VAD VADConfig
	// OnVoice, if set, is called from WritePCM (the capture callback) when
	// voice activity starts or stops. It must return quickly.
	OnVoice func(VoiceEvent)
	// DTMFPayloadType and DTMFClockRate describe telephone-event for writers
	// that do not report a negotiation (a [*Track] does): 0 disables DTMF
	// (SendDTMF returns ErrNoDTMF); the clock rate defaults to the audio
	// codec's.
	DTMFPayloadType uint8
	DTMFClockRate   uint32
	// DTMFGap is the minimum audio between two queued DTMF digits
	// (default 70 ms, the W3C RTCDTMFSender's interToneGap).
	DTMFGap time.Duration
	// Logger receives rare diagnostics (default: discard).
	Logger *slog.Logger
}

// SenderStats counts what a Sender did.
type SenderStats struct {
	Frames      uint64 // frames processed (sent, muted or DTX)
	Packets     uint64 // RTP packets written
	Bytes       uint64 // payload bytes written
	Muted       uint64 // frames not sent because muted
	DTX         uint64 // frames not sent because the encoder was in DTX
	Unbound     uint64 // frames dropped before negotiation completed
	WriteErrors uint64 // failed writes
	DTMFEvents  uint64 // DTMF digits fully sent (end packets included)
	DTMFPackets uint64 // telephone-event packets written (also in Packets and Bytes)
}

// Sender is the send path of one call: PCM in (any chunk size, usually 10 ms
// from the capture callback), RTP out. It frames the audio into 10 or 20 ms,
// applies the mute gate, measures level and voice activity, encodes and
// writes RTP whose timestamps follow the capture clock across mute and DTX
// gaps (the first packet after a gap carries the marker bit).
//
// WritePCM is meant to be called from one goroutine (the device callback);
// the other methods are safe from any goroutine.
type Sender struct {
	w   RTPWriter
	nw  NegotiatedWriter
	mw  MultiCodecWriter
	cfg SenderConfig
	log *slog.Logger

	mu      sync.Mutex // serialises WritePCM (and so the encoder)
	enc     Encoder
	encName string
	frame   []int16
	fill    int
	seq     uint16
	ts      uint32
	gap     bool
	out     []byte
	pkt     rtp.Packet
	extBuf  [1]byte
	vad     *VAD
	lossSet int
	dtmf    dtmfOut
	dtmfBuf [4]byte

	// more holds the send state of each codec in use besides the first
	// (MultiCodecWriter), by codec name.
	more map[string]*codecOut

	lmu     sync.Mutex // guards lossAvg
	lossAvg float64    // smoothed reported loss, percent

	qmu    sync.Mutex // guards dtmfQ, dtmfBusy
	dtmfQ  []dtmfTone
	dtmfOn atomic.Bool // an event is playing (Sender.mu owns dtmf)

	muted  atomic.Bool
	closed atomic.Bool
	level  atomic.Uint64 // float64 bits, dBov of the last frame
	loss   atomic.Int32  // the loss figure the encoder is told (SetPacketLoss)
	talk   atomic.Bool

	frames, packets, bytes, mutedN, dtxN, unbound, werr, dtmfEvents, dtmfPackets atomic.Uint64
}

// codecOut is the send state of a codec in use besides the first one (a
// room whose members negotiated different codecs): its own encoder, RTP
// sequence numbers and timestamps.
type codecOut struct {
	enc     Encoder
	seq     uint16
	ts      uint32
	gap     bool
	lossSet int
}

// NewSender returns a Sender writing to w (usually a [*Track]).
func NewSender(w RTPWriter, cfg SenderConfig) (*Sender, error) {
	if cfg.FrameMillis == 0 {
		cfg.FrameMillis = 20
	}
	if cfg.FrameMillis != 10 && cfg.FrameMillis != 20 {
		return nil, fmt.Errorf("%w: %d ms", ErrFrameSize, cfg.FrameMillis)
	}
	if cfg.Codec == "" {
		cfg.Codec = Codecs()[0].Name
	}
	if _, err := LookupCodec(cfg.Codec); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DTMFGap <= 0 {
		cfg.DTMFGap = 70 * time.Millisecond
	}
	s := &Sender{
		w: w, cfg: cfg, log: cfg.Logger,
		frame: make([]int16, SampleRate*cfg.FrameMillis/1000),
		seq:   uint16(rand.Uint32()), ts: rand.Uint32(),
		out: make([]byte, 1500), vad: NewVAD(cfg.VAD), lossSet: -1,
	}
	s.nw, _ = w.(NegotiatedWriter)
	s.mw, _ = w.(MultiCodecWriter)
	s.level.Store(math.Float64bits(SilenceDBov))
	s.pkt.Version = 2
	return s, nil
}

// SetMuted turns the mute gate on or off. While muted nothing is sent but
// RTP timestamps keep advancing.
func (s *Sender) SetMuted(m bool) { s.muted.Store(m) }

// Muted reports the mute state.
func (s *Sender) Muted() bool { return s.muted.Load() }

// Level returns the level of the last frame in dBov (SilenceDBov while muted).
func (s *Sender) Level() float64 { return math.Float64frombits(s.level.Load()) }

// Talking reports whether voice activity is currently detected.
func (s *Sender) Talking() bool { return s.talk.Load() }

// SetPacketLoss takes the loss rate the far end reports (percent, one
// call per report) and sets the figure the encoder is told from it, from
// the next frame on. The reports are smoothed: the figure follows a rise
// at once and decays by lossDecay per report (about 3 s to halve at one
// report a second), so one clean report on a lossy link does not turn
// Opus's in-band FEC off and leave the next loss unprotected. Opus gets
// FEC (unless DisableFEC) while the smoothed loss is 1 % or more, and is
// told half of it, at most 5 %: the loss it is told sets how many bits
// its FEC takes from the frame itself, and on speech half the loss up to
// 5 % scores best under random and bursty loss alike
// (BenchmarkOpusLossHint). OpusAudio is told the smoothed loss itself.
func (s *Sender) SetPacketLoss(pct int) {
	s.lmu.Lock()
	s.lossAvg = max(float64(max(0, min(pct, 100))), s.lossAvg*lossDecay)
	avg := s.lossAvg
	s.lmu.Unlock()
	hint := lossHint(avg)
	if s.cfg.Application == OpusAudio {
		// OpusAudio codes speech with CELT, which has no FEC, until it
		// is told more than 5 % loss: it gets the smoothed figure itself.
		hint = int(math.Round(avg))
	}
	s.loss.Store(int32(hint))
}

// lossDecay is how much of the smoothed loss is left after a report that
// shows less.
const lossDecay = 0.8

// lossHint is the loss figure the encoder is told for a smoothed reported
// loss (see SetPacketLoss).
func lossHint(avg float64) int {
	if avg < 1 {
		return 0
	}
	return max(1, min(int(math.Round(avg/2)), 5))
}

// Stats returns counters.
func (s *Sender) Stats() SenderStats {
	return SenderStats{
		Frames: s.frames.Load(), Packets: s.packets.Load(), Bytes: s.bytes.Load(),
		Muted: s.mutedN.Load(), DTX: s.dtxN.Load(), Unbound: s.unbound.Load(), WriteErrors: s.werr.Load(),
		DTMFEvents: s.dtmfEvents.Load(), DTMFPackets: s.dtmfPackets.Load(),
	}
}

// Codec returns the codec currently used ("" before the first frame is encoded).
func (s *Sender) Codec() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.encName
}

// Close releases the encoder; later writes return ErrClosed.
func (s *Sender) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, co := range s.more {
		_ = co.enc.Close()
	}
	s.more = nil
	if s.enc != nil {
		return s.enc.Close()
	}
	return nil
}

// WritePCM consumes all of p (48 kHz mono), sending a packet each time a
// frame fills. It returns len(p) and the first write error, if any (writes
// before negotiation completes are dropped silently).
func (s *Sender) WritePCM(p []int16) (int, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	var events [4]VoiceEvent
	nev := 0
	var firstErr error
	s.mu.Lock()
	for off := 0; off < len(p); {
		c := copy(s.frame[s.fill:], p[off:])
		s.fill += c
		off += c
		if s.fill < len(s.frame) {
			break
		}
		s.fill = 0
		ev, changed, err := s.processFrame()
		if changed && nev < len(events) {
			events[nev] = ev
			nev++
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	s.mu.Unlock()
	if s.cfg.OnVoice != nil {
		for _, ev := range events[:nev] {
			s.cfg.OnVoice(ev)
		}
	}
	return len(p), firstErr
}

func (s *Sender) processFrame() (VoiceEvent, bool, error) {
	s.frames.Add(1)
	dur := time.Duration(s.cfg.FrameMillis) * time.Millisecond
	muted := s.muted.Load()
	level := SilenceDBov
	if !muted {
		level = LevelDBov(s.frame)
	}
	s.level.Store(math.Float64bits(level))
	ev, changed := s.vad.Process(level, dur)
	if changed {
		s.talk.Store(ev.Talking)
	}

	codec, extID := s.cfg.Codec, s.cfg.AudioLevelID
	if s.nw != nil {
		neg, ok := s.nw.Negotiated()
		if !ok {
			s.unbound.Add(1)
			s.gap = true
			return ev, changed, nil
		}
		codec, extID = neg.Codec.Name, neg.AudioLevelID
	}
	if err := s.ensureEncoder(codec); err != nil {
		return ev, changed, err
	}
	info := s.enc.Info()
	ts := s.ts
	s.ts += uint32(len(s.frame) / info.samplesPerTick())
	var more []Negotiated
	if s.mw != nil {
		if in := s.mw.NegotiatedCodecs(); len(in) > 1 {
			more = in[1:]
		}
	}
	if sent, err := s.dtmfFrame(ts, info); sent {
		// DTMF replaces this audio frame (also while muted: keypresses
		// are not microphone audio). It goes to the first codec's
		// receivers; the others hear a gap.
		s.sendMore(more, level, true)
		return ev, changed, err
	}
	if muted {
		s.mutedN.Add(1)
		s.gap = true
		s.sendMore(more, level, true)
		return ev, changed, nil
	}
	moreErr := s.sendMore(more, level, false)
	if l := int(s.loss.Load()); l != s.lossSet {
		if err := s.enc.SetPacketLoss(l); err != nil {
			s.log.Warn("media: set packet loss", "err", err)
		}
		s.lossSet = l
	}
	n, err := s.enc.Encode(s.frame, s.out)
	if err != nil {
		return ev, changed, err
	}
	if info.Name == CodecOpus && n <= 2 && s.cfg.DTX {
		s.dtxN.Add(1)
		s.gap = true
		return ev, changed, moreErr
	}
	s.pkt.Header = rtp.Header{
		Version: 2, Marker: s.gap, PayloadType: uint8(info.PayloadType),
		SequenceNumber: s.seq, Timestamp: ts, Extensions: s.pkt.Header.Extensions[:0],
	}
	s.setLevelExtension(extID, level)
	s.pkt.Payload = s.out[:n]
	if err := s.w.WriteRTP(&s.pkt); err != nil {
		if errors.Is(err, ErrNotBound) {
			s.unbound.Add(1)
			return ev, changed, moreErr
		}
		s.werr.Add(1)
		return ev, changed, fmt.Errorf("media: write rtp: %w", err)
	}
	s.seq++
	s.gap = false
	s.packets.Add(1)
	s.bytes.Add(uint64(n))
	return ev, changed, moreErr
}

// sendMore encodes the frame for each codec of more (the codecs in use
// besides the first) and writes each packet to that codec's receivers; or,
// with idle, only moves their timestamps past the frame. Called with s.mu
// held.
func (s *Sender) sendMore(more []Negotiated, level float64, idle bool) error {
	for name, co := range s.more {
		// A codec no receiver uses any more (its member left).
		if !slices.ContainsFunc(more, func(n Negotiated) bool { return n.Codec.Name == name && name != s.encName }) {
			_ = co.enc.Close()
			delete(s.more, name)
		}
	}
	var errs []error
	for _, neg := range more {
		name := neg.Codec.Name
		if name == s.encName {
			continue
		}
		co := s.more[name]
		if co == nil {
			enc, err := s.newEncoder(name)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			co = &codecOut{enc: enc, seq: uint16(rand.Uint32()), ts: rand.Uint32(), gap: true, lossSet: -1}
			if s.more == nil {
				s.more = map[string]*codecOut{}
			}
			s.more[name] = co
		}
		info := co.enc.Info()
		ts := co.ts
		co.ts += uint32(len(s.frame) / info.samplesPerTick())
		if idle {
			co.gap = true
			continue
		}
		if l := int(s.loss.Load()); l != co.lossSet {
			if err := co.enc.SetPacketLoss(l); err != nil {
				s.log.Warn("media: set packet loss", "err", err)
			}
			co.lossSet = l
		}
		n, err := co.enc.Encode(s.frame, s.out)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if info.Name == CodecOpus && n <= 2 && s.cfg.DTX {
			s.dtxN.Add(1)
			co.gap = true
			continue
		}
		s.pkt.Header = rtp.Header{
			Version: 2, Marker: co.gap, PayloadType: uint8(info.PayloadType),
			SequenceNumber: co.seq, Timestamp: ts, Extensions: s.pkt.Header.Extensions[:0],
		}
		s.setLevelExtension(neg.AudioLevelID, level)
		s.pkt.Payload = s.out[:n]
		if err := s.mw.WriteRTPFor(name, &s.pkt); err != nil {
			if errors.Is(err, ErrNotBound) {
				continue
			}
			s.werr.Add(1)
			errs = append(errs, fmt.Errorf("media: write rtp (%s): %w", name, err))
			continue
		}
		co.seq++
		co.gap = false
		s.packets.Add(1)
		s.bytes.Add(uint64(n))
	}
	return errors.Join(errs...)
}

// setLevelExtension puts the RFC 6464 audio level of the frame on s.pkt
// (extension id; 0: none negotiated): −dBov 0..127, V flag from the VAD.
func (s *Sender) setLevelExtension(id uint8, level float64) {
	if id == 0 {
		return
	}
	b := byte(min(127, max(0, int(math.Round(-level)))))
	if s.vad.Talking() {
		b |= 0x80
	}
	s.extBuf[0] = b
	if err := s.pkt.Header.SetExtension(id, s.extBuf[:]); err != nil {
		s.log.Warn("media: audio level extension", "err", err)
	}
}

func (s *Sender) ensureEncoder(codec string) error {
	if s.enc != nil && s.encName == codec {
		return nil
	}
	if s.enc != nil {
		_ = s.enc.Close()
		s.enc = nil
		s.gap = true
	}
	enc, err := s.newEncoder(codec)
	if err != nil {
		return err
	}
	s.enc, s.encName, s.lossSet = enc, codec, -1
	return nil
}

func (s *Sender) newEncoder(codec string) (Encoder, error) {
	return NewEncoder(codec, EncoderConfig{
		FrameMillis: s.cfg.FrameMillis, Bitrate: s.cfg.Bitrate, Complexity: s.cfg.Complexity,
		Application: s.cfg.Application, MaxBandwidth: s.cfg.MaxBandwidth,
		DisableFEC: s.cfg.DisableFEC, DTX: s.cfg.DTX,
	})
}

// maxDTMFQueue bounds the digits SendDTMF may queue.
const maxDTMFQueue = 128

// dtmfTarget returns the telephone-event payload type and clock rate to
// send with, and ErrNotBound / ErrNoDTMF when there is none.
func (s *Sender) dtmfTarget(audioClock uint32) (uint8, uint32, error) {
	if s.nw != nil {
		neg, ok := s.nw.Negotiated()
		if !ok {
			return 0, 0, ErrNotBound
		}
		if neg.DTMF.ClockRate == 0 {
			return 0, 0, ErrNoDTMF
		}
		return uint8(neg.DTMF.PayloadType), neg.DTMF.ClockRate, nil
	}
	if s.cfg.DTMFPayloadType == 0 {
		return 0, 0, ErrNoDTMF
	}
	clock := s.cfg.DTMFClockRate
	if clock == 0 {
		clock = audioClock
	}
	return s.cfg.DTMFPayloadType, clock, nil
}

// SendDTMF queues one RFC 4733 DTMF digit (0-9, *, #, A-D; a-d accepted)
// lasting duration (clamped to [MinDTMFDuration, MaxDTMFDuration]). It
// returns at once; the digit goes out on the next frames WritePCM sends, in
// place of the audio, after the digits queued before it and a DTMFGap of
// audio. It returns ErrNotBound before negotiation, ErrNoDTMF when the far
// end did not negotiate telephone-event, ErrDTMFDigit, ErrDTMFQueueFull or
// ErrClosed.
func (s *Sender) SendDTMF(digit rune, duration time.Duration) error {
	if s.closed.Load() {
		return ErrClosed
	}
	code, err := dtmfCode(digit)
	if err != nil {
		return err
	}
	var clock uint32 = SampleRate
	if c, err := LookupCodec(s.cfg.Codec); err == nil {
		clock = c.ClockRate
	}
	if _, _, err := s.dtmfTarget(clock); err != nil {
		return err
	}
	duration = max(MinDTMFDuration, min(duration, MaxDTMFDuration))
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if len(s.dtmfQ) >= maxDTMFQueue {
		return ErrDTMFQueueFull
	}
	s.dtmfQ = append(s.dtmfQ, dtmfTone{code: code, dur: duration})
	return nil
}

// DTMFPending returns the number of DTMF digits queued or playing.
func (s *Sender) DTMFPending() int {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	n := len(s.dtmfQ)
	if s.dtmfOn.Load() {
		n++
	}
	return n
}

// dtmfFrame plays the DTMF state machine for the frame starting at RTP
// timestamp ts. It reports whether it used the frame (so no audio is sent).
// Called with s.mu held.
func (s *Sender) dtmfFrame(ts uint32, info CodecInfo) (bool, error) {
	o := &s.dtmf
	if !o.active {
		if o.gapLeft > 0 {
			o.gapLeft -= len(s.frame)
			return false, nil
		}
		s.qmu.Lock()
		if len(s.dtmfQ) == 0 {
			s.qmu.Unlock()
			return false, nil
		}
		tone := s.dtmfQ[0]
		s.dtmfQ = s.dtmfQ[1:]
		s.dtmfOn.Store(true)
		s.qmu.Unlock()
		_, teClock, err := s.dtmfTarget(info.ClockRate)
		if err != nil {
			// Renegotiated away since SendDTMF: drop the digit.
			s.dtmfOn.Store(false)
			s.log.Warn("media: DTMF digit dropped", "err", err)
			return false, nil
		}
		*o = dtmfOut{
			active: true, code: tone.code, first: true, segTS: ts, teClock: teClock, rtpClock: info.ClockRate,
			total: uint32(uint64(tone.dur) * uint64(teClock) / uint64(time.Second)),
		}
	}
	pt, _, err := s.dtmfTarget(info.ClockRate)
	if err != nil {
		*o = dtmfOut{}
		s.dtmfOn.Store(false)
		s.gap = true
		return false, nil
	}
	frameTE := uint32(uint64(len(s.frame)) * uint64(o.teClock) / SampleRate)
	p := dtmfPayload{event: o.code, volume: 10}
	segTS := o.segTS
	switch {
	case o.ends > 0: // retransmission of the final packet
		o.ends++
		p.end, p.duration = true, uint16(o.segDur)
	case o.done+o.segDur+frameTE >= o.total:
		o.segDur = o.total - o.done
		o.ends = 1
		p.end, p.duration = true, uint16(o.segDur)
	case o.segDur+frameTE > 0xffff:
		// The 16-bit duration is full: close this segment and start the
		// next one where it ends (RFC 4733 §2.5.1.3).
		p.duration = 0xffff
		o.segDur = o.segDur + frameTE - 0xffff
		o.done += 0xffff
		o.segTS += uint32(uint64(0xffff) * uint64(o.rtpClock) / uint64(o.teClock))
	default:
		o.segDur += frameTE
		p.duration = uint16(o.segDur)
	}
	s.pkt.Header = rtp.Header{
		Version: 2, Marker: o.first, PayloadType: pt,
		SequenceNumber: s.seq, Timestamp: segTS, Extensions: s.pkt.Header.Extensions[:0],
	}
	s.pkt.Payload = p.marshal(s.dtmfBuf[:0])
	if o.ends >= dtmfEndRepeats {
		*o = dtmfOut{gapLeft: SampleRate * int(s.cfg.DTMFGap/time.Millisecond) / 1000}
		s.dtmfOn.Store(false)
		s.dtmfEvents.Add(1)
		s.gap = true
	}
	if err := s.w.WriteRTP(&s.pkt); err != nil {
		if errors.Is(err, ErrNotBound) {
			s.unbound.Add(1)
			return true, nil
		}
		s.werr.Add(1)
		return true, fmt.Errorf("media: write rtp: %w", err)
	}
	o.first = false
	s.seq++
	s.packets.Add(1)
	s.dtmfPackets.Add(1)
	s.bytes.Add(uint64(len(s.pkt.Payload)))
	return true, nil
}
