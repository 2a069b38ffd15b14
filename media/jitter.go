package media

import (
	"slices"
	"time"

	"github.com/pion/rtp"
)

// The jitter buffer keeps packets on the sender's timeline in 48 kHz sample
// units (extended, so sequence numbers and timestamps never wrap) and plays
// that timeline at the playback clock. When the packet due is missing and
// nothing after it has come, the buffer first waits for it (up to holdMax,
// concealing without moving the timeline); a packet that arrives after its
// slot was given up and concealed is late and dropped. The controlled
// quantity is the slack: how long a packet waited between its arrival and
// the moment it played. The median of each window's slack (half a second)
// is steered towards the target delay, which follows the RFC 3550 jitter
// and grows at once by the lateness of a late packet (then decays); the
// steering removes or adds audio in small crossfaded steps (larger in
// quiet frames and in silence), which also absorbs clock drift between
// the two ends.

type jpacket struct {
	seq     int64
	ts      int64 // 48 kHz units
	dur     int   // 48 kHz samples, 0 if unknown
	arrival time.Time
	payload []byte
}

type actionKind int

const (
	actSilence actionKind = iota
	actDecode
	actFEC
	actPLC
)

// action is what the locked jitter logic tells the decoder side to do.
type action struct {
	kind    actionKind
	n       int    // samples for silence/PLC/FEC
	payload []byte // decode: owned by the action; FEC: a copy
	splice  int    // samples to insert (>0) or remove (<0) after decoding
	urgent  bool   // splice even if the frame is not quiet (jitterState.urgent)
}

const (
	seenSize  = 2048
	windowLen = time.Second
	maxPLCRun = 100 * time.Millisecond
	// maxPLC is maxPLCRun in samples: the longest concealment before silence.
	maxPLC     = int(maxPLCRun * SampleRate / time.Second)
	stepChunk  = 480 // 10 ms: unit of silence, PLC holds and gap skips
	resyncSeq  = 3000
	resyncTime = 10 * time.Second

	relBuckets = 250   // 1 ms each
	relForget  = 0.998 // per packet: about 10 s at 50 packets/s
	relStartup = 50    // packets before the histogram starts over (see recordRelDelay)
	relTail    = 0.001 // the share of packets allowed above the quantile (see relDelayQuantiles)
	// relBurst: a packet arriving within this of the one before with less
	// delay is the tail of a burst, packets that queued behind the first
	// one of a stall; only the first is filed (see recordRelDelay).
	relBurst = 2 * time.Millisecond
	// The peaks' part of the target is a quantile of the relative delay
	// plus a margin, for the play-out granularity (10 ms pulls) and peaks
	// a little above the recent ones; it applies once the quantile reaches
	// half of MinDelay (see peakTargets), so a quiet link's delay does not
	// change with it. Two levels, each held for a while after the
	// quantile has dropped:
	//   - any peak, even one alone (a one-off stall): relMarginOnce over
	//     the quantile, held relHoldOnce;
	//   - peaks that recur (at least two in the histogram's memory, see
	//     relDelayQuantiles): relMargin, held relHold.
	// Recurring peaks (a busy process) get the larger margin: it removes
	// almost every underrun for about 10 ms more buffer. A one-off stall
	// gets the smaller one: with 20 ms and its hold, the target (the stall
	// plus the margin) would stay up for many seconds after a single
	// stall and add that much mouth-to-ear delay for nothing.
	relMarginOnce = 10 * time.Millisecond
	relMargin     = 20 * time.Millisecond
	// The quantile forgets an isolated peak after about 7 s (at 20 ms
	// frames; up to 10 s while the histogram fills), a pair of peaks 10 s
	// apart after about 3 s; the holds keep peaks that recur at that pace
	// from moving the target between them, and after a one-off stall the
	// delay comes back 12–15 s later. Longer holds keep a stall's target
	// up for much longer than the stall's effect lasts.
	relHoldOnce = 5 * time.Second
	relHold     = 10 * time.Second
	floorLeak   = 0.010 // s/s: the floor rises at most 10 ms per second

	// The target falls only once what the link needs has stayed at least
	// targetFallStep lower for targetFallHold, or lower at all for
	// targetSettleHold (see updateTarget); the window median steers
	// to it when it strays more than steerBand. Adjustments other than
	// stretches for late packets wait for a quiet frame (quietLevel) up
	// to debtPatience.
	targetFallStep   = 10 * time.Millisecond
	targetFallHold   = 2 * time.Second
	targetSettleHold = 10 * time.Second
	steerBand        = 8 * time.Millisecond
	debtPatience     = 2 * time.Second
	quietLevel       = -45.0 // dBov
	// Under loss above fecOn (a share of packets) the target holds a frame
	// more for FEC, until the loss falls under fecOff.
	fecOn, fecOff = 0.015, 0.005

	// holdMax is how long an underrun waits for the packet that is due
	// (concealing without moving the timeline) before giving its slot up.
	holdMax = 2 * stepChunk
)

type jitterState struct {
	// stream bookkeeping
	havePkts bool
	baseSeq  int64
	maxSeq   int64
	maxTS    int64 // codec units, extended
	tick     int   // 48 kHz samples per RTP tick
	// seen and other are allocated apart from the struct (NewReceiver):
	// 32 KB without pointers, which inside it would lie between pointer
	// fields and so be walked by every garbage collection, per receiver;
	// apart, the collector skips them (a sizeable share of its mark work
	// at 100 calls).
	seen     *[seenSize]int64
	other    *[seenSize]int64 // sequence numbers of non-audio packets (DTMF…)
	received uint64
	bytes    uint64
	others   uint64
	dup      uint64
	late     uint64
	underrun uint64 // packets an underrun waited for, played late
	resyncs  uint64

	// jitter (RFC 3550), in RTP clock units
	lastTransit float64
	// delay peaks: each packet's transit above a floor that follows the
	// fastest packets (leaking upward so clock drift cannot inflate it),
	// in a histogram that forgets (see relDelayQuantiles)
	floor       float64 // seconds
	floorAt     time.Time
	relHist     [relBuckets]float64
	relTotal    float64
	relWeight   float64 // weight of the next packet: grows instead of old ones shrinking
	relCount    int
	relSettled  bool          // the start-up packets have been forgotten
	relPrevAt   time.Time     // arrival of the packet before (burst detection)
	relPrev     time.Duration // its delay above the floor
	peakOnce    heldLevel     // the peaks' part of the target, any peak (peakTargets)
	peakRecur   heldLevel     // the same for recurring peaks
	haveTransit bool
	jitter      float64
	clock       float64

	packets []jpacket // by sequence number; values, so a packet costs no allocation
	free    [][]byte

	// playout
	started  bool
	playPos  int64
	nextSeq  int64
	lastDur  int
	plcRun   int
	holdRun  int  // samples concealed in the current underrun without moving the timeline
	holdDone bool // the current underrun has had its wait
	frameDef int

	// control
	minDelay, maxDelay time.Duration
	lateBoost          time.Duration
	lastBoostDecay     time.Time
	target             time.Duration
	winMin             time.Duration
	winHave            bool
	winSlack           []time.Duration
	winAudio           int
	lowSince           time.Time        // since when the need has been under the target
	stepSince          time.Time        // since when it has been targetFallStep under it
	needMax            [2]time.Duration // the highest need in this block of targetFallHold and the one before
	needBlockAt        time.Time        // when this block began
	debt               int              // >0: add samples (stretch), <0: remove (compress)
	debtSince          time.Time        // when the pending debt was set
	stray              time.Duration    // the last window's median slack minus the target, if beyond steerBand
	debtUrgent         bool             // the debt is a stretch for a late packet
	quiet              bool             // the last frame played was quiet (set by the Receiver)
	lossy              bool             // loss is high enough to hold a frame for FEC
	delayEWMA          float64
	lossEWMA           float64 // recent fraction of packets missing
	fecCapable         bool

	concealed, fec, expanded, compressed, discarded uint64
	adjustments                                     uint64
	concealedAudio                                  uint64 // samples played by conceal
}

func (j *jitterState) extend(p *rtp.Packet) (seq, ts int64) {
	seq = j.maxSeq + int64(int16(p.SequenceNumber-uint16(j.maxSeq)))
	ts = j.maxTS + int64(int32(p.Timestamp-uint32(j.maxTS)))
	return seq, ts
}

func (j *jitterState) reset() {
	for _, p := range j.packets {
		j.release(p.payload)
	}
	clear(j.packets)
	j.packets = j.packets[:0]
	j.havePkts, j.started, j.haveTransit = false, false, false
	j.debt, j.stray, j.winHave, j.winAudio, j.winSlack = 0, 0, false, 0, j.winSlack[:0]
	j.holdRun, j.holdDone = 0, false
	j.floorAt, j.relHist, j.relTotal, j.relWeight, j.relCount = time.Time{}, [relBuckets]float64{}, 0, 0, 0
	j.relSettled, j.peakOnce, j.peakRecur, j.relPrevAt = false, heldLevel{}, heldLevel{}, time.Time{}
}

func (j *jitterState) alloc(n int) []byte {
	if k := len(j.free); k > 0 {
		b := j.free[k-1]
		j.free = j.free[:k-1]
		if cap(b) >= n {
			return b[:n]
		}
	}
	return make([]byte, n, max(n, 1500))
}

// pop removes the first packet. It moves the rest down rather than
// reslicing, so the slice keeps its capacity and appends stay free of
// allocation; the buffer holds a few dozen packets at most.
func (j *jitterState) pop() jpacket {
	p := j.packets[0]
	n := copy(j.packets, j.packets[1:])
	j.packets[n] = jpacket{}
	j.packets = j.packets[:n]
	return p
}

func (j *jitterState) release(b []byte) {
	if b != nil && len(j.free) < 64 {
		j.free = append(j.free, b[:0])
	}
}

func (j *jitterState) samplesToDur(n int64) time.Duration {
	return time.Duration(n) * time.Second / SampleRate
}

func (j *jitterState) init(p *rtp.Packet) {
	j.havePkts = true
	j.baseSeq, j.maxSeq, j.maxTS = int64(p.SequenceNumber), int64(p.SequenceNumber), int64(p.Timestamp)
	for i := range j.seen {
		j.seen[i] = -1
		j.other[i] = -1
	}
}

// pushOther books a packet of the audio stream's SSRC that is not audio (a
// telephone-event packet): its sequence number counts as received, so the
// gap it leaves among the audio packets is neither loss nor a reason to
// conceal, but it never enters the buffer and its timestamp (an event's
// start, repeated) feeds neither the jitter estimate nor the timeline. It
// reports false for a duplicate.
func (j *jitterState) pushOther(p *rtp.Packet) bool {
	if !j.havePkts {
		j.init(p)
	}
	seq := j.maxSeq + int64(int16(p.SequenceNumber-uint16(j.maxSeq)))
	if d := seq - j.maxSeq; d > resyncSeq || d < -resyncSeq {
		j.resyncs++
		j.reset()
		return j.pushOther(p)
	}
	slot := &j.seen[seq&(seenSize-1)]
	if *slot == seq {
		j.dup++
		return false
	}
	*slot = seq
	j.other[seq&(seenSize-1)] = seq
	j.received++
	j.others++
	j.bytes += uint64(len(p.Payload))
	if seq > j.maxSeq {
		j.lossEWMA = j.lossEWMA*0.99 + 0.01*float64(min(seq-j.maxSeq-1, 50))
		j.maxSeq = seq
	}
	return true
}

// skipOther moves the next expected audio sequence number past non-audio
// packets.
func (j *jitterState) skipOther() {
	for j.other[j.nextSeq&(seenSize-1)] == j.nextSeq {
		j.nextSeq++
	}
}

// push files one packet. dur is its duration in 48 kHz samples (0 unknown).
func (j *jitterState) push(p *rtp.Packet, dur int, now time.Time) {
	if !j.havePkts {
		j.havePkts = true
		j.init(p)
	}
	seq, ts := j.extend(p)
	if d := seq - j.maxSeq; d > resyncSeq || d < -resyncSeq ||
		j.samplesToDur((ts-j.maxTS)*int64(j.tick)) > resyncTime || j.samplesToDur((j.maxTS-ts)*int64(j.tick)) > resyncTime {
		// A new stream (SSRC change, sender restart): start over.
		j.resyncs++
		j.reset()
		j.push(p, dur, now)
		return
	}
	slot := &j.seen[seq&(seenSize-1)]
	if *slot == seq {
		j.dup++
		return
	}
	*slot = seq
	j.received++
	j.bytes += uint64(len(p.Payload))
	if seq > j.maxSeq {
		j.lossEWMA = j.lossEWMA*0.99 + 0.01*float64(min(seq-j.maxSeq-1, 50))
		j.maxSeq = seq
	}
	if ts > j.maxTS {
		j.maxTS = ts
	}

	// RFC 3550 §6.4.1 interarrival jitter.
	arr := float64(now.UnixNano()) * j.clock / 1e9
	transit := arr - float64(ts)
	if j.haveTransit {
		d := transit - j.lastTransit
		if d < 0 {
			d = -d
		}
		j.jitter += (d - j.jitter) / 16
	}
	j.lastTransit, j.haveTransit = transit, true
	j.recordRelDelay(transit/j.clock, now)

	ts48 := ts * int64(j.tick)
	if j.holdRun > 0 && ts48 == j.playPos {
		// The packet an underrun waited for: it plays, and the target
		// keeps the delay it came with.
		j.underrun++
		j.raiseBoost(j.samplesToDur(int64(j.holdRun)))
	}
	if j.started && (seq < j.nextSeq || ts48 < j.playPos) {
		// Its slot has been played (concealed): too late.
		j.late++
		if seq >= j.nextSeq {
			j.nextSeq = seq + 1
		}
		lateness := j.samplesToDur(j.playPos - ts48)
		j.onLate(lateness, now)
		return
	}
	jp := jpacket{seq: seq, ts: ts48, dur: dur, arrival: now, payload: j.alloc(len(p.Payload))}
	copy(jp.payload, p.Payload)
	i := len(j.packets)
	for i > 0 && j.packets[i-1].seq > seq {
		i--
	}
	j.packets = slices.Insert(j.packets, i, jp)

	// Far more audio than the maximum delay (a burst after a stall): jump.
	if j.started {
		last := j.packets[len(j.packets)-1]
		ahead := last.ts + int64(max(last.dur, j.frameDef)) - j.playPos
		if j.samplesToDur(ahead) > j.maxDelay+100*time.Millisecond {
			newPos := last.ts - int64(j.target*SampleRate/time.Second)
			for len(j.packets) > 1 && j.packets[0].ts < newPos {
				j.discarded++
				j.release(j.pop().payload)
			}
			j.playPos = j.packets[0].ts
			j.nextSeq = j.packets[0].seq
			j.debt = 0
		}
	}
}

// raiseBoost raises the target by lateness (plus a margin) for a while:
// the delay a stall or a delay peak just showed the buffer lacked. The
// base is the target the buffer was playing to, as of the last pull: the
// target is not recomputed here, so the late packets of one burst each
// add their lateness to the same base. Recomputed after each, the next
// one's boost would stand on the peak the first had just filed, and a
// 60 ms stall would raise the target by far more than 60 ms.
func (j *jitterState) raiseBoost(lateness time.Duration) {
	j.lateBoost = max(j.lateBoost, j.target+lateness+5*time.Millisecond)
}

func (j *jitterState) onLate(lateness time.Duration, now time.Time) {
	j.raiseBoost(lateness)
	// Stretch now by the lateness, so the next packets make it; by the
	// largest of a burst's, not their sum (the buffer has not moved
	// between them).
	add := int((lateness + 5*time.Millisecond) * SampleRate / time.Second)
	add = min(add, int(j.maxDelay*SampleRate/time.Second))
	if add > j.debt {
		j.setDebt(add, true, now)
	}
	j.winHave, j.winAudio, j.winSlack = false, 0, j.winSlack[:0]
}

// recordRelDelay files one packet's transit time (seconds, arbitrary
// origin) in the relative-delay histogram.
func (j *jitterState) recordRelDelay(transit float64, now time.Time) {
	if j.floorAt.IsZero() || transit < j.floor {
		j.floor = transit
	} else {
		j.floor = min(transit, j.floor+now.Sub(j.floorAt).Seconds()*floorLeak)
	}
	j.floorAt = now
	rel := time.Duration((transit - j.floor) * float64(time.Second))
	burst := !j.relPrevAt.IsZero() && now.Sub(j.relPrevAt) < relBurst && rel < j.relPrev
	j.relPrevAt, j.relPrev = now, rel
	if burst {
		// A stall's staircase (at 20 ms frames 50, 30, 10 ms of delay
		// arriving together) is one event: the first packet's delay is
		// what the buffer needs, and filing the rest would make one stall
		// count as recurring peaks (see relDelayQuantiles).
		return
	}
	b := min(int(rel/time.Millisecond), relBuckets-1)
	// Forgetting: each packet weighs 1/relForget times the one before;
	// renormalise before the weights overflow.
	if j.relWeight == 0 {
		j.relWeight = 1
	}
	j.relWeight /= relForget
	j.relHist[b] += j.relWeight
	j.relTotal += j.relWeight
	j.relCount++
	if j.relWeight > 1e12 {
		for i := range j.relHist {
			j.relHist[i] /= j.relWeight
		}
		j.relTotal /= j.relWeight
		j.relWeight = 1
	}
	if !j.relSettled && j.relCount == relStartup {
		// A stream's first packets say little about the path's peaks: a
		// step in the delay while the pipeline's queues fill (the first
		// packet ahead of the rest by a frame, at 10 ms frames on
		// loopback) would read as a second of peaks and hold the target
		// a frame higher for the ten seconds the histogram remembers.
		// Start over from here, floor included.
		j.relSettled = true
		j.floorAt, j.relHist, j.relTotal, j.relWeight, j.relCount = time.Time{}, [relBuckets]float64{}, 0, 0, 0
	}
	// Here, on the packet path, rather than at every play-out pull.
	q, qRecur := j.relDelayQuantiles()
	j.peakTargets(q, qRecur, now)
}

// peakTargets updates the peaks' parts of the target from the quantiles
// of relative delay (relDelayQuantiles): q over all packets, qRecur
// leaving out a single peak. Each is the quantile plus its margin once
// it reaches half of MinDelay, not MinDelay itself: a link whose peaks
// reach 5–10 ms (a busy process) would otherwise get a target of
// MinDelay, no headroom over them, and more underruns than a link with
// higher peaks. Under half of MinDelay (a quiet link) the target stays
// MinDelay.
func (j *jitterState) peakTargets(q, qRecur time.Duration, now time.Time) {
	want := func(q, margin time.Duration) time.Duration {
		if q < j.minDelay/2 {
			return 0
		}
		return q + margin
	}
	j.peakOnce.update(want(q, relMarginOnce), relHoldOnce, now)
	j.peakRecur.update(want(qRecur, relMargin), relHold, now)
}

// heldLevel rises at once and falls only after what is asked has stayed
// lower for a hold time. Following the quantile both ways, a link whose
// peaks wobble around the threshold (as under -race) would have its
// target jump by the margin and back every few seconds, and the steady
// stretching and compressing would break up the audio.
type heldLevel struct {
	v   time.Duration
	low time.Time // since when less than v has been asked
}

func (h *heldLevel) update(want, hold time.Duration, now time.Time) {
	switch {
	case want >= h.v:
		h.v, h.low = want, time.Time{}
	case h.low.IsZero():
		h.low = now
	case now.Sub(h.low) >= hold:
		h.v, h.low = want, time.Time{}
	}
}

// relDelayQuantiles gives the delay (above the fastest packets) that all
// but relTail of the recent packets stayed within: what the buffer must
// hold so that recurring delay peaks (a link with periodic spikes, a
// process that stalls every second or two) play in time, like WebRTC
// NetEq's delay histogram. The histogram forgets with a time constant of
// about 1/(1-relForget) packets, so one-off peaks fade.
//
// qRecur is the same with a tail of at least one packet's weight (the
// newest packet weighs relWeight, older ones less), so a single peak,
// however high, does not set it: a peak counts there once another has
// come while the first is remembered. Summed from the top, so one
// packet's weight compares exactly.
func (j *jitterState) relDelayQuantiles() (q, qRecur time.Duration) {
	if j.relCount < 50 {
		return 0, 0
	}
	tail := j.relTotal * relTail
	tailRecur := max(tail, j.relWeight)
	var above float64
	for i := relBuckets - 1; i > 0; i-- {
		above += j.relHist[i]
		if q == 0 && above > tail {
			q = time.Duration(i+1) * time.Millisecond
		}
		if above > tailRecur {
			return q, time.Duration(i+1) * time.Millisecond
		}
	}
	return max(q, time.Millisecond), time.Millisecond
}

func (j *jitterState) updateTarget(now time.Time) {
	if !j.lastBoostDecay.IsZero() && j.lateBoost > 0 {
		// Decay the late boost by 20 ms per second.
		j.lateBoost -= now.Sub(j.lastBoostDecay) / 50
		if j.lateBoost < 0 {
			j.lateBoost = 0
		}
	}
	j.lastBoostDecay = now
	jit := time.Duration(3 * j.jitter / j.clock * float64(time.Second))
	need := max(j.minDelay, jit, j.lateBoost, j.peakOnce.v, j.peakRecur.v)
	switch {
	case j.lossEWMA > fecOn:
		j.lossy = true
	case j.lossEWMA < fecOff:
		j.lossy = false
	}
	if j.fecCapable && j.lossy {
		// Under loss, hold one more frame so the packet after a lost one
		// is there in time for its FEC data.
		need += j.samplesToDur(int64(max(j.lastDur, j.frameDef)))
	}
	need = min(need, j.maxDelay)
	// The target follows what the link needs upwards at once, and
	// downwards, to the highest need of the last few seconds, once the
	// need has stayed a clear step lower for targetFallHold or lower at
	// all for targetSettleHold: each change of the target is a change of
	// the playout delay, which a listener can hear, and the estimates
	// behind the need (the jitter above all) wander on a steady link.
	if now.Sub(j.needBlockAt) >= targetFallHold {
		j.needBlockAt, j.needMax[1], j.needMax[0] = now, j.needMax[0], 0
	}
	j.needMax[0] = max(j.needMax[0], need)
	if need >= j.target {
		j.target, j.lowSince, j.stepSince = need, time.Time{}, time.Time{}
		return
	}
	if j.lowSince.IsZero() {
		j.lowSince = now
	}
	switch {
	case need > j.target-targetFallStep:
		j.stepSince = time.Time{}
	case j.stepSince.IsZero():
		j.stepSince = now
	}
	if (!j.stepSince.IsZero() && now.Sub(j.stepSince) >= targetFallHold) || now.Sub(j.lowSince) >= targetSettleHold {
		j.target, j.lowSince, j.stepSince = max(j.needMax[0], j.needMax[1]), time.Time{}, time.Time{}
	}
}

// observe records the slack of a packet that played and, once per window,
// steers the delay: when the window's median slack has strayed from the
// target by more than a dead band, the difference is set as the debt
// (stretch or compress), and compression never takes more than the
// smallest slack minus a safety margin, so no packet seen in the window
// would have been late. The target already holds the margin for delay
// peaks (relDelayQuantiles), so the typical packet is the one to steer.
// Steering the window's lowest slack would count the peaks twice, a
// buffer of target plus peak, and, being one packet's slack in 25, it
// would swing by a peak's height between windows with and without one
// (TestJitterSteadyUnderPeaks). The dead band is wider than the window
// median's wander under jitter, so a steady link settles
// (TestPlayoutSteadyUnderJitter); clock drift is corrected in steps of
// about the band's width.
func (j *jitterState) observe(slack time.Duration, played int, now time.Time) {
	if !j.winHave || slack < j.winMin {
		j.winMin, j.winHave = slack, true
	}
	if len(j.winSlack) < 256 {
		j.winSlack = append(j.winSlack, slack)
	}
	j.delayEWMA += (float64(slack) - j.delayEWMA) * 0.05
	j.winAudio += played
	if j.samplesToDur(int64(j.winAudio)) < windowLen || j.debt != 0 {
		return
	}
	slices.Sort(j.winSlack)
	q := j.winSlack[len(j.winSlack)/2]
	const safety = 2 * time.Millisecond
	e := q - j.target
	// Short of the target the band narrows on a small target, where a
	// few milliseconds less make packets late.
	lowBand := min(steerBand, j.target/4)
	if e > steerBand || e < -lowBand {
		// Act on a stray that two windows in a row agree on, by the
		// smaller of the two: a lasting offset (a new target, drift)
		// persists, a wander of the median under jitter does not.
		prev := j.stray
		j.stray = e
		switch {
		case e > 0 && prev > steerBand:
			e = min(e, prev, j.winMin-safety)
			if e > 0 {
				j.setDebt(-int(e*SampleRate/time.Second), false, now)
				j.stray = 0
			}
		case e < 0 && (prev < -lowBand || q < j.target/2):
			// Short of the target: at once when the typical packet has
			// less than half of it left.
			short := q < j.target/2
			if prev < -lowBand {
				e = max(e, prev)
			}
			j.setDebt(int(-e*SampleRate/time.Second), short, now)
			j.stray = 0
		}
	} else {
		j.stray = 0
	}
	j.winHave, j.winAudio, j.winSlack = false, 0, j.winSlack[:0]
}

// setDebt starts an adjustment of the delay by debt samples (>0 stretch,
// <0 compress). urgent marks a stretch that cannot wait (a late packet
// asked for it, or packets are close to being late): it is carried out at
// once, in speech too; others wait for a quiet frame, up to debtPatience
// (see urgent).
func (j *jitterState) setDebt(debt int, urgent bool, now time.Time) {
	if debt == j.debt {
		return
	}
	if j.debt == 0 || (debt > 0) != (j.debt > 0) {
		j.debtSince, j.debtUrgent = now, false
	}
	j.adjustments++
	j.debt, j.debtUrgent = debt, j.debtUrgent || urgent
}

// urgent reports whether the pending debt must be carried out in the next
// frame whatever it holds: a stretch for a late packet, or a debt that
// has found no quiet frame for debtPatience (continuous speech or music).
func (j *jitterState) urgent(now time.Time) bool {
	return j.debt != 0 && (j.debtUrgent || now.Sub(j.debtSince) >= debtPatience)
}

// next decides what to play next. It never blocks.
func (j *jitterState) next(now time.Time, fecCapable bool) action {
	j.updateTarget(now)
	if !j.started {
		if len(j.packets) == 0 || now.Sub(j.packets[0].arrival) < j.target {
			return action{kind: actSilence, n: stepChunk}
		}
		j.started = true
		j.playPos, j.nextSeq = j.packets[0].ts, j.packets[0].seq
	}
	// Packets whose slot already passed (only after a jump) are late.
	for len(j.packets) > 0 && j.packets[0].ts < j.playPos {
		j.late++
		j.nextSeq = max(j.nextSeq, j.packets[0].seq+1)
		j.release(j.pop().payload)
	}
	j.skipOther()
	if len(j.packets) == 0 {
		// Nothing to play: late, lost, or the sender paused. Hold the
		// position while a stretch is due (a late packet may still make
		// it); otherwise conceal on the timeline.
		if j.debt > 0 {
			n := min(j.debt, stepChunk)
			j.debt -= n
			j.expanded += uint64(n)
			return j.conceal(n)
		}
		n := j.lastDur
		if n == 0 {
			n = j.frameDef
		}
		if j.nextSeq == j.maxSeq+1 && j.other[j.maxSeq&(seenSize-1)] == j.maxSeq {
			// Nothing is missing: the sender sends telephone-event
			// packets in place of audio. Silence, not concealment.
			j.playPos += int64(n)
			j.plcRun = maxPLC
			return action{kind: actSilence, n: n}
		}
		if !j.holdDone && j.holdRun < holdMax && j.plcRun < maxPLC {
			// An underrun: the packet due now is not here, and nothing
			// after it has come to show it lost. Wait for it a little,
			// concealing without moving the timeline, the way NetEq
			// expands: a packet held up a few milliseconds (a stall of
			// the sender, a delay peak) then plays instead of being
			// dropped as late and concealed a whole frame. If it does
			// not come, settleHold makes the wait the start of its
			// frame's concealment, which is what giving the slot up at
			// once would have played: a lost packet costs nothing more.
			j.holdRun += stepChunk
			return j.conceal(stepChunk)
		}
		j.settleHold(-1)
		j.playPos += int64(n)
		return j.conceal(n)
	}
	h := j.packets[0]
	if j.holdRun > 0 && h.ts != j.playPos {
		// A later packet came while the underrun waited: the one it
		// waited for is lost (or late), and the wait stands for the
		// start of its concealment.
		j.settleHold(h.ts - j.playPos)
	}
	if h.ts == j.playPos {
		if j.debt >= stepChunk && (j.quiet || j.urgent(now)) {
			// A large stretch: insert concealment before this packet.
			j.debt -= stepChunk
			j.expanded += stepChunk
			return j.conceal(stepChunk)
		}
		j.pop()
		dur := h.dur
		if dur == 0 {
			dur = j.frameDef
		}
		j.playPos += int64(dur)
		j.nextSeq = h.seq + 1
		j.lastDur = dur
		// After a wait that this packet ended, the audio concealed while
		// waiting stays added: the buffer is that much deeper.
		j.expanded += uint64(j.holdRun)
		j.plcRun, j.holdRun, j.holdDone = 0, 0, false
		j.observe(now.Sub(h.arrival), dur, now)
		return action{kind: actDecode, payload: h.payload, splice: j.debt, urgent: j.urgent(now)}
	}
	gap := int(h.ts - j.playPos)
	if h.seq == j.nextSeq {
		// A timestamp gap without a sequence gap: mute or DTX. Silence, and
		// the best moment to change the delay.
		if j.debt < 0 {
			skip := min(-j.debt, gap)
			j.debt += skip
			j.compressed += uint64(skip)
			j.playPos += int64(skip)
			gap -= skip
			if gap == 0 {
				return j.next(now, fecCapable)
			}
		}
		if j.debt > 0 {
			n := min(j.debt, stepChunk)
			j.debt -= n
			j.expanded += uint64(n)
			return action{kind: actSilence, n: n}
		}
		n := min(gap, stepChunk)
		j.playPos += int64(n)
		j.plcRun = maxPLC
		return action{kind: actSilence, n: n}
	}
	// Packets are missing before h: conceal one frame, from h's FEC when
	// the lost frame is the one right before h.
	lost := j.lastDur
	if lost == 0 {
		lost = j.frameDef
	}
	if fecCapable && gap <= max(lost, h.dur) && gap%120 == 0 && len(h.payload) > 0 && h.payload[0]>>3 < 16 {
		j.playPos += int64(gap)
		j.nextSeq = h.seq
		j.fec++
		j.plcRun, j.holdRun, j.holdDone = 0, 0, false
		return action{kind: actFEC, n: gap, payload: append(j.alloc(len(h.payload))[:0], h.payload...)}
	}
	n := min(gap, lost)
	j.playPos += int64(n)
	if j.playPos >= h.ts {
		j.nextSeq = h.seq
	}
	return j.conceal(n)
}

// settleHold ends an underrun's wait for a packet that did not come: the
// audio concealed while waiting counts as concealment of the missing
// frame, so the play position moves on by it (by at most limit, the gap
// to the next packet, when limit >= 0; the rest stays added) and the
// buffer's delay does not grow.
func (j *jitterState) settleHold(limit int64) {
	adv := int64(j.holdRun)
	if limit >= 0 {
		adv = min(adv, limit)
	}
	j.playPos += adv
	j.expanded += uint64(int64(j.holdRun) - adv)
	j.holdRun, j.holdDone = 0, true
}

func (j *jitterState) conceal(n int) action {
	j.concealedAudio += uint64(n)
	if j.plcRun >= maxPLC {
		return action{kind: actSilence, n: n}
	}
	j.plcRun += n
	j.concealed++
	return action{kind: actPLC, n: n}
}

// buffered returns the audio held ahead of the play position.
func (j *jitterState) buffered() int64 {
	if !j.started || len(j.packets) == 0 {
		return 0
	}
	last := j.packets[len(j.packets)-1]
	return last.ts + int64(max(last.dur, j.frameDef)) - j.playPos
}
