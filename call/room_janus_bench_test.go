package call_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/audio"
	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/internal/janustest"
	"github.com/dialtone-dev/dialtone/janus"
	"github.com/dialtone-dev/dialtone/media"
	"github.com/dialtone-dev/dialtone/media/mediatest"
	"github.com/dialtone-dev/dialtone/media/pcm"
	"github.com/dialtone-dev/dialtone/signaling/server"
	"github.com/stretchr/testify/require"
)

// firstSound stamps the first period a speaker plays that is not silence.
type firstSound struct {
	mu sync.Mutex
	at time.Time
}

func (f *firstSound) playback(p []int16) {
	var sum float64
	for _, v := range p {
		sum += float64(v) * float64(v)
	}
	if len(p) == 0 || math.Sqrt(sum/float64(len(p))) < 300 {
		return
	}
	f.mu.Lock()
	if f.at.IsZero() {
		f.at = time.Now()
	}
	f.mu.Unlock()
}

func (f *firstSound) take() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	at := f.at
	f.at = time.Time{}
	return at
}

// mouthProbe is a talker whose microphone plays a probe signal and a
// listener whose speaker is recorded, to measure mouth-to-ear delay through
// a Janus room (or a call) between them.
type mouthProbe struct {
	talker, listener *calltest.Phone
	mic, spk         mediatest.Timeline
	first            firstSound
}

func newMouthProbe(tb testing.TB, l *janusLab) *mouthProbe {
	tb.Helper()
	ctx := context.Background()
	p := &mouthProbe{}
	talkSound := audio.NewVirtualBackend(audio.VirtualBackendConfig{Devices: []audio.VirtualDevice{
		{ID: "mic", Direction: audio.Capture, Default: true, Source: pcm.Loop(mediatest.ProbeTone(5*sec, 3))},
		{ID: "speaker", Direction: audio.Playback, Default: true},
	}})
	tb.Cleanup(func() { talkSound.Close() })
	listenSound := audio.NewVirtualBackend(audio.VirtualBackendConfig{Devices: []audio.VirtualDevice{
		{ID: "mic", Direction: audio.Capture, Default: true},
		{ID: "speaker", Direction: audio.Playback, Default: true},
	}})
	tb.Cleanup(func() { listenSound.Close() })
	cfg := l.phoneConfig()
	cfg.Audio.Backend = audio.Tap(talkSound, audio.Callbacks{Capture: p.mic.Add})
	var err error
	p.talker, err = l.lab.NewPhone(ctx, "talker", calltest.PhoneOptions{Config: cfg})
	require.NoError(tb, err)
	cfg.Audio.Backend = audio.Tap(listenSound, audio.Callbacks{Playback: func(s []int16) { p.spk.Add(s); p.first.playback(s) }})
	p.listener, err = l.lab.NewPhone(ctx, "listener", calltest.PhoneOptions{Config: cfg})
	require.NoError(tb, err)
	return p
}

// heard waits for the listener's first sound and returns how long after
// start it played, in ms.
func (p *mouthProbe) heard(tb testing.TB, start time.Time) float64 {
	tb.Helper()
	require.Eventually(tb, func() bool {
		p.first.mu.Lock()
		defer p.first.mu.Unlock()
		return !p.first.at.IsZero()
	}, 10*time.Second, 5*time.Millisecond, "the listener hears the talker")
	return float64(p.first.take().Sub(start)) / 1e6
}

// measure returns the mouth-to-ear delay (ms) of a clean 2 s stretch
// starting settle after now, trying up to tries stretches. Everything runs
// on the real clock of a shared machine: a CPU spike can spoil a stretch
// (or swell the jitter buffers past the 1 s the measurement searches).
func (p *mouthProbe) measure(tb testing.TB, settle time.Duration, tries int) (float64, bool) {
	tb.Helper()
	from := time.Now().Add(settle)
	for range tries {
		until := from.Add(2 * time.Second)
		require.Eventually(tb, func() bool { return p.spk.Since(until) > sec }, 10*time.Second, 10*time.Millisecond)
		m := mediatest.MouthToEar(&p.mic, &p.spk, mediatest.MouthToEarConfig{From: from, Until: until, Slack: 50 * time.Millisecond})
		if m.Found() && m.Good == m.All {
			return float64(m.MouthToEar) / 1e6, true
		}
		tb.Logf("stretch not clean: %d/%d windows good", m.Good, m.All)
		from = until
	}
	return 0, false
}

// joinSettle is how long a measurement waits after a join's first audio:
// the receiver's jitter buffer starts deep and adapts down to the link.
const joinSettle = 1500 * time.Millisecond

// janusJoin is one join of the listener to a room the talker is in.
type janusJoin struct {
	heard, m2e float64 // ms: join to first audio, mouth-to-ear (0: missed)
	stats      media.ReceiverStats
}

// join puts the talker, then the listener, in room (created with
// prebuffering pre, or Janus's default when negative), measures, and
// leaves.
func (p *mouthProbe) join(tb testing.TB, l *janusLab, room uint64, pre int) janusJoin {
	tb.Helper()
	ctx := context.Background()
	jr := call.JanusRoom{API: l.api(), Room: room, Create: &janus.RoomOptions{Prebuffering: pre}}
	tr, err := p.talker.JoinJanus(ctx, jr, call.RoomConfig{})
	require.NoError(tb, err)
	defer tr.Leave(ctx)
	p.first.take()
	start := time.Now()
	lr, err := p.listener.JoinJanus(ctx, jr, call.RoomConfig{})
	require.NoError(tb, err)
	defer lr.Leave(ctx)
	var j janusJoin
	j.heard = p.heard(tb, start)
	j.m2e, _ = p.measure(tb, joinSettle, 3)
	if rc := call.JanusReceiver(lr); rc != nil {
		j.stats = rc.Stats()
	}
	return j
}

// BenchmarkJanusRoom measures a Janus AudioBridge room with two members:
// a talker whose microphone plays a probe signal, already in the room, and
// a listener who joins. It reports the median time from the listener's
// JoinJanus call to the first mixed audio its speaker plays
// (ms/join-to-audio), and the talker's mouth to the listener's ear through
// the mixer, median and worst join (ms/mouth-to-ear, ms/mouth-to-ear-max),
// at Janus's default prebuffering (6 packets) and at
// janus.DefaultPrebuffering (2), what JoinJanus creates rooms with. A join
// without a clean stretch of audio is left out and counted (missed). The
// anchor, direct-call, is the mouth-to-ear of a 1:1 call between the same
// phones on the same link.
//
//	go test -run '^$' -bench BenchmarkJanusRoom -benchtime 7x -p 1 ./call
func BenchmarkJanusRoom(b *testing.B) {
	srv := janustest.Start(b, janustest.Options{})
	lab := calltest.NewLab(server.Config{})
	defer lab.Close()
	l := &janusLab{srv: srv, lab: lab}
	p := newMouthProbe(b, l)
	ctx := context.Background()

	room := uint64(100)
	for _, pre := range []int{-1, janus.DefaultPrebuffering} {
		name := fmt.Sprintf("prebuffering=%d", pre)
		if pre < 0 {
			name = "prebuffering=janus-default"
		}
		b.Run(name, func(b *testing.B) {
			var joins, m2e, targets []float64
			var late []uint64
			missed := 0
			for range b.N {
				room++
				j := p.join(b, l, room, pre)
				joins = append(joins, j.heard)
				late = append(late, j.stats.Late)
				targets = append(targets, float64(j.stats.Target)/1e6)
				if j.m2e > 0 {
					m2e = append(m2e, j.m2e)
				} else {
					missed++
				}
			}
			b.ReportMetric(median(joins), "ms/join-to-audio")
			b.ReportMetric(median(m2e), "ms/mouth-to-ear")
			b.ReportMetric(slices.Max(append(m2e, 0)), "ms/mouth-to-ear-max")
			b.ReportMetric(float64(missed), "missed")
			// One line: a benchmark's log keeps ten.
			b.Logf("join→audio ms %v; mouth-to-ear ms %v; the listener's jitter buffer at the end: late packets %v, target ms %v",
				round(joins), round(m2e), late, round(targets))
		})
	}
	// The anchor: the same two phones in a 1:1 call, on the same link.
	b.Run("direct-call", func(b *testing.B) {
		var m2e []float64
		missed := 0
		for range b.N {
			func() {
				p.first.take()
				answered := make(chan *call.Call, 1)
				go func() {
					in, ok := <-p.listener.Incoming()
					if ok {
						_ = in.Accept(ctx)
					}
					answered <- in
				}()
				c, err := p.talker.Dial(ctx, "listener")
				require.NoError(b, err)
				defer func() {
					c.Hangup()
					<-c.Done()
					if in := <-answered; in != nil {
						<-in.Done()
					}
				}()
				p.heard(b, time.Now())
				if d, ok := p.measure(b, joinSettle, 3); ok {
					m2e = append(m2e, d)
				} else {
					missed++
				}
			}()
		}
		b.ReportMetric(median(m2e), "ms/mouth-to-ear")
		b.ReportMetric(slices.Max(append(m2e, 0)), "ms/mouth-to-ear-max")
		b.ReportMetric(float64(missed), "missed")
		b.Logf("mouth-to-ear ms %v", round(m2e))
	})
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func round(v []float64) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(math.Round(x))
	}
	return out
}
