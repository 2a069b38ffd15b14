package audio

import "time"

// Bounds of a timeline's catch-up.
const (
	// lostMin is how far behind the clock (in periods, beyond the least
	// lag the device has shown) a playback device must fall before it
	// catches up: more than a sound server buffers for a low-latency
	// stream, so that only a stall counts, not a late callback.
	lostMin = 3
	// lostMax is the longest stall caught up with: beyond it the device
	// was suspended or the process frozen, and the timeline starts over
	// where it is (the source's own handling of a backlog applies).
	lostMax = time.Second
	// lagRise is how fast the least lag may rise without counting as a
	// stall (1 ms/s, 1000 ppm): a sound card whose clock runs slower than
	// the system's falls behind it that slowly, and its timeline follows.
	lagRise = 0.001
	// catchUpAfter is how long after falling behind the device starts
	// catching up: a stall of the whole process also held back the
	// packets that refill a call's jitter buffer, and skipping before they
	// have arrived would run it dry.
	catchUpAfter = 200 * time.Millisecond
)

// timeline keeps a playback device's callbacks on the clock. A device
// asks for audio as it plays it; when its thread stalls (a loaded
// machine), a sound server that buffers little runs dry, plays silence,
// then asks for the audio where it left off rather than for what it
// would have played meanwhile, so every stall shifts the callbacks behind
// the clock for good. PulseAudio does so with the prebuffering miniaudio
// asks for (it stops a stream that ran dry and starts it again once a
// full buffer has been written), and ALSA after an xrun. For a live source
// (a call's jitter buffer, fed by the network at the far end's pace) each
// shift adds to the delay: the audio waits that much longer in the source,
// and a loaded desktop stalls often enough that a call's mouth-to-ear
// delay grows by a hundred milliseconds or more within seconds.
//
// timeline measures how far the device's requests have fallen behind the
// wall clock since its first one, beyond the least lag they have shown
// (which follows a slow device clock at up to lagRise). Once that reaches
// lostMin periods, it waits catchUpAfter, then, until the device is back
// within a period, takes one extra period per period of wall time from
// the source and drops it, as a sound card that keeps its clock skips
// what it could not play. Neither at once nor all of it in one go: a
// stall of the whole process also held back the packets that refill a
// call's jitter buffer, and skipping before they arrive runs the buffer
// dry, which it answers by raising its delay. Used only from the device's
// audio thread.
type timeline struct {
	started  bool
	catching bool
	origin   time.Time     // first request
	frames   int64         // frames requested and skipped since origin
	floor    time.Duration // least lag seen, risen at lagRise since
	last     time.Time     // previous request
	skipped  time.Time     // last skip
	since    time.Time     // when the device fell lostMin periods behind
}

// skip records a request for frames at now and reports whether a period
// of n frames is to be skipped (and has been counted as such).
func (l *timeline) skip(now time.Time, frames, n int) bool {
	if !l.started {
		l.started, l.origin, l.last = true, now, now
		l.frames = int64(frames)
		l.floor = -l.played()
		return false
	}
	l.floor += time.Duration(float64(now.Sub(l.last)) * lagRise)
	l.last = now
	lag := now.Sub(l.origin) - l.played()
	l.frames += int64(frames)
	l.floor = min(l.floor, lag)
	behind := lag - l.floor
	period := time.Duration(n) * time.Second / SampleRate
	switch {
	case behind > lostMax:
		l.floor, l.catching = lag, false
	case behind >= lostMin*period:
		if !l.catching {
			l.catching, l.since = true, now
		}
	case behind < period:
		l.catching = false
	}
	if !l.catching || now.Sub(l.since) < catchUpAfter || now.Sub(l.skipped) < period {
		return false
	}
	l.frames += int64(n)
	l.skipped = now
	return true
}

// played is the audio requested and skipped since the first request.
func (l *timeline) played() time.Duration {
	return time.Duration(l.frames) * time.Second / SampleRate
}
