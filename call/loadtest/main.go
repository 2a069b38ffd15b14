// Command loadtest holds many two-way calls in one process and measures how
// well it keeps up: 2N phones, each with its own virtual microphone and
// speaker, connected to an in-process signaling server (calltest), Opus both
// ways over WebRTC on 127.0.0.1. After a warm-up it samples every call over
// a window and prints the calls held, the share of audio the receivers of
// both ends concealed (the sign of a process that cannot keep up), late
// packets per call and second, underruns per call and minute, the share of
// audio the jitter buffers stretched or compressed and their mean delay at
// the end, the CPU the process used in cores (and the CPU other processes
// took, which spoils the figure), and how long goroutines waited to run
// (p99, p99.9).
//
//	go run ./call/loadtest -calls 100
//	go run ./call/loadtest -calls 100 -app audio -complexity 1 -bandwidth wide
//
// -trace FILE writes an execution trace of the window's first 4 s (go tool
// trace), to see what a burst of late packets comes from. Run it without
// the race detector, on a machine nothing else loads.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/trace"
	"time"

	"github.com/dialtone-dev/dialtone/audio"
	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/internal/cpuload"
	"github.com/dialtone-dev/dialtone/media"
	"github.com/dialtone-dev/dialtone/media/mediatest"
	"github.com/dialtone-dev/dialtone/media/pcm"
	"github.com/dialtone-dev/dialtone/signaling/server"
)

var (
	bandwidths = map[string]media.OpusBandwidth{
		"full": media.OpusFullband, "superwide": media.OpusSuperWideband,
		"wide": media.OpusWideband, "narrow": media.OpusNarrowband,
	}
	applications = map[string]media.OpusApplication{
		"voip": media.OpusVoIP, "audio": media.OpusAudio, "lowdelay": media.OpusLowDelay,
	}
)

// options are the command line's settings.
type options struct {
	calls      int
	complexity int
	bandwidth  media.OpusBandwidth
	app        media.OpusApplication
	window     time.Duration
	warmup     time.Duration
	trace      string
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		os.Exit(2)
	}
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		o         options
		bandwidth string
		app       string
	)
	fs.IntVar(&o.calls, "calls", 20, "two-way calls to hold (2N phones)")
	fs.IntVar(&o.complexity, "complexity", 0, "Opus complexity 1-10 (0: media.DefaultOpusComplexity)")
	fs.StringVar(&bandwidth, "bandwidth", "full", "Opus bandwidth cap: full, superwide, wide or narrow")
	fs.StringVar(&app, "app", "voip", "Opus application: voip, audio or lowdelay")
	fs.DurationVar(&o.window, "window", 10*time.Second, "how long to measure, after the warm-up")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "how long the calls settle before the window")
	fs.StringVar(&o.trace, "trace", "", "write an execution trace of the window's first 4 s to this file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var ok bool
	if o.bandwidth, ok = bandwidths[bandwidth]; !ok {
		err := fmt.Errorf("-bandwidth %q: want full, superwide, wide or narrow", bandwidth)
		fmt.Fprintln(stderr, err)
		return o, err
	}
	if o.app, ok = applications[app]; !ok {
		err := fmt.Errorf("-app %q: want voip, audio or lowdelay", app)
		fmt.Fprintln(stderr, err)
		return o, err
	}
	if o.calls < 1 || o.window <= 0 || o.warmup < 0 {
		err := errors.New("-calls and -window must be positive, -warmup not negative")
		fmt.Fprintln(stderr, err)
		return o, err
	}
	return o, nil
}

func run(o options, out io.Writer) error {
	// Closed after the lab, whose phones use them.
	var backends []*audio.VirtualBackend
	defer func() {
		for _, b := range backends {
			_ = b.Close()
		}
	}()
	lab := calltest.NewLab(server.Config{RateLimit: 1e6, RateBurst: 1e6})
	defer lab.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := call.Config{EndToneDuration: -1, StatsInterval: time.Second}
	cfg.Codec.Complexity = o.complexity
	cfg.Codec.MaxBandwidth = o.bandwidth
	cfg.Codec.Application = o.app

	// The speakers discard what they play: recording 2N streams would
	// measure the recorder's memory traffic, not the calls.
	phone := func(user string, seed uint64) (*calltest.Phone, error) {
		c := cfg
		b := audio.NewVirtualBackend(audio.VirtualBackendConfig{Devices: []audio.VirtualDevice{
			{ID: "mic", Direction: audio.Capture, Default: true, Source: pcm.Loop(mediatest.SpeechLike(media.SampleRate, seed))},
			{ID: "speaker", Direction: audio.Playback, Default: true},
		}})
		backends = append(backends, b)
		c.Audio.Backend = b
		return lab.NewPhone(ctx, user, calltest.PhoneOptions{Config: c})
	}
	calls := make([]*call.Call, 0, 2*o.calls)
	defer func() {
		for _, c := range calls {
			c.Hangup()
		}
	}()
	for i := range o.calls {
		a, err := phone(fmt.Sprintf("a%d", i), uint64(i))
		if err != nil {
			return err
		}
		b, err := phone(fmt.Sprintf("b%d", i), uint64(i+1000))
		if err != nil {
			return err
		}
		out, in, err := connect(ctx, a, b)
		if err != nil {
			return fmt.Errorf("call %d: %w", i, err)
		}
		calls = append(calls, out, in)
	}

	// Measure the steady state only: let the last set-ups settle, then
	// compare two samples a window apart.
	<-time.After(o.warmup)
	s0 := snapshot(calls)
	if o.trace != "" {
		stop, err := startTrace(o.trace)
		if err != nil {
			return err
		}
		traced := min(o.window, 4*time.Second)
		<-time.After(traced)
		if err := stop(); err != nil {
			return err
		}
		<-time.After(o.window - traced)
	} else {
		<-time.After(o.window)
	}
	s1 := snapshot(calls)
	report(out, o, len(calls), s0, s1)
	return nil
}

// connect has a call b and waits until both ends are connected.
func connect(ctx context.Context, a, b *calltest.Phone) (out, in *call.Call, err error) {
	answered := make(chan *call.Call, 1)
	go func() {
		defer close(answered)
		select {
		case in, ok := <-b.Incoming():
			if ok {
				_ = in.Accept(ctx)
				answered <- in
			}
		case <-ctx.Done():
		}
	}()
	out, err = a.Dial(ctx, b.User())
	if err != nil {
		return nil, nil, err
	}
	for e := range out.Events() {
		if e.Kind == call.EventState && e.State == call.Connected {
			break
		}
		if e.Kind == call.EventState && e.State == call.Ended {
			return nil, nil, fmt.Errorf("ended %s before connecting", e.Reason)
		}
	}
	in, ok := <-answered
	if !ok {
		out.Hangup()
		return nil, nil, errors.New("the callee never saw the call")
	}
	return out, in, nil
}

type sample struct {
	concealed, received, late, underruns uint64
	stretched, buffered                  time.Duration
	cpu                                  cpuload.Sample
	sched                                cpuload.Sched
}

func snapshot(calls []*call.Call) (s sample) {
	for _, c := range calls {
		st := c.Stats()
		s.concealed += st.Concealed
		s.received += st.PacketsReceived
		s.late += st.Late
		s.underruns += st.Underruns
		s.stretched += st.Inserted + st.Removed
		s.buffered += st.BufferDelay
	}
	s.cpu = cpuload.Now()
	s.sched = cpuload.SchedNow()
	return s
}

func report(out io.Writer, o options, ends int, s0, s1 sample) {
	n, window := float64(o.calls), o.window
	fmt.Fprintf(out, "calls                %d\n", o.calls)
	fmt.Fprintf(out, "concealed            %.3f %%\n", 100*float64(s1.concealed-s0.concealed)/float64(max(1, s1.received-s0.received)))
	fmt.Fprintf(out, "late                 %.3f /call/s\n", float64(s1.late-s0.late)/n/window.Seconds())
	// Packets that came after their play-out time and played after a
	// wait: with late ones, the glitches a listener hears.
	fmt.Fprintf(out, "underruns            %.3f /call/min\n", float64(s1.underruns-s0.underruns)/n/window.Minutes())
	// Audio the jitter buffers inserted or removed to move their delay, as
	// a share of the audio played, and their mean delay at the end.
	fmt.Fprintf(out, "stretched            %.3f %%\n", 100*(s1.stretched-s0.stretched).Seconds()/(float64(ends)*window.Seconds()))
	fmt.Fprintf(out, "buffer delay         %.1f ms\n", float64(s1.buffered.Milliseconds())/float64(ends))
	self, others := s1.cpu.Cores(s0.cpu, window)
	fmt.Fprintf(out, "cores                %.2f\n", self)
	// CPU other processes took meanwhile: a busy machine spoils the figure.
	fmt.Fprintf(out, "other processes      %.2f cores\n", others)
	// CPU the hypervisor withheld from this virtual machine: the same.
	fmt.Fprintf(out, "steal                %.2f cores\n", s1.cpu.StealCores(s0.cpu, window))
	// How long goroutines waited to run: what late packets come from.
	sched := s1.sched.Since(s0.sched)
	fmt.Fprintf(out, "sched wait p99       %.2f ms\n", float64(sched.Quantile(0.99))/1e6)
	fmt.Fprintf(out, "sched wait p99.9     %.2f ms\n", float64(sched.Quantile(0.999))/1e6)
}

// startTrace writes a runtime execution trace to path until the returned
// function is called.
func startTrace(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := trace.Start(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() error {
		trace.Stop()
		return f.Close()
	}, nil
}
