package call

import (
	"errors"
	"io"
	"math"
	"sync/atomic"
	"time"

	"github.com/dialtone-dev/dialtone/media"
	"github.com/dialtone-dev/dialtone/media/apm"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// Stats is one sample of a call's quality, reported as EventStats every
// Config.StatsInterval while the call is connected.
type Stats struct {
	Time time.Time

	// RTT is the round-trip time: from RTCP receiver reports (LSR/DLSR)
	// when the peer sends them, else from ICE consent checks.
	RTT time.Duration
	// Jitter is the RFC 3550 interarrival jitter of the received stream.
	Jitter time.Duration
	// Loss is the percentage of received-stream packets lost in the last
	// interval, on the network (before FEC recovery).
	Loss float64
	// HeardLoss is the percentage of the received stream's packets the
	// listener missed in the last interval: lost and not rebuilt from FEC,
	// or too late to play. Their audio was concealed. It is what MOS uses.
	HeardLoss float64
	// RemoteLoss is the loss the peer reports for our stream, in percent
	// (RTCP fraction lost). It drives Opus in-band FEC.
	RemoteLoss float64
	// SendBitrate and RecvBitrate are the payload bit rates over the last
	// interval, in bit/s.
	SendBitrate, RecvBitrate float64
	// PacketsSent, PacketsReceived and PacketsLost are totals.
	PacketsSent, PacketsReceived uint64
	PacketsLost                  int64
	// Concealed counts frames filled by packet-loss concealment; FECRecovered
	// frames rebuilt from in-band FEC.
	Concealed, FECRecovered uint64
	// Late counts packets that arrived after their play-out time and were
	// dropped: the jitter buffer was too short for the network (or the
	// process too slow to play them). Underruns counts those that arrived
	// after their play-out time while the emptied buffer waited for them,
	// and played late. Both are glitches a listener may hear.
	Late, Underruns uint64
	// BufferDelay is how long packets wait in the jitter buffer, a moving
	// average over the last few dozen: what the buffer adds to the
	// mouth-to-ear delay (WebRTC's jitterBufferDelay per emitted sample).
	BufferDelay time.Duration
	// ConcealedAudio totals the audio played in place of packets that
	// were missing (WebRTC's concealedSamples, as a duration).
	ConcealedAudio time.Duration
	// Inserted and Removed total the audio the jitter buffer added or
	// took out to change its delay (WebRTC's insertedSamplesForDeceleration
	// and removedSamplesForAcceleration, as durations). Adjustments counts
	// the times it set out to change it.
	Inserted, Removed time.Duration
	Adjustments       uint64
	// Codec is the codec we send with.
	Codec string
	// Processing says which parts of the microphone's processing are on
	// and, with echo cancellation on, how much echo it removes (ERLE).
	Processing apm.Stats
	// MOS is an E-model (ITU-T G.107) estimate of conversational quality,
	// 1–4.5, from HeardLoss and the one-way delay (half the RTT, the jitter
	// buffer's delay and the codec's); see the function MOS for the
	// simplifications.
	MOS float64
}

// opusLookahead is the Opus encoder's algorithmic delay at 48 kHz
// (RFC 6716: 2.5 ms in CELT mode, 6.5 ms with SILK, which voice uses).
const opusLookahead = 6500 * time.Microsecond

// codecDelay is what a codec adds to the mouth-to-ear delay: one frame of
// packetisation, plus Opus's look-ahead. PCMU encodes each sample on its
// own and adds nothing more.
func codecDelay(codec string, frame time.Duration) time.Duration {
	if codec == media.CodecOpus {
		return frame + opusLookahead
	}
	return frame
}

// heardLoss is the percentage of the packets expected between two samples
// that the listener missed: lost and not rebuilt from in-band FEC, or late.
// The E-model's packet loss is what the listener lost, not what the network
// did: a frame FEC rebuilt was heard.
func heardLoss(prev, cur Stats) float64 {
	// Counters start again from zero when a new receiver replaces the old
	// one: no figure for that interval.
	if cur.PacketsReceived < prev.PacketsReceived || cur.FECRecovered < prev.FECRecovered || cur.Late < prev.Late {
		return 0
	}
	lost := float64(cur.PacketsLost - prev.PacketsLost)
	expected := float64(cur.PacketsReceived-prev.PacketsReceived) + lost
	if expected <= 0 {
		return 0
	}
	missed := lost - float64(cur.FECRecovered-prev.FECRecovered) + float64(cur.Late-prev.Late)
	return math.Max(0, math.Min(100, 100*missed/expected))
}

// estimateMOS is the MOS of a sample: the E-model fed with the loss the
// listener heard and the mouth-to-ear delay of the codec in use.
func estimateMOS(st Stats, frame time.Duration) float64 {
	oneWay := st.RTT/2 + st.BufferDelay + codecDelay(st.Codec, frame)
	return MOS(float64(oneWay)/float64(time.Millisecond), st.HeardLoss)
}

// rtcpState is what the RTCP reader learned, read by the stats sampler.
type rtcpState struct {
	rttNanos   atomic.Int64
	remoteLoss atomic.Uint32 // fraction lost ×256, from the last RR
}

// readRTCP drains the sender's RTCP (pion's interceptors need it read) and
// takes RTT and the peer's loss report from receiver reports.
func (s *session) readRTCP(sender *webrtc.RTPSender, ssrc func() uint32) {
	defer close(s.rtcpDone)
	// One buffer for the stream: ReadRTCP would allocate a receive-MTU
	// buffer per compound packet.
	buf := make([]byte, 1500)
	for {
		n, _, err := sender.Read(buf)
		if errors.Is(err, io.ErrShortBuffer) {
			continue // larger than any report: not one we read
		}
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue // a malformed compound packet: skip it, keep reading
		}
		for _, p := range pkts {
			rr, ok := p.(*rtcp.ReceiverReport)
			if !ok {
				continue
			}
			for _, rep := range rr.Reports {
				if rep.SSRC != ssrc() {
					continue
				}
				s.rtcp.remoteLoss.Store(uint32(rep.FractionLost))
				pct := int(rep.FractionLost) * 100 / 256
				if s.onLoss != nil {
					s.onLoss(pct)
				} else if s.sender != nil {
					s.sender.SetPacketLoss(pct)
				}
				if rep.LastSenderReport != 0 {
					now := ntpMiddle(time.Now())
					rtt := now - rep.LastSenderReport - rep.Delay
					if int32(rtt) > 0 {
						s.rtcp.rttNanos.Store(int64(rtt) * int64(time.Second) / 65536)
					}
				}
			}
		}
	}
}

// ntpMiddle is the middle 32 bits of the NTP timestamp of t (RFC 3550 LSR).
func ntpMiddle(t time.Time) uint32 {
	const ntpEpochOffset = 2208988800
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return uint32((secs<<32 | frac) >> 16)
}

// sampleStats takes one stats sample and reports it.
func (c *Call) sampleStats() {
	s := c.media
	if s == nil {
		return
	}
	st := s.sample(s.sender, time.Duration(c.cfg.Codec.FrameMillis)*time.Millisecond)
	if c.audio != nil {
		st.Processing = c.audio.proc.Stats()
	}
	c.mu.Lock()
	c.stats = st
	c.mu.Unlock()
	c.emit(Event{Kind: EventStats, Stats: st})
}

// sample takes one stats sample of the session, whose stream is sent by
// sender (the call's own, or a room's shared one). It is called from the
// owner's actor only.
func (s *session) sample(sender *media.Sender, frame time.Duration) Stats {
	now := time.Now()
	st := Stats{Time: now}
	ss := sender.Stats()
	st.PacketsSent = ss.Packets
	st.Codec = sender.Codec()
	s.mu.Lock()
	var recvPackets, recvBytes uint64
	if n := len(s.recvs); n > 0 {
		rs := s.recvs[n-1].Stats()
		recvPackets = rs.Received
		st.PacketsReceived = rs.Received
		st.PacketsLost = rs.Lost
		st.Concealed = rs.Concealed
		st.Late, st.Underruns = rs.Late, rs.Underruns
		st.FECRecovered = rs.FECRecovered
		st.Jitter = time.Duration(rs.Jitter * float64(time.Millisecond))
		st.BufferDelay = rs.Delay
		st.Inserted, st.Removed, st.Adjustments = rs.Expanded, rs.Compressed, rs.Adjustments
		st.ConcealedAudio = rs.ConcealedAudio
		recvBytes = rs.Bytes
	}
	s.mu.Unlock()
	pairRTT := consentRTT(s.pc)

	prev := s.prevStats
	if !prev.Time.IsZero() {
		dt := now.Sub(prev.Time).Seconds()
		if dt > 0 {
			st.SendBitrate = float64(ss.Bytes-s.prevSentBytes) * 8 / dt
			st.RecvBitrate = float64(recvBytes-s.prevRecvBytes) * 8 / dt
		}
		expected := float64(recvPackets-prev.PacketsReceived) + float64(st.PacketsLost-prev.PacketsLost)
		if expected > 0 {
			st.Loss = math.Max(0, 100*float64(st.PacketsLost-prev.PacketsLost)/expected)
		}
		st.HeardLoss = heardLoss(prev, st)
	}
	s.prevSentBytes, s.prevRecvBytes = ss.Bytes, recvBytes
	st.RemoteLoss = float64(s.rtcp.remoteLoss.Load()) * 100 / 256
	st.RTT = time.Duration(s.rtcp.rttNanos.Load())
	if st.RTT == 0 {
		st.RTT = pairRTT
	}
	st.MOS = estimateMOS(st, frame)
	s.prevStats = st
	return st
}

// consentRTT is the selected candidate pair's round-trip time from ICE
// consent checks (0 before one is known). It asks the ICE transport, not
// PeerConnection.GetStats: pion's GetStats reads a field its Close writes
// without a lock, and pion closes a PeerConnection by itself when the peer's
// DTLS closes, so a stats sample could race with it.
func consentRTT(pc *webrtc.PeerConnection) time.Duration {
	sctp := pc.SCTP()
	if sctp == nil {
		return 0
	}
	dtls := sctp.Transport()
	if dtls == nil {
		return 0
	}
	ice := dtls.ICETransport()
	if ice == nil {
		return 0
	}
	st, ok := ice.GetSelectedCandidatePairStats()
	if !ok || st.CurrentRoundTripTime <= 0 {
		return 0
	}
	return time.Duration(st.CurrentRoundTripTime * float64(time.Second))
}
