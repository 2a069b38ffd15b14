package main

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dialtone-dev/dialtone/audio"
	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/internal/netimpair"
	"github.com/dialtone-dev/dialtone/media/mediatest"
	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/dialtone-dev/dialtone/signaling/server"
)

// runDialtone calls from one dialtone phone to another, both at their
// defaults (but for -complexity), in one process over an in-process
// signaling server. The caller's microphone speaks; the callee's speaker
// is what is scored.
//
// The media goes through the relay because of what each side is told: the
// caller learns only the relay's address in place of the callee's
// candidate, and the callee learns none of the caller's candidates (it
// finds the caller, as a peer-reflexive candidate, from the checks the
// relay forwards). So the only path ICE can find is the relay.
func runDialtone(ctx context.Context, o options, c condition, speech []int16, seed uint64) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	lab := calltest.NewLab(server.Config{})
	defer lab.Close()

	cfg := call.Config{EndToneDuration: -1, StatsInterval: 100 * time.Millisecond}
	if o.capacity {
		cfg.Codec = call.CapacityCodec()
	}
	if o.complexity != 0 {
		cfg.Codec.Complexity = o.complexity
	}
	cfg.Codec.FrameMillis = c.frameMillis

	mic := &talker{speech: speech}
	var spk mediatest.Timeline
	var backends []*audio.VirtualBackend
	defer func() {
		for _, b := range backends {
			_ = b.Close()
		}
	}()
	relay := &relayRewrite{link: c.link, seed: seed}
	defer relay.close()
	phone := func(user string, devs []audio.VirtualDevice, tr func(signaling.Transport) signaling.Transport) (*call.Phone, error) {
		b := audio.NewVirtualBackend(audio.VirtualBackendConfig{Devices: devs})
		backends = append(backends, b)
		conn, err := lab.Server.ConnectLocal(ctx, user, server.LocalOptions{})
		if err != nil {
			return nil, err
		}
		pc := cfg
		pc.Audio.Backend = b
		pc.SettingEngine = calltest.Loopback()
		return call.NewPhone(tr(conn), pc)
	}
	alice, err := phone("alice", []audio.VirtualDevice{
		{ID: "mic", Direction: audio.Capture, Default: true, Source: mic},
		{ID: "speaker", Direction: audio.Playback, Default: true},
	},
		func(t signaling.Transport) signaling.Transport {
			return &rewriting{Transport: t, rewrite: relay.toCaller}
		})
	if err != nil {
		return result{}, err
	}
	defer alice.Close()
	bob, err := phone("bob", []audio.VirtualDevice{
		{ID: "mic", Direction: audio.Capture, Default: true},
		{ID: "speaker", Direction: audio.Playback, Default: true, Sink: &spk},
	},
		func(t signaling.Transport) signaling.Transport {
			return &rewriting{Transport: t, rewrite: relay.toCallee}
		})
	if err != nil {
		return result{}, err
	}
	defer bob.Close()

	answered := make(chan *call.Call, 1)
	go func() {
		select {
		case in := <-bob.Incoming():
			if in.Accept(ctx) == nil {
				answered <- in
			}
		case <-ctx.Done():
		}
	}()
	out, err := alice.Dial(ctx, "bob")
	if err != nil {
		return result{}, err
	}
	defer out.Hangup()
	var in *call.Call
	select {
	case in = <-answered:
	case <-ctx.Done():
		return result{}, fmt.Errorf("bob did not answer: %w", ctx.Err())
	}
	defer in.Hangup()
	if err := connected(ctx, out); err != nil {
		return result{}, err
	}
	if !relay.used() {
		return result{}, fmt.Errorf("the call did not go through the relay")
	}

	// Let the call settle, then speak and record until the speech plus a
	// second has played, sampling the callee's stats every 100 ms.
	if err := sleep(ctx, settle); err != nil {
		return result{}, err
	}
	start := mic.start()
	before := in.Stats()
	adjust := &adjustments{}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	stop := time.After(time.Duration(len(speech))*time.Second/mediatest.SampleRate + tail)
wait:
	for {
		select {
		case <-tick.C:
			adjust.add(in.Stats().Adjustments)
		case <-stop:
			break wait
		case <-ctx.Done():
			return result{}, ctx.Err()
		}
	}
	after := in.Stats()
	played := time.Since(start)
	if fwd, bwd := relay.stats(); fwd.Sent == 0 || bwd.Sent == 0 {
		return result{}, fmt.Errorf("the relay carried nothing one way: %+v, %+v", fwd, bwd)
	}
	q, err := mediatest.Quality(speech, spk.From(mic.startedAt()))
	if err != nil {
		return result{}, err
	}
	return result{
		mos:         q.MOS,
		mouthToEar:  time.Duration(q.Delay) * time.Second / mediatest.SampleRate,
		concealed:   (after.ConcealedAudio - before.ConcealedAudio).Seconds() / played.Seconds(),
		adjustments: float64(adjust.n) / played.Minutes(),
	}, nil
}

// connected waits until c is connected.
func connected(ctx context.Context, c *call.Call) error {
	for ev := range c.Events() {
		if ev.Kind == call.EventState && ev.State == call.Connected {
			return nil
		}
		if ev.Kind == call.EventState && ev.State == call.Ended {
			return fmt.Errorf("call ended: %s", c.Reason())
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return fmt.Errorf("call ended: %s", c.Reason())
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// adjustments counts changes of the playout delay the way the Chromium
// peer does from getStats: from samples of a counter every 100 ms, a run
// of consecutive samples in which it grew counts once.
type adjustments struct {
	last    uint64
	growing bool
	started bool
	n       int
}

func (a *adjustments) add(v uint64) {
	grew := a.started && v > a.last
	if grew && !a.growing {
		a.n++
	}
	a.last, a.growing, a.started = v, grew, true
}

// talker is the caller's microphone: silence until start, then the
// speech once, then silence.
type talker struct {
	speech  []int16
	on      atomic.Bool
	pos     int
	mu      sync.Mutex
	startAt time.Time
}

// start lets the speech begin with the next period and returns the time.
func (s *talker) start() time.Time {
	s.on.Store(true)
	return time.Now()
}

// startedAt is when the first sample of the speech was captured.
func (s *talker) startedAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startAt
}

func (s *talker) ReadPCM(p []int16) (int, error) {
	clear(p)
	if !s.on.Load() {
		return len(p), nil
	}
	s.mu.Lock()
	if s.pos == 0 {
		s.startAt = time.Now()
	}
	s.mu.Unlock()
	n := copy(p, s.speech[min(s.pos, len(s.speech)):])
	s.pos += n
	return len(p), nil
}

// rewriting is a signaling transport that rewrites the signal messages a
// phone sends.
type rewriting struct {
	signaling.Transport
	rewrite func(signaling.Message) (signaling.Message, bool)
}

func (r *rewriting) Send(ctx context.Context, m signaling.Message) error {
	if m.Type == signaling.TypeSignal {
		var keep bool
		if m, keep = r.rewrite(m); !keep {
			return nil
		}
	}
	return r.Transport.Send(ctx, m)
}

var (
	// hostCandidate is a UDP host candidate on 127.0.0.1 in a candidate
	// line, as it appears in the JSON of a signal (in a trickled
	// candidate or in an SDP).
	hostCandidate = regexp.MustCompile(`127\.0\.0\.1 (\d+) typ host`)
	// sdpCandidate is an a=candidate line of an SDP inside JSON.
	sdpCandidate = regexp.MustCompile(`a=candidate:[^\\]*\\r\\n`)
)

// relayRewrite puts a relay in front of the callee's candidate.
type relayRewrite struct {
	link netimpair.Link
	seed uint64

	mu    sync.Mutex
	relay *netimpair.Relay
	err   error
}

// toCaller rewrites what the callee sends: its candidates name the relay,
// which is started, aimed at the first of them, on first sight.
func (r *relayRewrite) toCaller(m signaling.Message) (signaling.Message, bool) {
	data := hostCandidate.ReplaceAllFunc(m.Data, func(b []byte) []byte {
		port, err := strconv.Atoi(string(hostCandidate.FindSubmatch(b)[1]))
		if err != nil {
			return b
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.relay == nil && r.err == nil {
			r.relay, r.err = netimpair.New(netimpair.Config{
				Target:  netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)),
				Forward: r.link, Backward: r.link, Seed: r.seed, Lossy: audioRTP,
			})
		}
		if r.relay == nil {
			return b
		}
		return fmt.Appendf(nil, "127.0.0.1 %d typ host", r.relay.Addr().Port())
	})
	m.Data = data
	return m, true
}

// toCallee keeps the caller's candidates from the callee: trickled ones
// are dropped, those in an SDP cut out.
func (r *relayRewrite) toCallee(m signaling.Message) (signaling.Message, bool) {
	if hostCandidate.Match(m.Data) && !sdpCandidate.Match(m.Data) {
		return m, false
	}
	m.Data = sdpCandidate.ReplaceAll(m.Data, nil)
	return m, true
}

func (r *relayRewrite) used() bool {
	fwd, bwd := r.stats()
	return fwd.Sent > 0 && bwd.Sent > 0
}

func (r *relayRewrite) stats() (fwd, bwd netimpair.Stats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.relay == nil {
		return
	}
	return r.relay.Stats()
}

func (r *relayRewrite) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.relay != nil {
		_ = r.relay.Close()
	}
}
