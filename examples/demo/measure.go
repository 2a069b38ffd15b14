package main

import (
	"context"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/dialtone-dev/dialtone/audio"
	"github.com/dialtone-dev/dialtone/media/mediatest"
)

// This file measures a call the way a listener would: what went into one
// phone's microphone callback against what came out of the other phone's
// speaker callback, both stamped with the wall-clock time of each period.
// It would serve other programs from mediatest; the demo keeps it until then.

// tap keeps every sample a device callback delivered, with the wall-clock
// time of each period, so that sample i can be put on a common timeline
// with another device's samples.
type tap struct {
	mu    sync.Mutex
	pcm   []int16
	marks []mark
}

// mark says that sample pos was produced (capture) or consumed (playback)
// at time at.
type mark struct {
	pos int
	at  time.Time
}

func (t *tap) add(p []int16, at time.Time) {
	t.mu.Lock()
	t.marks = append(t.marks, mark{pos: len(t.pcm), at: at})
	t.pcm = append(t.pcm, p...)
	t.mu.Unlock()
}

// snapshot returns a copy of everything recorded so far.
func (t *tap) snapshot() recording {
	t.mu.Lock()
	defer t.mu.Unlock()
	return recording{pcm: append([]int16(nil), t.pcm...), marks: append([]mark(nil), t.marks...)}
}

// recording is a tap's content at one moment.
type recording struct {
	pcm   []int16
	marks []mark
}

const sampleRate = 48000

func samplesToDuration(n int) time.Duration {
	return time.Duration(n) * time.Second / sampleRate
}

// timeAt is the wall-clock time of sample i: the time of the period that
// holds it plus its offset inside the period. Periods are stamped one by
// one, so a late or skipped device tick does not shift later samples.
func (r recording) timeAt(i int) time.Time {
	k := sort.Search(len(r.marks), func(k int) bool { return r.marks[k].pos > i }) - 1
	if k < 0 {
		k = 0
	}
	m := r.marks[k]
	return m.at.Add(samplesToDuration(i - m.pos))
}

// indexAt is the first sample at or after time t (len(pcm) if none).
func (r recording) indexAt(t time.Time) int {
	k := sort.Search(len(r.marks), func(k int) bool { return r.marks[k].at.After(t) }) - 1
	if k < 0 {
		return 0
	}
	m := r.marks[k]
	i := m.pos + int(math.Ceil(t.Sub(m.at).Seconds()*sampleRate))
	if k+1 < len(r.marks) {
		i = min(i, r.marks[k+1].pos)
	}
	return min(i, len(r.pcm))
}

// measurement is what one direction of a call sounded like.
type measurement struct {
	MouthToEar time.Duration // median over the windows that found the signal
	Lag        time.Duration // the same, as samples between the aligned recordings
	Offset     time.Duration // speaker start − microphone start (wall clock)
	SNR        float64       // dB, median over the good windows
	Corr       float64       // median normalised correlation of the good windows
	Good, All  int           // windows that found the signal / windows measured
}

// Found reports whether the far end heard this direction's signal.
func (m measurement) Found() bool { return m.Good >= 2 && m.Good*4 >= m.All }

const (
	measureWindow = sampleRate / 2  // 0.5 s of microphone signal per window
	measureMaxLag = sampleRate      // delays up to 1 s are searched
	measureSlack  = sampleRate / 10 // a window's lag may differ this much from the overall lag
	goodCorr      = 0.8             // a window with less did not find the signal
)

// measure compares what mic captured with what spk played. Both are put on
// the wall-clock timeline first (the devices opened at different moments).
// A cross-correlation over the whole recording finds the overall lag (a
// long stretch makes the peak unambiguous even for stationary tones); then
// each 0.5 s window of microphone signal is looked up again within ±100 ms
// of it, because a jitter buffer moves its delay during a call. Mouth-to-ear
// of a window is the time the speaker played the matched sample minus the
// time the microphone captured it; the result is the median over the
// windows whose correlation shows the signal was found (windows from before
// the call connected are not).
func measure(mic, spk recording) measurement {
	var m measurement
	if len(mic.marks) == 0 || len(spk.marks) == 0 {
		return m
	}
	m.Offset = spk.marks[0].at.Sub(mic.marks[0].at)
	// Skip the earlier recording's head so both start at the same instant.
	offMic, offSpk := 0, 0
	if m.Offset > 0 {
		offMic = mic.indexAt(spk.marks[0].at)
	} else {
		offSpk = spk.indexAt(mic.marks[0].at)
	}
	ref, out := mic.pcm[offMic:], spk.pcm[offSpk:]
	if len(ref) < measureWindow || len(out) < measureWindow {
		return m
	}
	lag0, _ := mediatest.Delay(ref, out[:min(len(out), len(ref)+measureMaxLag)])
	var delays, lags, snrs, corrs []float64
	for s := 0; s+measureWindow <= len(ref); s += measureWindow {
		win := ref[s : s+measureWindow]
		lo := max(s, s+lag0-measureSlack) // causal: the speaker cannot play it before it was said
		hi := min(len(out), s+lag0+measureWindow+measureSlack)
		if hi-lo < measureWindow {
			break
		}
		m.All++
		d, corr := mediatest.Delay(win, out[lo:hi])
		if corr < goodCorr || isSilent(win) {
			continue
		}
		lag := lo + d - s
		mouth := mic.timeAt(offMic + s)
		ear := spk.timeAt(offSpk + s + lag)
		delays = append(delays, float64(ear.Sub(mouth)))
		lags = append(lags, float64(samplesToDuration(lag)))
		snrs = append(snrs, mediatest.SNR(win, out[lo:hi], d))
		corrs = append(corrs, corr)
	}
	m.Good = len(delays)
	m.MouthToEar = time.Duration(mediatest.Median(delays))
	m.Lag = time.Duration(mediatest.Median(lags))
	m.SNR = mediatest.Median(snrs)
	m.Corr = mediatest.Median(corrs)
	return m
}

// isSilent reports a window of digital near-silence, where a correlation
// means nothing.
func isSilent(p []int16) bool {
	var sum float64
	for _, v := range p {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum/float64(max(1, len(p)))) < 30
}

// tapBackend wraps a sound system so that every device it opens records
// into mic (capture) or speaker (playback) what passes through its
// callbacks, with timestamps. It works the same over the virtual backend
// and a real sound card.
type tapBackend struct {
	audio.Backend
	mic, speaker *tap
}

func (b *tapBackend) Open(ctx context.Context, cfg audio.DeviceConfig) (audio.Device, error) {
	d, err := b.Backend.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &tapDevice{Device: d, mic: b.mic, speaker: b.speaker}, nil
}

type tapDevice struct {
	audio.Device
	mic, speaker *tap
}

// Start stamps each capture period when the device delivers it and each
// playback period when the device takes it.
func (d *tapDevice) Start(cb audio.Callbacks) error {
	if capture := cb.Capture; capture != nil {
		cb.Capture = func(pcm []int16) {
			d.mic.add(pcm, time.Now())
			capture(pcm)
		}
	}
	if playback := cb.Playback; playback != nil {
		cb.Playback = func(out []int16) {
			playback(out)
			d.speaker.add(out, time.Now())
		}
	}
	return d.Device.Start(cb)
}
