package call

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dialtone-dev/dialtone/media"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"
)

// RecordConfig says where a recording goes: WAV, Ogg or both.
//
// The recording never closes the writers it is given (close them after
// Stop); on an error from Record they may already hold a WAV header.
type RecordConfig struct {
	// WAV receives the conversation as a 48 kHz 16-bit stereo WAV. The
	// left channel is what this side's microphone sent, after the
	// processing (silence while muted); the right channel is what the far
	// end's stream played on this side's speaker, without this side's own
	// call-progress tones (a room: the mix of every member). Both are taken
	// at the device callbacks of the same call and put on one timeline, so
	// an answer is as late on the right, after the question on the left,
	// as the call's round trip made it for the talker.
	//
	// When WAV can seek (an *os.File), Stop writes the final sizes into
	// the header; a stream that cannot (a pipe, a socket, a bytes.Buffer)
	// keeps the sizes "unknown" (0xFFFFFFFF), which media.ReadWAV, ffmpeg
	// and sox read to the end of the stream.
	WAV io.Writer
	// Ogg receives the far end's stream as Ogg Opus: the Opus packets as
	// they arrived, neither decoded nor re-encoded, in one mono logical
	// stream. Gaps in the stream (lost packets, the far end's silence
	// suppression) are filled with empty Opus frames, which decoders
	// conceal, so the file keeps the call's timing; a packet that arrives
	// after its time has been written (reordered, duplicate) is left out.
	// When Ogg is an *os.File (an io.WriterAt that can seek) Stop marks
	// the last page end-of-stream; otherwise it appends an empty one. A
	// call that negotiated another codec than Opus records no Ogg, and
	// the recording's Err says so (ErrNotOpus). Rooms do not record Ogg.
	Ogg io.Writer
}

// Recording is one recording of a call or a room, from Call.Record or
// Room.Record, running until Stop or the end of the call.
//
// The device callbacks and the network reader hand it copies of what
// they pass through a bounded queue of about two seconds, never waiting
// for the writer: frames a stalled writer has no room for are dropped and
// become silence in the WAV (counted by Dropped), so the two channels stay
// aligned. The writes run on a goroutine of the recording's own, which
// ends once Stop or the end of the call has flushed what was queued.
type Recording struct {
	wav *media.WAVSink
	ogg *oggOut

	free     chan *recItem // items the taps may fill
	queue    chan *recItem // filled items, for the writer
	lost     [2]atomic.Int64
	dropped  atomic.Int64
	t0       atomic.Int64 // time zero (UnixNano), 0 until media flows
	stopAt   atomic.Int64 // when stop was called (UnixNano)
	written  atomic.Int64 // sample frames in the WAV
	stopping atomic.Bool
	quit     chan struct{}
	halt     sync.Once
	done     chan struct{}
	err      error // set by the writer before done closes

	// detach, set by the owner (call or room), unhooks the taps.
	detach func()
}

// recItem is one period of PCM or one RTP packet on its way to the
// writer. Items cycle between the free list and the queue, so the taps
// reuse their buffers and never allocate once they have grown.
type recItem struct {
	kind    recKind
	at      time.Time
	lost    int64 // samples of this channel dropped just before this period
	pcm     []int16
	ts      uint32
	seq     uint16
	ssrc    uint32
	opus    bool
	payload []byte
}

type recKind int

const (
	recLocal  recKind = iota // the microphone, after processing: the WAV's left
	recRemote                // the far end as played: the WAV's right
	recPacket                // a received RTP packet: the Ogg
)

// recQueue is how many periods and packets the queue holds: two seconds
// of both channels at 10 ms periods with 20 ms packets.
//
// The queue is bounded, unlike internal/mailbox (the tree's queue for
// events that must never be lost): a tap on the device clock must not
// allocate per period, and a writer stuck on a dead disk or socket must
// not grow the process without bound. Losing a period to a stalled writer
// costs that period of silence in the file, with the timeline kept.
const recQueue = 500

var errNoOutput = errors.New("call: record: no WAV or Ogg output given")

// newRecording writes the WAV header and starts the writer. ogg says
// whether the owner can record Ogg.
func newRecording(cfg RecordConfig, ogg bool) (*Recording, error) {
	if cfg.WAV == nil && cfg.Ogg == nil {
		return nil, errNoOutput
	}
	if cfg.Ogg != nil && !ogg {
		return nil, errors.New("call: record: a room records WAV only")
	}
	r := &Recording{
		free:  make(chan *recItem, recQueue),
		queue: make(chan *recItem, recQueue),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	if cfg.WAV != nil {
		w, err := media.NewWAVWriter(cfg.WAV, 2)
		if err != nil {
			return nil, fmt.Errorf("call: record: %w", err)
		}
		r.wav = w
	}
	if cfg.Ogg != nil {
		o, err := newOggOut(cfg.Ogg)
		if err != nil {
			return nil, fmt.Errorf("call: record: %w", err)
		}
		r.ogg = o
	}
	for range recQueue {
		r.free <- &recItem{}
	}
	go r.run()
	return r, nil
}

// Stop ends the recording and waits, as long as ctx lets it, for the
// writer to flush and finish the files. It returns the first error the
// recording met (as Err). Stopping twice, or after the call ended, is
// harmless.
func (r *Recording) Stop(ctx context.Context) error {
	r.stop()
	if r.detach != nil {
		r.detach()
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed when the recording has finished: stopped, or its call
// ended, and the files written.
func (r *Recording) Done() <-chan struct{} { return r.done }

// Err is the first error the recording met (a failed write, an Ogg
// recording of a call without Opus), once Done is closed; nil before.
func (r *Recording) Err() error {
	select {
	case <-r.done:
		return r.err
	default:
		return nil
	}
}

// Duration is the length of the WAV written so far.
func (r *Recording) Duration() time.Duration {
	return time.Duration(r.written.Load()) * time.Second / media.SampleRate
}

// Dropped is how many periods and packets the writer had no room for
// (a stalled writer); dropped periods are silence in the WAV.
func (r *Recording) Dropped() int { return int(r.dropped.Load()) }

// stop makes the taps ignore what comes next and tells the writer to
// finish; it does not wait.
func (r *Recording) stop() {
	r.halt.Do(func() {
		r.stopAt.Store(time.Now().UnixNano())
		r.stopping.Store(true)
		close(r.quit)
	})
}

// begin sets time zero: media flows from now on.
func (r *Recording) begin() {
	r.t0.CompareAndSwap(0, time.Now().UnixNano())
}

// take returns a free item, or nil when the writer is too far behind.
func (r *Recording) take() *recItem {
	if r.stopping.Load() {
		return nil
	}
	select {
	case it := <-r.free:
		return it
	default:
		r.dropped.Add(1)
		return nil
	}
}

// local taps what the microphone sent (silent: muted, sent as silence).
// It runs on the capture callback.
func (r *Recording) local(p []int16, silent bool) {
	it := r.take()
	if it == nil {
		r.lost[recLocal].Add(int64(len(p)))
		return
	}
	it.pcm = append(it.pcm[:0], p...)
	if silent {
		clear(it.pcm)
	}
	r.put(it, recLocal)
}

// remote taps the far end's audio as played. It runs on the playback
// callback.
func (r *Recording) remote(p []int16) {
	it := r.take()
	if it == nil {
		r.lost[recRemote].Add(int64(len(p)))
		return
	}
	it.pcm = append(it.pcm[:0], p...)
	r.put(it, recRemote)
}

// received taps one RTP packet of the far end's stream (opus: the track's
// codec is Opus). It runs on the receiver's read goroutine.
func (r *Recording) received(p *rtp.Packet, opus bool) {
	if r.ogg == nil {
		return
	}
	it := r.take()
	if it == nil {
		return
	}
	it.ts, it.seq, it.ssrc, it.opus = p.Timestamp, p.SequenceNumber, p.SSRC, opus
	it.payload = append(it.payload[:0], p.Payload...)
	r.put(it, recPacket)
}

func (r *Recording) put(it *recItem, k recKind) {
	it.kind, it.at = k, time.Now()
	if k != recPacket {
		it.lost = r.lost[k].Swap(0)
	}
	// Never blocks: there are no more items than the queue holds.
	r.queue <- it
}

// run is the writer. A failed output stops being written; the other goes
// on.
func (r *Recording) run() {
	defer close(r.done)
	var wav wavAligner
	var wavErr, oggErr error
	fail := func(out *error, err error) {
		if err == nil {
			return
		}
		if *out == nil {
			*out = err
		}
		if r.err == nil {
			r.err = err
		}
	}
	write := func(it *recItem) {
		switch {
		case it.kind == recPacket:
			if r.ogg != nil && oggErr == nil {
				fail(&oggErr, r.ogg.write(it))
			}
		case r.wav != nil && wavErr == nil:
			fail(&wavErr, wav.place(r, it))
		}
		r.free <- it
	}
	for stop := false; !stop; {
		select {
		case it := <-r.queue:
			write(it)
		case <-r.quit:
			stop = true
		}
	}
	// What the taps queued before stop: they queue nothing after it.
	for drained := false; !drained; {
		select {
		case it := <-r.queue:
			write(it)
		default:
			drained = true
		}
	}
	if r.wav != nil {
		if wavErr == nil {
			fail(&wavErr, wav.finish(r))
		}
		fail(&wavErr, r.wav.Close())
	}
	if r.ogg != nil {
		fail(&oggErr, r.ogg.close())
	}
}

// wavAligner puts the two channels' periods on one timeline and writes
// them interleaved.
//
// Each channel runs on its device's clock, so its periods follow each
// other sample for sample; the wall-clock time a period passed places
// only the channel's first period (relative to time zero) and catches a
// channel that lost samples. A period that comes more than resyncLag
// later than its place starts a suspected gap: if the periods of the next
// half second of audio all stay that late, the device stopped for a
// while (a stall past what it catches up, a device switch) and silence as
// long as the smallest of those delays goes in where the gap began. If
// one comes on time, the device was catching up in a burst after late
// ticks (up to 400 ms of them on the virtual device) and nothing moves.
// While a gap is suspected, the audio from its start is held back, so
// the silence can still go in at its place.
type wavAligner struct {
	ch      [2]wavChannel
	written int64 // sample frames written (both channels)
	buf     []int16
}

type wavChannel struct {
	started bool
	pending []int16 // samples from written on
	// A suspected gap: where it began (a sample position) and the
	// smallest delay since.
	gap           bool
	gapAt, gapLag int64
}

const (
	resyncLag    = media.SampleRate / 10 // 100 ms
	resyncWindow = media.SampleRate / 2  // 500 ms
	// maxSkew is how far one channel may run ahead of the other before
	// the other is taken to have stopped and is written as silence.
	maxSkew = media.SampleRate
)

func (w *wavAligner) place(r *Recording, it *recItem) error {
	c := &w.ch[it.kind]
	wall := it.at.UnixNano() - r.t0.Load()
	wallPos := wall * media.SampleRate / int64(time.Second)
	if !c.started {
		c.started = true
		c.pad(wallPos - w.end(c))
	} else {
		c.pad(it.lost)
		pos := w.end(c)
		lag := wallPos - pos
		switch {
		case !c.gap && lag > resyncLag:
			c.gap, c.gapAt, c.gapLag = true, pos, lag
		case c.gap && lag <= resyncLag:
			c.gap = false // caught up: no gap
		case c.gap:
			c.gapLag = min(c.gapLag, lag)
			if pos-c.gapAt >= resyncWindow {
				w.fillGap(c)
			}
		}
	}
	c.pending = append(c.pending, it.pcm...)
	other := &w.ch[1-it.kind]
	if ahead := w.end(c) - w.end(other); ahead > maxSkew {
		other.pad(ahead - maxSkew)
	}
	return w.flush(r, false)
}

// fillGap puts the silence of c's suspected gap where it began.
func (w *wavAligner) fillGap(c *wavChannel) {
	c.pending = slices.Insert(c.pending, int(c.gapAt-w.written), make([]int16, c.gapLag)...)
	c.gap = false
}

// end is the position after c's last sample.
func (w *wavAligner) end(c *wavChannel) int64 { return w.written + int64(len(c.pending)) }

func (c *wavChannel) pad(n int64) {
	if n > 0 {
		c.pending = append(c.pending, make([]int16, n)...)
	}
}

// flush writes what both channels have, short of a suspected gap unless
// the recording ends.
func (w *wavAligner) flush(r *Recording, all bool) error {
	n := int64(min(len(w.ch[0].pending), len(w.ch[1].pending)))
	for i := range w.ch {
		if c := &w.ch[i]; !all && c.gap {
			n = min(n, c.gapAt-w.written)
		}
	}
	if n <= 0 {
		return nil
	}
	if cap(w.buf) < int(2*n) {
		w.buf = make([]int16, 2*n)
	}
	b := w.buf[:2*n]
	for i := range n {
		b[2*i], b[2*i+1] = w.ch[0].pending[i], w.ch[1].pending[i]
	}
	for i := range w.ch {
		c := &w.ch[i]
		c.pending = c.pending[:copy(c.pending, c.pending[n:])]
	}
	w.written += n
	r.written.Store(w.written)
	if _, err := r.wav.WritePCM(b); err != nil {
		return err
	}
	return nil
}

// finish ends both channels together at the moment the recording
// stopped. A gap still suspected is one the device never made up: its
// silence goes in. What a device had not delivered by the stop (it was
// running late) is silence too, so the file lasts as long as the
// recording ran.
func (w *wavAligner) finish(r *Recording) error {
	end := int64(0)
	if t0 := r.t0.Load(); t0 != 0 {
		end = (r.stopAt.Load() - t0) * media.SampleRate / int64(time.Second)
	}
	for i := range w.ch {
		c := &w.ch[i]
		if c.gap {
			w.fillGap(c)
		}
		end = max(end, w.end(c))
	}
	for i := range w.ch {
		w.ch[i].pad(end - w.end(&w.ch[i]))
	}
	return w.flush(r, true)
}

// oggOut writes the received Opus packets to an Ogg stream.
type oggOut struct {
	w     *oggwriter.Writer
	track *oggwriter.Track
	ssrc  uint32 // the Ogg track's
	// The stream so far: the RTP timestamp the next packet should carry,
	// the last packet's SSRC and TOC byte.
	have     bool
	next     uint32
	lastSSRC uint32
	toc      byte
}

// maxOggGap is the longest gap filled with empty frames; a longer jump in
// timestamps is a restarted stream, written on without a gap.
const maxOggGap = 10 * media.SampleRate

func newOggOut(w io.Writer) (*oggOut, error) {
	// The Writer closes an io.Closer it writes to; the caller's writer
	// stays the caller's.
	opts := []oggwriter.WriterOption{oggwriter.WithChannelCount(1), oggwriter.WithVendor("dialtone")}
	if rw, ok := w.(interface {
		io.Seeker
		io.WriterAt
	}); ok {
		if _, err := rw.Seek(0, io.SeekCurrent); err == nil {
			opts = append(opts, oggwriter.WithSeekableOutput(rw))
		}
	}
	ow, err := oggwriter.NewWriter(struct{ io.Writer }{w}, opts...)
	if err != nil {
		return nil, err
	}
	return &oggOut{w: ow}, nil
}

func (o *oggOut) write(it *recItem) error {
	if !it.opus {
		return ErrNotOpus
	}
	dur := media.OpusDuration(it.payload)
	if dur == 0 {
		return nil // malformed: nothing a player could use
	}
	if o.track == nil {
		t, err := o.w.NewTrack(it.ssrc)
		if err != nil {
			return err
		}
		o.track, o.ssrc = t, it.ssrc
	}
	pkt := rtp.Packet{Header: rtp.Header{SSRC: o.ssrc, Timestamp: it.ts, SequenceNumber: it.seq}}
	if o.have && it.ssrc == o.lastSSRC {
		gap := int32(it.ts - o.next)
		if gap < 0 {
			return nil // its time is written: late or duplicate
		}
		if gap <= maxOggGap {
			// An empty frame (a TOC byte alone) of the last packet's
			// configuration: decoders conceal it.
			empty := o.toc &^ 3
			step := int32(media.OpusDuration([]byte{empty}))
			pkt.Payload = []byte{empty}
			for ; gap >= step; gap -= step {
				if err := o.track.WriteRTP(&pkt); err != nil {
					return err
				}
			}
		}
	}
	pkt.Payload = it.payload
	if err := o.track.WriteRTP(&pkt); err != nil {
		return err
	}
	o.have, o.next, o.lastSSRC, o.toc = true, it.ts+uint32(dur), it.ssrc, it.payload[0]
	return nil
}

func (o *oggOut) close() error {
	return o.w.Close()
}

// Record starts recording the call to the outputs cfg names (see
// RecordConfig) and returns the running recording; stop it with Stop, or
// let the end of the call stop it. One recording runs at a time
// (ErrRecording); a call that has ended cannot be recorded (ErrEnded).
//
// Called on a live call, the recording starts at once. Called before the
// call is answered (ringing, dialing), it waits for the media: its time
// zero is the moment the call is answered, so neither the ringback nor
// the microphone before the answer is recorded.
func (c *Call) Record(ctx context.Context, cfg RecordConfig) (*Recording, error) {
	return startRecording(ctx, cfg, true, c.post, c.ask)
}

// startRecording starts a recording and files it with its owner (a Call
// or a Room, whose actor takes cmdRecord through ask); stopping it posts
// cmdStopRecord. ogg says whether the owner can record Ogg. When the
// owner refuses it, the recording is stopped and its writer has finished
// before the error returns.
func startRecording(ctx context.Context, cfg RecordConfig, ogg bool, post func(input), ask func(context.Context, func(*request) input) error) (*Recording, error) {
	rec, err := newRecording(cfg, ogg)
	if err != nil {
		return nil, err
	}
	rec.detach = func() { post(cmdStopRecord{rec: rec}) }
	if err := ask(ctx, func(r *request) input { return cmdRecord{request: r, rec: rec} }); err != nil {
		rec.stop()
		<-rec.done
		return nil, err
	}
	return rec, nil
}

// record files rec as the call's recording and starts it if the media
// flows.
func (c *Call) record(rec *Recording) error {
	if c.State() == Ended {
		return ErrEnded
	}
	if c.rec != nil {
		return ErrRecording
	}
	c.rec = rec
	c.startRecording()
	return nil
}

// startRecording hooks a waiting recording to the device callbacks once
// the call has media.
func (c *Call) startRecording() {
	if c.rec == nil || c.media == nil || c.audio == nil || c.audio.rec.Load() != nil {
		return
	}
	c.rec.begin()
	c.audio.rec.Store(c.rec)
}

// stopRecording unhooks rec, if it is the call's recording, and lets its
// writer finish.
func (c *Call) stopRecording(rec *Recording) {
	if rec == nil || rec != c.rec {
		return
	}
	c.rec = nil
	if c.audio != nil {
		c.audio.rec.CompareAndSwap(rec, nil)
	}
	rec.stop()
}

// Record starts recording the room to a WAV (see RecordConfig: the left
// channel is this member's microphone as sent, the right the mix of the
// other members as played); rooms record no Ogg. It fails with
// ErrRecording while a recording runs and ErrEnded once the room has
// ended; leaving the room stops the recording.
func (r *Room) Record(ctx context.Context, cfg RecordConfig) (*Recording, error) {
	return startRecording(ctx, cfg, false, r.post, r.ask)
}

// record hooks rec to the room's devices.
func (r *Room) record(rec *Recording) error {
	if r.isEnded() {
		return ErrEnded
	}
	if r.audio == nil {
		return fmt.Errorf("call: record: %w (the room's audio is not open)", ErrState)
	}
	rec.begin()
	if !r.audio.rec.CompareAndSwap(nil, rec) {
		return ErrRecording
	}
	return nil
}

// stopRecording unhooks rec (nil: whichever runs) and lets its writer
// finish.
func (r *Room) stopRecording(rec *Recording) {
	if r.audio == nil {
		return
	}
	if rec == nil {
		rec = r.audio.rec.Load()
	}
	if rec != nil && r.audio.rec.CompareAndSwap(rec, nil) {
		rec.stop()
	}
}
