package audio

import (
	"sync"
	"time"
)

// DelayLine is a PCM FIFO that starts with a stretch of silence, so that
// whatever is written to it comes out a fixed delay later. Put between a
// playback device (its [PCMWriter] side, as a [VirtualDevice] Sink) and a
// capture device (its [PCMReader] side, as a Source), it turns what a phone
// plays into what it hears after the delay: an echo test line.
//
// Both sides are meant to run on one clock with one period, so the fill
// level stays at the delay give or take a period. When one side stalls the
// line never blocks the other: a stalled reader lets the line grow to the
// delay plus [DelayLineSlack], then the oldest samples are dropped; a
// stalled writer lets it run dry, and reads are padded with silence.
//
// A DelayLine is safe for concurrent use.
type DelayLine struct {
	mu    sync.Mutex
	delay int
	ring  []int16
	head  int // next sample to read
	n     int // samples stored
}

// DelayLineSlack is how far above its delay a [DelayLine] may fill before
// it drops the oldest samples: ten default periods of scheduling hiccups
// between its writer and its reader.
const DelayLineSlack = 10 * DefaultPeriod

// NewDelayLine returns a line that delays by delay (rounded down to whole
// samples at [SampleRate]; a negative delay counts as none).
func NewDelayLine(delay time.Duration) *DelayLine {
	n := Samples(max(0, delay))
	l := &DelayLine{delay: n, ring: make([]int16, n+Samples(DelayLineSlack)+Samples(MaxPeriod))}
	l.Reset()
	return l
}

// Reset empties the line and refills it with the delay's silence, so the
// next writer is heard after the full delay with nothing of the last one.
func (l *DelayLine) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.ring)
	l.head = 0
	l.n = l.delay
}

// WritePCM appends p; it implements [PCMWriter] and never fails. Beyond
// the delay plus [DelayLineSlack] the oldest samples are dropped.
func (l *DelayLine) WritePCM(p []int16) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	written := len(p)
	if len(p) > len(l.ring) {
		p = p[len(p)-len(l.ring):]
	}
	tail := (l.head + l.n) % len(l.ring)
	for i := 0; i < len(p); {
		c := copy(l.ring[tail:], p[i:])
		i += c
		tail = (tail + c) % len(l.ring)
	}
	l.n += len(p)
	if over := l.n - (l.delay + Samples(DelayLineSlack)); over > 0 {
		l.head = (l.head + over) % len(l.ring)
		l.n -= over
	}
	return written, nil
}

// ReadPCM fills p from the front of the line, padding with silence when
// the line runs dry; it implements [PCMReader], always fills all of p and
// never fails.
func (l *DelayLine) ReadPCM(p []int16) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	want := min(len(p), l.n)
	for got := 0; got < want; {
		c := copy(p[got:want], l.ring[l.head:])
		got += c
		l.head = (l.head + c) % len(l.ring)
	}
	l.n -= want
	clear(p[want:])
	return len(p), nil
}

// Len returns the number of samples waiting in the line (the delay's
// silence included).
func (l *DelayLine) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}
