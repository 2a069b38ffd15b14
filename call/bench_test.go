package call_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/media"
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
// process, each with its own virtual devices, Opus both ways) for a few
// seconds and reports how many calls were held and the audio
// concealment rate on their receivers over 5 s of steady state, the sign of
// a process that cannot keep up. Run with -benchtime=1x, DIALTONE_CALLS=N
// and optionally DIALTONE_COMPLEXITY=c (Opus complexity).
func BenchmarkConcurrentCalls(b *testing.B) {
	n := envInt("DIALTONE_CALLS", 20)
	lab := calltest.NewLab(server.Config{RateLimit: 1e6, RateBurst: 1e6})
	defer lab.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := call.Config{EndToneDuration: -1, StatsInterval: time.Second}
	cfg.Codec.Complexity = envInt("DIALTONE_COMPLEXITY", 0) // 0: the default
	calls := make([]*call.Call, 0, n)
	for i := range n {
		a, err := lab.NewPhone(ctx, fmt.Sprintf("a%d", i), calltest.PhoneOptions{Config: cfg, Mic: media.LoopSamples(signalFor(uint64(i), 1))})
		require.NoError(b, err)
		bp, err := lab.NewPhone(ctx, fmt.Sprintf("b%d", i), calltest.PhoneOptions{Config: cfg, Mic: media.LoopSamples(signalFor(uint64(i+1000), 1))})
		require.NoError(b, err)
		go func() {
			if in, ok := <-bp.Incoming(); ok {
				_ = in.Accept(ctx)
			}
		}()
		c, err := a.Dial(ctx, bp.User())
		require.NoError(b, err)
		for e := range c.Events() {
			if e.Kind == call.EventState && (e.State == call.Connected || e.State == call.Ended) {
				require.Equal(b, call.Connected, e.State)
				break
			}
		}
		calls = append(calls, c)
	}
	// Measure the steady state only: let the last set-ups settle, then
	// compare two stats samples 5 s apart.
	<-time.After(1500 * time.Millisecond)
	snapshot := func() (concealed, received uint64) {
		for _, c := range calls {
			st := c.Stats()
			concealed += st.Concealed
			received += st.PacketsReceived
		}
		return concealed, received
	}
	c0, r0 := snapshot()
	b.ResetTimer()
	<-time.After(5 * time.Second)
	b.StopTimer()
	c1, r1 := snapshot()
	concealed, received := c1-c0, r1-r0
	for _, c := range calls {
		c.Hangup()
	}
	b.ReportMetric(float64(n), "calls")
	b.ReportMetric(100*float64(concealed)/float64(max(1, received)), "%concealed")
	b.ReportMetric(0, "ns/op")
}
