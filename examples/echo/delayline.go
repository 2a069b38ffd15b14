package main

import (
	"sync"

	"github.com/dialtone-dev/dialtone/audio"
)

// delayLine is a FIFO of PCM between a playback device (WritePCM) and a
// capture device (ReadPCM) that starts with delay samples of silence, so
// whatever is written comes out delay samples later. Both devices run on
// the same clock with the same period, so the fill level stays at the
// delay give or take one period; if one side stalls, the FIFO stays
// bounded (oldest audio dropped) or runs dry (silence), never blocking a
// device callback. It is safe for concurrent use.
type delayLine struct {
	mu    sync.Mutex
	delay int
	ring  []int16
	head  int // next sample to read
	n     int // samples stored
}

// slack is how far above the delay the fill may grow before the oldest
// samples are dropped: a few device periods of scheduling hiccups.
const slack = 10 * 480

func newDelayLine(delay int) *delayLine {
	l := &delayLine{delay: delay, ring: make([]int16, delay+slack+audio.Samples(audio.MaxPeriod))}
	l.Reset()
	return l
}

// Reset empties the line and refills it with the delay's silence.
func (l *delayLine) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.ring)
	l.head = 0
	l.n = l.delay
}

// WritePCM appends p; beyond delay+slack the oldest samples are dropped.
func (l *delayLine) WritePCM(p []int16) (int, error) {
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
	if over := l.n - (l.delay + slack); over > 0 {
		l.head = (l.head + over) % len(l.ring)
		l.n -= over
	}
	return written, nil
}

// ReadPCM fills p from the front of the line, padding with silence when it
// runs dry.
func (l *delayLine) ReadPCM(p []int16) (int, error) {
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

// Len is the number of samples waiting in the line.
func (l *delayLine) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}
