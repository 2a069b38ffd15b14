package media

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// ReceiverConfig configures a Receiver. The zero value is valid.
type ReceiverConfig struct {
	// Codec is the codec name for Push mode (default: the first of
	// Codecs()). NewTrackReceiver takes it from the track instead.
	Codec string
	// FrameMillis is the expected packet duration before the first packet
	// tells (default 20).
	FrameMillis int
	// MinDelay and MaxDelay bound the target jitter-buffer delay: the time
	// the typical packet waits between arrival and playout (defaults 10 ms
	// and 200 ms). The target follows three times the RFC 3550 jitter,
	// grows by the lateness of late packets (decaying 20 ms/s), covers the
	// 99.9th percentile of recent delay peaks (about the last 500 packets,
	// so peaks that recur are held), and adds one frame under loss with an
	// FEC codec.
	MinDelay, MaxDelay time.Duration
	// VAD configures voice activity detection on the received audio.
	VAD VADConfig
	// OnVoice, if set, is called from ReadPCM when the remote party starts
	// or stops talking. It must return quickly.
	OnVoice func(VoiceEvent)
	// OnDTMF, if set, is called once per RFC 4733 DTMF event received
	// (digit 0-9, *, #, A-D, and its duration), from the goroutine that
	// feeds the Receiver (the track reader, or the caller of Push), after
	// its first end packet; the retransmitted end packets do not call it
	// again. It must return quickly.
	OnDTMF func(digit rune, duration time.Duration)
	// OnPacket, if set, sees every audio packet as it arrives, before the
	// jitter buffer (duplicates and late packets included; telephone-event
	// and unknown payload types left out), with the name of the codec it
	// is decoded with (CodecOpus, CodecPCMU), from the goroutine that
	// feeds the Receiver. Recorders that keep the stream as it came hang
	// here. It must return quickly and must not keep p or its payload.
	OnPacket func(p *rtp.Packet, codec string)
	// DTMFPayloadType is the telephone-event payload type in Push mode (0:
	// none). NewTrackReceiver learns it from the negotiated codecs instead.
	DTMFPayloadType uint8
	// DTMFClockRate is the telephone-event clock rate in Push mode
	// (default: the audio codec's).
	DTMFClockRate uint32
	// Now is the clock used to time arrivals and playout (default
	// time.Now); simulations replace it.
	Now func() time.Time
	// Logger receives rare diagnostics (default: discard).
	Logger *slog.Logger
}

// ReceiverStats describes the receive path.
//
// A packet that comes after its play-out time is a late frame, which the
// listener may hear as a glitch. Late counts those dropped: their slot was
// concealed and given up. Underruns counts those the buffer, having run
// dry, waited for and then played, after 10–20 ms of concealment, with the
// delay that much longer from then on. Concealed counts more than these:
// also the concealment of lost packets and the blocks inserted to deepen
// the buffer.
type ReceiverStats struct {
	Received       uint64        // unique packets received (late and telephone-event ones included)
	Bytes          uint64        // payload bytes of those packets
	NonAudio       uint64        // of Received: packets of another payload type (telephone-event…), not played
	DTMFEvents     uint64        // DTMF events reported (OnDTMF calls)
	Lost           int64         // RFC 3550 cumulative lost: expected − received
	Late           uint64        // arrived after their slot was played
	Underruns      uint64        // arrived after their play-out time, and played after a wait
	Duplicate      uint64        // seen before
	Concealed      uint64        // PLC frames/blocks played
	ConcealedAudio time.Duration // audio played in place of packets that were missing: concealment, then silence
	FECRecovered   uint64        // frames rebuilt from in-band FEC
	Discarded      uint64        // dropped to cap the delay after a burst
	Resyncs        uint64        // stream restarts (sequence/timestamp jumps)
	Jitter         float64       // RFC 3550 interarrival jitter, ms
	Delay          time.Duration // average time packets wait in the buffer
	Target         time.Duration // current target delay
	Buffered       time.Duration // audio queued ahead of the play position
	Expanded       time.Duration // audio added by stretching
	Compressed     time.Duration // audio removed by compression
	Adjustments    uint64        // times the buffer set out to change its delay (a stretch or a compression, carried out over one frame or several)
}

// Receiver is the receive path of one call: RTP in (from a remote track's
// read goroutine, or Push), PCM out through ReadPCM, which the playback
// clock pulls and which never blocks. See jitter.go for the buffer policy.
type Receiver struct {
	cfg  ReceiverConfig
	log  *slog.Logger
	now  func() time.Time
	info CodecInfo

	mu      sync.Mutex // guards js, audioPT, dtmf, dtmfN
	js      jitterState
	audioPT int // -1 until the first audio packet
	dtmf    dtmfIn
	dtmfN   uint64

	rmu    sync.Mutex // serialises ReadPCM (decoder and output buffer)
	dec    Decoder
	out    []int16
	outPos int
	tmp    []int16
	vad    *VAD
	level  atomic.Uint64

	track  *webrtc.TrackRemote
	closed atomic.Bool
	done   chan struct{}
}

// NewReceiver returns a Receiver fed by Push.
func NewReceiver(cfg ReceiverConfig) (*Receiver, error) {
	if cfg.Codec == "" {
		cfg.Codec = Codecs()[0].Name
	}
	info, err := LookupCodec(cfg.Codec)
	if err != nil {
		return nil, err
	}
	dec, err := NewDecoder(info.Name)
	if err != nil {
		return nil, err
	}
	if cfg.FrameMillis == 0 {
		cfg.FrameMillis = 20
	}
	if cfg.MinDelay == 0 {
		cfg.MinDelay = 10 * time.Millisecond
	}
	if cfg.MaxDelay == 0 {
		cfg.MaxDelay = 200 * time.Millisecond
	}
	if cfg.MaxDelay < cfg.MinDelay {
		cfg.MaxDelay = cfg.MinDelay
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Receiver{
		cfg: cfg, log: cfg.Logger, now: cfg.Now, info: info, dec: dec,
		out: make([]int16, 0, 5760*2), tmp: make([]int16, 5760*2), vad: NewVAD(cfg.VAD),
	}
	r.level.Store(math.Float64bits(SilenceDBov))
	r.audioPT = -1
	r.js.tick = info.samplesPerTick()
	r.js.clock = float64(info.ClockRate)
	r.js.frameDef = SampleRate * cfg.FrameMillis / 1000
	r.js.seen, r.js.other = new([seenSize]int64), new([seenSize]int64)
	r.js.minDelay, r.js.maxDelay = cfg.MinDelay, cfg.MaxDelay
	r.js.target = cfg.MinDelay
	r.js.fecCapable = info.FEC
	return r, nil
}

// NewTrackReceiver returns a Receiver that reads track in its own goroutine
// until Close (or until the track ends). The codec comes from the track.
//
// Packets of another payload type than the audio codec's are told apart
// with the codec pion reports for them: telephone-event packets are decoded
// as DTMF (see ReceiverConfig.OnDTMF), others are counted and dropped.
func NewTrackReceiver(track *webrtc.TrackRemote, cfg ReceiverConfig) (*Receiver, error) {
	first := track.Codec()
	if !isTelephoneEvent(first.MimeType) {
		cfg.Codec = first.MimeType
	}
	// else the first packet was DTMF: cfg.Codec (or the default) it is,
	// with its payload type learned from the first audio packet.
	cfg.DTMFPayloadType, cfg.DTMFClockRate = 0, 0
	r, err := NewReceiver(cfg)
	if err != nil {
		return nil, err
	}
	if !isTelephoneEvent(first.MimeType) {
		r.audioPT = int(first.PayloadType)
	}
	r.track = track
	r.done = make(chan struct{})
	go r.readLoop()
	return r, nil
}

func (r *Receiver) readLoop() {
	defer close(r.done)
	bad := 0
	// What each payload type is, as pion's negotiated codecs say: the
	// track's Codec() follows the payload type of the packet just read.
	var kinds [128]struct {
		known, dtmf bool
		clock       uint32
	}
	// One buffer and one packet for the whole stream: pion's ReadRTP
	// allocates a receive-MTU buffer and a packet per call, which at 100
	// calls would be most of what the process allocates in steady state,
	// and so most of its garbage collections. push copies what it keeps.
	buf := make([]byte, readBufSize)
	pkt := &rtp.Packet{}
	for {
		n, _, err := r.track.Read(buf)
		if err == nil {
			err = pkt.Unmarshal(buf[:n])
		}
		if err != nil {
			if r.closed.Load() || errors.Is(err, io.EOF) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, io.ErrClosedPipe) {
				return
			}
			// A malformed packet must not stop the call; a dead track must
			// not spin.
			if bad++; bad > 1000 {
				r.log.Warn("media: receiver stops after repeated read errors", "err", err)
				return
			}
			continue
		}
		bad = 0
		r.mu.Lock()
		audioPT := r.audioPT
		r.mu.Unlock()
		pt := pkt.PayloadType & 0x7f
		if int(pt) == audioPT || (audioPT < 0 && !kinds[pt].known && !isTelephoneEvent(r.track.Codec().MimeType)) {
			r.push(pkt, pktAudio, 0)
			continue
		}
		k := &kinds[pt]
		if !k.known {
			if c := r.track.Codec(); c.PayloadType == webrtc.PayloadType(pt) {
				k.known, k.dtmf, k.clock = true, isTelephoneEvent(c.MimeType), c.ClockRate
			}
		}
		if k.dtmf {
			r.push(pkt, pktDTMF, k.clock)
		} else {
			r.push(pkt, pktOther, 0)
		}
	}
}

// readBufSize holds any RTP packet pion delivers (its receive MTU is 1460
// by default).
const readBufSize = 4096

type pktKind int

const (
	pktAudio pktKind = iota
	pktDTMF
	pktOther
)

// Codec returns the codec being decoded.
func (r *Receiver) Codec() CodecInfo { return r.info }

// Push files one RTP packet (the payload is copied; p stays the caller's).
// Packets of ReceiverConfig.DTMFPayloadType are decoded as DTMF; packets of
// another payload type than the first audio packet's are counted (they
// fill their place in the sequence) and otherwise ignored.
func (r *Receiver) Push(p *rtp.Packet) {
	if p == nil {
		return
	}
	switch {
	case r.cfg.DTMFPayloadType != 0 && p.PayloadType == r.cfg.DTMFPayloadType:
		r.push(p, pktDTMF, r.cfg.DTMFClockRate)
	default:
		r.push(p, pktAudio, 0)
	}
}

// push files p as kind (audio packets of an unexpected payload type become
// pktOther).
func (r *Receiver) push(p *rtp.Packet, kind pktKind, dtmfClock uint32) {
	if r.closed.Load() {
		return
	}
	dur := 0
	if kind == pktAudio {
		dur = r.dec.Duration(p.Payload) // pure Go for both codecs: no decoder state used
	}
	if dtmfClock == 0 {
		dtmfClock = r.info.ClockRate
	}
	perTE := float64(r.info.ClockRate) / float64(dtmfClock)
	var evs [2]dtmfEvent
	found := evs[:0]
	r.mu.Lock()
	if kind == pktAudio {
		if r.audioPT < 0 {
			r.audioPT = int(p.PayloadType)
		}
		if int(p.PayloadType) != r.audioPT {
			kind = pktOther
		}
	}
	switch kind {
	case pktAudio:
		r.js.push(p, dur, r.now())
		if ev, ok := r.dtmf.audio(p.Timestamp, perTE, r.info.ClockRate); ok {
			found = append(found, ev)
		}
	case pktDTMF:
		if r.js.pushOther(p) {
			if d, ok := parseDTMF(p.Payload); ok {
				found = r.dtmf.packet(d, p.Timestamp, dtmfClock, perTE, found)
			}
		}
	default:
		r.js.pushOther(p)
	}
	r.dtmfN += uint64(len(found))
	r.mu.Unlock()
	if kind == pktAudio && r.cfg.OnPacket != nil {
		r.cfg.OnPacket(p, r.info.Name)
	}
	if r.cfg.OnDTMF != nil {
		for _, ev := range found {
			r.cfg.OnDTMF(ev.digit, ev.dur)
		}
	}
}

// ReadPCM fills all of p with the next audio: decoded packets, FEC or
// concealment for lost ones, silence before the first packet and in gaps.
// It never blocks on the network. It returns len(p), or ErrClosed.
func (r *Receiver) ReadPCM(p []int16) (int, error) {
	if r.closed.Load() {
		return 0, ErrClosed
	}
	r.rmu.Lock()
	defer r.rmu.Unlock()
	var events [4]VoiceEvent
	nev := 0
	filled := 0
	for filled < len(p) {
		if r.outPos >= len(r.out) {
			if ev, ok := r.produce(); ok && nev < len(events) {
				events[nev] = ev
				nev++
			}
		}
		c := copy(p[filled:], r.out[r.outPos:])
		r.outPos += c
		filled += c
	}
	if r.cfg.OnVoice != nil {
		for _, ev := range events[:nev] {
			r.cfg.OnVoice(ev)
		}
	}
	return len(p), nil
}

// produce refills r.out with the next block of audio.
func (r *Receiver) produce() (VoiceEvent, bool) {
	r.mu.Lock()
	a := r.js.next(r.now(), r.info.FEC)
	r.mu.Unlock()

	buf := r.tmp
	var pcm []int16
	switch a.kind {
	case actDecode:
		n, err := r.dec.Decode(a.payload, buf)
		if err != nil || n == 0 {
			r.log.Debug("media: decode failed; concealing", "err", err)
			n = max(r.js.frameDef, 0)
			_ = r.dec.DecodePLC(buf[:n])
		}
		pcm = buf[:n]
	case actFEC:
		n := min(a.n, len(buf))
		if err := r.dec.DecodeFEC(a.payload, buf[:n]); err != nil {
			_ = r.dec.DecodePLC(buf[:n])
		}
		pcm = buf[:n]
	case actPLC:
		n := min(a.n, len(buf))
		if err := r.dec.DecodePLC(buf[:n]); err != nil {
			clear(buf[:n])
		}
		pcm = buf[:n]
	default:
		n := min(a.n, len(buf))
		clear(buf[:n])
		pcm = buf[:n]
	}
	level := LevelDBov(pcm)
	r.level.Store(math.Float64bits(level))
	ev, changed := r.vad.Process(level, time.Duration(len(pcm))*time.Second/SampleRate)

	r.out = r.out[:0]
	r.outPos = 0
	quiet := level < quietLevel
	if a.kind == actDecode && a.splice != 0 && (quiet || a.urgent) {
		// Delay steering and drift: in a quiet frame up to half of it, in
		// speech (an urgent debt) a small pitch-matched step.
		limit := len(pcm) / 8
		if quiet {
			limit = len(pcm) / 2
		}
		// debt > 0 asks for more audio (insert), splice wants > 0 to remove.
		want := max(-limit, min(-a.splice, limit))
		var done int
		r.out, done = splice(r.out, pcm, want)
		r.mu.Lock()
		r.applySplice(done)
		r.js.quiet = quiet
		r.mu.Unlock()
	} else {
		r.out = append(r.out, pcm...)
		r.mu.Lock()
		r.js.quiet = quiet
		r.mu.Unlock()
	}
	if a.payload != nil {
		r.mu.Lock()
		r.js.release(a.payload)
		r.mu.Unlock()
	}
	if len(r.out) == 0 {
		r.out = append(r.out, 0)
	}
	return ev, changed
}

// applySplice books done samples removed (>0) or inserted (<0).
func (r *Receiver) applySplice(done int) {
	switch {
	case done > 0:
		r.js.compressed += uint64(done)
		r.js.debt = min(r.js.debt+done, 0)
	case done < 0:
		r.js.expanded += uint64(-done)
		r.js.debt = max(r.js.debt+done, 0)
	}
}

// Level returns the level of the last played block in dBov.
func (r *Receiver) Level() float64 { return math.Float64frombits(r.level.Load()) }

// Stats returns the receive statistics.
func (r *Receiver) Stats() ReceiverStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	j := &r.js
	var lost int64
	if j.havePkts {
		lost = (j.maxSeq - j.baseSeq + 1) - int64(j.received)
	}
	return ReceiverStats{
		Received: j.received, Bytes: j.bytes, NonAudio: j.others, DTMFEvents: r.dtmfN, Lost: lost, Late: j.late, Underruns: j.underrun, Duplicate: j.dup,
		Concealed: j.concealed, FECRecovered: j.fec, Discarded: j.discarded, Resyncs: j.resyncs,
		Jitter:         j.jitter / j.clock * 1000,
		Delay:          time.Duration(j.delayEWMA),
		Target:         j.target,
		Buffered:       j.samplesToDur(j.buffered()),
		Expanded:       j.samplesToDur(int64(j.expanded)),
		Compressed:     j.samplesToDur(int64(j.compressed)),
		Adjustments:    j.adjustments,
		ConcealedAudio: j.samplesToDur(int64(j.concealedAudio)),
	}
}

// Close stops the read goroutine (if any) and waits for it. ReadPCM and
// Push do nothing afterwards.
func (r *Receiver) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	if r.track != nil {
		if err := r.track.SetReadDeadline(time.Now()); err != nil {
			return fmt.Errorf("media: stop track reader: %w", err)
		}
		<-r.done
	}
	r.rmu.Lock()
	defer r.rmu.Unlock()
	return r.dec.Close()
}
