package media

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
)

// DTMF (RFC 4733 telephone-event).
//
// Send side: [Sender.SendDTMF] queues a digit; the capture clock (WritePCM)
// plays it out. For every frame of the event the Sender writes one
// telephone-event packet instead of the audio frame (audio is suppressed
// while an event plays, as libwebrtc does: a receiver that does not
// understand telephone-event hears a short silence rather than a mix). The
// packets share the audio's SSRC and sequence numbers; all packets of an
// event carry the RTP timestamp of the frame the event started in, the first
// one has the marker bit, the duration field grows by one frame per packet,
// and the last packet (end bit set, final duration) is sent three times, on
// three consecutive frames. Events longer than the 16-bit duration field
// allows are split into segments (RFC 4733 §2.5.1.3). After an event the
// audio resumes (its first packet has the marker bit) for at least
// SenderConfig.DTMFGap before the next queued digit.
//
// Receive side: packets of the telephone-event payload type never reach the
// jitter buffer or the decoder; their sequence numbers count as received (so
// the gaps they leave in the audio sequence are neither loss nor
// concealment); each event is reported once through ReceiverConfig.OnDTMF,
// when its first end packet arrives (the retransmissions are ignored), or,
// if all end packets are lost, when a newer event or audio well past its
// last reported duration arrives.

// MimeTypeTelephoneEvent is the MIME type of RFC 4733 named telephone events.
const MimeTypeTelephoneEvent = "audio/telephone-event"

// CodecTelephoneEvent is the codec name of RFC 4733 telephone events.
const CodecTelephoneEvent = "telephone-event"

// Payload types we offer for telephone-event (the far end's choice wins in
// an answer; these are the ones browsers use too).
const (
	dtmfPT8k  = 126
	dtmfPT48k = 110
)

// TelephoneEventInfo describes RFC 4733 telephone-event at the given clock
// rate (8000 to pair with PCMU, 48000 to pair with Opus), offering the
// events 0–15 (the DTMF digits).
func TelephoneEventInfo(clockRate uint32) CodecInfo {
	pt := webrtc.PayloadType(dtmfPT8k)
	if clockRate == 48000 {
		pt = dtmfPT48k
	}
	return CodecInfo{
		Name: CodecTelephoneEvent, MimeType: MimeTypeTelephoneEvent, ClockRate: clockRate,
		PayloadType: pt, SDPFmtpLine: "0-15",
	}
}

func isTelephoneEvent(mime string) bool { return strings.EqualFold(mime, MimeTypeTelephoneEvent) }

// DTMF duration limits applied by SendDTMF (the W3C RTCDTMFSender's).
const (
	MinDTMFDuration = 40 * time.Millisecond
	MaxDTMFDuration = 6 * time.Second
)

const dtmfEndRepeats = 3

// dtmfCode maps a digit (0-9 * # A-D, letters in either case) to its RFC
// 4733 event code.
func dtmfCode(d rune) (uint8, error) {
	switch {
	case d >= '0' && d <= '9':
		return uint8(d - '0'), nil
	case d == '*':
		return 10, nil
	case d == '#':
		return 11, nil
	case d >= 'A' && d <= 'D':
		return uint8(12 + d - 'A'), nil
	case d >= 'a' && d <= 'd':
		return uint8(12 + d - 'a'), nil
	}
	return 0, fmt.Errorf("%w: %q", ErrDTMFDigit, d)
}

// dtmfDigit is the inverse of dtmfCode (0 for codes above 15).
func dtmfDigit(code uint8) rune {
	switch {
	case code <= 9:
		return rune('0' + code)
	case code == 10:
		return '*'
	case code == 11:
		return '#'
	case code <= 15:
		return rune('A' + code - 12)
	}
	return 0
}

// dtmfPayload is one RFC 4733 event payload.
type dtmfPayload struct {
	event    uint8
	end      bool
	volume   uint8 // 0–63, −dBm0
	duration uint16
}

func (d dtmfPayload) marshal(b []byte) []byte {
	b = append(b[:0], d.event, d.volume&0x3f, 0, 0)
	if d.end {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], d.duration)
	return b
}

func parseDTMF(b []byte) (dtmfPayload, bool) {
	if len(b) < 4 {
		return dtmfPayload{}, false
	}
	return dtmfPayload{event: b[0], end: b[1]&0x80 != 0, volume: b[1] & 0x3f, duration: binary.BigEndian.Uint16(b[2:])}, true
}

// dtmfTone is one queued digit.
type dtmfTone struct {
	code uint8
	dur  time.Duration
}

// dtmfOut is the send-side state of the event being played (Sender.mu).
type dtmfOut struct {
	active   bool
	code     uint8
	total    uint32 // event duration, telephone-event clock units
	done     uint32 // units already covered by finished segments
	segTS    uint32 // RTP timestamp of the current segment
	segDur   uint32 // duration of the current segment so far
	ends     int    // end packets sent
	gapLeft  int    // 48 kHz samples of audio still due before the next digit
	first    bool   // next packet is the event's first (marker)
	teClock  uint32
	rtpClock uint32
}

// dtmfIn detects events on the receive side (Receiver.mu).
type dtmfIn struct {
	active   bool
	reported bool
	code     uint8
	startTS  uint32
	segTS    uint32
	segDur   uint32 // largest duration seen in the current segment
	done     uint32 // units of finished segments
	clock    uint32 // telephone-event clock rate
	lastEnd  uint32 // start timestamp of the last reported event
	haveLast bool
}

// dtmfEvent is a detected event waiting to be delivered.
type dtmfEvent struct {
	digit rune
	dur   time.Duration
}

func (d *dtmfIn) finish() dtmfEvent {
	d.reported = true
	d.lastEnd, d.haveLast = d.startTS, true
	units := uint64(d.done) + uint64(d.segDur)
	return dtmfEvent{digit: dtmfDigit(d.code), dur: time.Duration(units * uint64(time.Second) / uint64(max(d.clock, 1)))}
}

// packet handles one telephone-event packet (timestamp ts in RTP units of
// the stream, audioPerTE RTP units per telephone-event unit) and returns up
// to two finished events.
func (d *dtmfIn) packet(p dtmfPayload, ts uint32, clock uint32, audioPerTE float64, out []dtmfEvent) []dtmfEvent {
	if p.event > 15 {
		return out
	}
	d.clock = clock
	switch {
	case d.active && ts == d.segTS:
		if d.reported || p.event != d.code {
			return out // retransmitted end packet (or nonsense)
		}
	case d.active && !d.reported && p.event == d.code && d.segDur >= 0xffff-uint32(clock/50) &&
		int32(ts-(d.segTS+uint32(float64(d.segDur)*audioPerTE))) <= int32(float64(clock/10)*audioPerTE) &&
		int32(ts-d.segTS) > 0:
		// The next segment of a long event.
		d.done += d.segDur
		d.segTS, d.segDur = ts, 0
	case d.active && int32(ts-d.segTS) < 0, d.haveLast && ts == d.lastEnd:
		return out // a stale packet of an earlier event
	default:
		if d.active && !d.reported {
			out = append(out, d.finish()) // its end packets were all lost
		}
		*d = dtmfIn{active: true, code: p.event, startTS: ts, segTS: ts, clock: clock, lastEnd: d.lastEnd, haveLast: d.haveLast}
	}
	d.segDur = max(d.segDur, uint32(p.duration))
	if p.end {
		out = append(out, d.finish())
	}
	return out
}

// audio tells the detector an audio packet with timestamp ts arrived: an
// unfinished event whose updates stopped long before (all its end packets
// lost) is reported.
func (d *dtmfIn) audio(ts uint32, audioPerTE float64, rtpClock uint32) (dtmfEvent, bool) {
	if !d.active || d.reported {
		return dtmfEvent{}, false
	}
	end := d.segTS + uint32(float64(d.segDur)*audioPerTE)
	if int32(ts-end) > int32(rtpClock/4) { // 250 ms of audio after the last update
		return d.finish(), true
	}
	return dtmfEvent{}, false
}
