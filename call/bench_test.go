package call_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
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
		for range c.Events() { // to the end: the queue goes with the call
		}
		<-(<-answered).Done() // the next dial must not find bob busy
		b.StartTimer()
	}
	b.StopTimer()
	sort.Slice(durations, func(i, j int) bool { return durations[i] < durations[j] })
	b.ReportMetric(float64(durations[len(durations)/2].Microseconds())/1000, "ms/call")
	b.ReportMetric(0, "ns/op")
}
