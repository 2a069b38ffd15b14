package call_test

import (
	"context"
	"fmt"
	"os"
	"runtime/trace"
	"sort"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/audio"
	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/internal/cpuload"
	"github.com/dialtone-dev/dialtone/media"
	"github.com/dialtone-dev/dialtone/pcm"
	"github.com/dialtone-dev/dialtone/signaling/server"
	"github.com/stretchr/testify/require"
)

// BenchmarkDial measures a whole call set-up: Dial → the callee's phone
// rings → auto-accept → both sides Connected, with in-memory signaling,
// WebRTC on loopback and virtual audio. It reports the median ms per call
// (ms/call); compare with negotiation's BenchmarkSetupBarePion.
func BenchmarkDial(b *testing.B) {
	lab := calltest.NewLab(server.Config{RateLimit: 1e6, RateBurst: 1e6})
	defer lab.Close()
	ctx := context.Background()
	cfg := call.Config{EndToneDuration: -1}
	alice, err := lab.NewPhone(ctx, "alice", calltest.PhoneOptions{Config: cfg})
	require.NoError(b, err)
	bob, err := lab.NewPhone(ctx, "bob", calltest.PhoneOptions{Config: cfg})
	require.NoError(b, err)
	answered := make(chan *call.Call, 1)
	go func() {
		for in := range bob.Incoming() {
			_ = in.Accept(ctx)
			answered <- in
		}
	}()
	durations := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		c, err := alice.Dial(ctx, "bob")
		require.NoError(b, err)
		for e := range c.Events() {
			if e.Kind == call.EventState && e.State == call.Connected {
				break
			}
			if e.Kind == call.EventState && e.State == call.Ended {
				b.Fatalf("call ended: %s", e.Reason)
			}
		}
		durations = append(durations, time.Since(start))
		b.StopTimer()
		c.Hangup()
		<-c.Done()
		<-(<-answered).Done() // the next dial must not find bob busy
		b.StartTimer()
	}
	b.StopTimer()
	sort.Slice(durations, func(i, j int) bool { return durations[i] < durations[j] })
	b.ReportMetric(float64(durations[len(durations)/2].Microseconds())/1000, "ms/call")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkConcurrentCalls holds N two-way calls (2N phones, all in this
// process, each with its own virtual devices, Opus both ways) and reports,
// over 10 s of steady state after 5 s of warm-up (DIALTONE_WINDOW_S,
// DIALTONE_WARMUP_MS): the calls held, the share of audio the
// receivers of both ends concealed (the sign of a process that cannot keep
// up), late packets per call and second, the share of audio the jitter
// buffers stretched or compressed and their mean delay at the end, the CPU
// the process used in cores (and the CPU other processes took, which
// spoils the figure), and how long goroutines waited to run (p99, p99.9).
// Run with -benchtime=1x, DIALTONE_CALLS=N and optionally DIALTONE_COMPLEXITY=c
// (Opus complexity) and DIALTONE_BANDWIDTH=b (media.OpusBandwidth: 2 is
// wideband). DIALTONE_TRACE=file writes an execution trace of the
// window's first 4 s. The README lists the figures.
func BenchmarkConcurrentCalls(b *testing.B) {
	n := envInt("DIALTONE_CALLS", 20)
	lab := calltest.NewLab(server.Config{RateLimit: 1e6, RateBurst: 1e6})
	defer lab.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := call.Config{EndToneDuration: -1, StatsInterval: time.Second}
	cfg.Codec.Complexity = envInt("DIALTONE_COMPLEXITY", 0) // 0: the default
	cfg.Codec.MaxBandwidth = media.OpusBandwidth(envInt("DIALTONE_BANDWIDTH", 0))
	cfg.Codec.Application = media.OpusApplication(envInt("DIALTONE_APP", 0))
	// The speakers discard what they play: recording 2N streams would
	// measure the recorder's memory traffic, not the calls.
	phone := func(user string, seed uint64) *calltest.Phone {
		c := cfg
		c.Audio.Backend = audio.NewVirtualBackend(audio.VirtualBackendConfig{Devices: []audio.VirtualDevice{
			{ID: "mic", Direction: audio.Capture, Default: true, Source: pcm.Loop(signalFor(seed, 1))},
			{ID: "speaker", Direction: audio.Playback, Default: true},
		}})
		p, err := lab.NewPhone(ctx, user, calltest.PhoneOptions{Config: c})
		require.NoError(b, err)
		b.Cleanup(func() { _ = c.Audio.Backend.(*audio.VirtualBackend).Close() })
		return p
	}
	calls := make([]*call.Call, 0, 2*n)
	for i := range n {
		a := phone(fmt.Sprintf("a%d", i), uint64(i))
		bp := phone(fmt.Sprintf("b%d", i), uint64(i+1000))
		answered := make(chan *call.Call, 1)
		go func() {
			if in, ok := <-bp.Incoming(); ok {
				_ = in.Accept(ctx)
				answered <- in
			}
			close(answered)
		}()
		c, err := a.Dial(ctx, bp.User())
		require.NoError(b, err)
		for e := range c.Events() {
			if e.Kind == call.EventState && (e.State == call.Connected || e.State == call.Ended) {
				require.Equal(b, call.Connected, e.State)
				break
			}
		}
		in, ok := <-answered
		require.True(b, ok, "callee never saw the call")
		calls = append(calls, c, in)
	}
	// Measure the steady state only: let the last set-ups settle
	// (DIALTONE_WARMUP_MS), then compare two samples DIALTONE_WINDOW_S apart.
	<-time.After(time.Duration(envInt("DIALTONE_WARMUP_MS", 5000)) * time.Millisecond)
	type sample struct {
		concealed, received, late, underruns uint64
		stretched, buffered                  time.Duration
		cpu                                  cpuload.Sample
		sched                                cpuload.Sched
	}
	snapshot := func() (s sample) {
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
	window := time.Duration(envInt("DIALTONE_WINDOW_S", 10)) * time.Second
	s0 := snapshot()
	b.ResetTimer()
	if path := os.Getenv("DIALTONE_TRACE"); path != "" {
		// An execution trace of the window's first seconds (go tool trace;
		// -d=parsed dumps it as text), to see what a burst of late packets
		// comes from.
		stop := startTrace(b, path)
		<-time.After(min(window, 4*time.Second))
		stop()
		<-time.After(window - min(window, 4*time.Second))
	} else {
		<-time.After(window)
	}
	b.StopTimer()
	s1 := snapshot()
	for _, c := range calls {
		c.Hangup()
	}
	b.ReportMetric(float64(n), "calls")
	b.ReportMetric(100*float64(s1.concealed-s0.concealed)/float64(max(1, s1.received-s0.received)), "%concealed")
	b.ReportMetric(float64(s1.late-s0.late)/float64(n)/window.Seconds(), "late/call/s")
	// Packets that came after their play-out time and played after a wait:
	// with late ones, the glitches a listener hears.
	b.ReportMetric(float64(s1.underruns-s0.underruns)/float64(n)/window.Minutes(), "underruns/call/min")
	// Audio the jitter buffers inserted or removed to move their delay, as
	// a share of the audio played, and their mean delay at the end.
	b.ReportMetric(100*(s1.stretched-s0.stretched).Seconds()/(float64(len(calls))*window.Seconds()), "%stretched")
	b.ReportMetric(float64(s1.buffered.Milliseconds())/float64(len(calls)), "buffer-ms")
	self, others := s1.cpu.Cores(s0.cpu, window)
	b.ReportMetric(self, "cores")
	// CPU other processes took meanwhile: a busy machine spoils the figure.
	b.ReportMetric(others, "other-cores")
	// How long goroutines waited to run: what late packets come from.
	sched := s1.sched.Since(s0.sched)
	b.ReportMetric(float64(sched.Quantile(0.99))/1e6, "sched-p99-ms")
	b.ReportMetric(float64(sched.Quantile(0.999))/1e6, "sched-p99.9-ms")
	b.ReportMetric(0, "ns/op")
}

// startTrace writes a runtime execution trace to path until the returned
// function is called.
func startTrace(b *testing.B, path string) (stop func()) {
	f, err := os.Create(path)
	require.NoError(b, err)
	require.NoError(b, trace.Start(f))
	return func() {
		trace.Stop()
		require.NoError(b, f.Close())
	}
}
