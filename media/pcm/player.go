package pcm

import (
	"io"
	"sync"
)

// Player is a [Reader] that plays samples held in memory, once or over and
// over: a prompt, a test signal, a decoded WAV file. It is safe for
// concurrent use.
type Player struct {
	mu      sync.Mutex
	samples []int16
	pos     int
	loop    bool
}

// NewPlayer returns a player that plays samples once, then reports io.EOF.
// samples is not copied.
func NewPlayer(samples []int16) *Player { return &Player{samples: samples} }

// Loop returns a player that starts samples over each time it reaches the
// end. samples is not copied.
func Loop(samples []int16) *Player { return &Player{samples: samples, loop: true} }

// SetLoop makes the player start over at the end (true) or end there (false).
func (p *Player) SetLoop(loop bool) {
	p.mu.Lock()
	p.loop = loop
	p.mu.Unlock()
}

// Rewind starts playback over.
func (p *Player) Rewind() {
	p.mu.Lock()
	p.pos = 0
	p.mu.Unlock()
}

// Samples returns the samples played (not a copy: do not modify).
func (p *Player) Samples() []int16 { return p.samples }

// ReadPCM fills b with the next samples. A player that does not loop
// returns the count read and io.EOF once it reaches the end, with the rest of
// b silent; an empty player always does.
func (p *Player) ReadPCM(b []int16) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for n < len(b) {
		c := copy(b[n:], p.samples[p.pos:])
		n += c
		p.pos += c
		if p.pos >= len(p.samples) {
			if !p.loop || len(p.samples) == 0 {
				clear(b[n:])
				return n, io.EOF
			}
			p.pos = 0
		}
	}
	return n, nil
}
