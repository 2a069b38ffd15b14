package call_test

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/media/mediatest"
	"github.com/dialtone-dev/dialtone/media/pcm"
	"github.com/dialtone-dev/dialtone/signaling/server"
	"github.com/stretchr/testify/require"
)

// BenchmarkDial measures a whole call set-up: Dial → the callee's phone
// rings → auto-accept → both sides Connected, with in-memory signaling,
// WebRTC on loopback and virtual audio. It reports the medians of Dial →
// connected (ms/call; compare with negotiation's BenchmarkSetupBarePion)
// and of Dial → the caller's speaker plays the callee's microphone (a
// tone found in a 10 ms period: ms/heard, measured as BenchmarkRoomJoin
// measures a room's).
func BenchmarkDial(b *testing.B) {
	lab := calltest.NewLab(server.Config{RateLimit: 1e6, RateBurst: 1e6})
	defer lab.Close()
	ctx := context.Background()
	cfg := call.Config{EndToneDuration: -1}
	alice, err := lab.NewPhone(ctx, "alice", calltest.PhoneOptions{Config: cfg})
	require.NoError(b, err)
	bob, err := lab.NewPhone(ctx, "bob", calltest.PhoneOptions{Config: cfg, Mic: pcm.Loop(mediatest.Sine(sec, 600, 0.2))})
	require.NoError(b, err)
	answered := make(chan *call.Call, 1)
	go func() {
		for in := range bob.Incoming() {
			_ = in.Accept(ctx)
			answered <- in
		}
	}()
	durations := make([]time.Duration, 0, b.N)
	heard := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		alice.Speaker.Reset() // the call's devices are closed between calls
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
		heard = append(heard, untilHeard(b, alice.Speaker, map[string]float64{"bob": 600}).Sub(start))
		b.StopTimer()
		c.Hangup()
		for range c.Events() { // to the end: the queue goes with the call
		}
		<-(<-answered).Done() // the next dial must not find bob busy
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(medianMillis(durations), "ms/call")
	b.ReportMetric(medianMillis(heard), "ms/heard")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRoomJoin measures how long a fourth member takes from Join to
// hearing the room: Join → the server's member list → a peer connection
// with each of the three members already in the room → the joiner's
// speaker plays each of their microphones (a tone per member, found in
// 10 ms periods of its mix). In-memory signaling, WebRTC on loopback,
// virtual audio. It reports the medians of join → heard every member
// (ms/join) and of join → connected on both ends of every pair
// (ms/connected: MemberConnected on the joiner for all three, and on each
// of them for the joiner); BenchmarkDial's ms/call is the 1:1 anchor.
func BenchmarkRoomJoin(b *testing.B) {
	lab := calltest.NewLab(server.Config{RateLimit: 1e6, RateBurst: 1e6})
	defer lab.Close()
	ctx := context.Background()
	cfg := call.Config{EndToneDuration: -1}
	connected := make(chan time.Time, 16) // a member saw dave connected
	// Tones of a whole number of periods in a 10 ms playback period.
	tones := map[string]float64{"alice": 400, "bob": 600, "carol": 800}
	for _, u := range []string{"alice", "bob", "carol"} {
		p, err := lab.NewPhone(ctx, u, calltest.PhoneOptions{Config: cfg, Mic: pcm.Loop(mediatest.Sine(sec, tones[u], 0.2))})
		require.NoError(b, err)
		r, err := p.Join(ctx, "bench", call.RoomConfig{})
		require.NoError(b, err)
		go func() {
			for e := range r.Events() {
				if e.Kind == call.MemberConnected && e.Member.User == "dave" {
					connected <- e.Time
				}
			}
		}()
	}
	dave, err := lab.NewPhone(ctx, "dave", calltest.PhoneOptions{Config: cfg})
	require.NoError(b, err)
	heard := make([]time.Duration, 0, b.N)
	linked := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		dave.Speaker.Reset() // the room's devices are closed between joins
		start := time.Now()
		r, err := dave.Join(ctx, "bench", call.RoomConfig{})
		require.NoError(b, err)
		connectedAll := make(chan time.Time, 1)
		go func() {
			seen := 0
			for e := range r.Events() {
				if e.Kind == call.MemberConnected {
					if seen++; seen == 3 {
						connectedAll <- e.Time
					}
				}
			}
			close(connectedAll)
		}()
		heard = append(heard, untilHeard(b, dave.Speaker, tones).Sub(start))
		at, ok := <-connectedAll
		require.True(b, ok, "dave's room ended before connecting to all three")
		for range 3 {
			if t := <-connected; t.After(at) {
				at = t
			}
		}
		linked = append(linked, at.Sub(start))
		b.StopTimer()
		require.NoError(b, r.Leave(ctx))
		for range connectedAll {
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(medianMillis(heard), "ms/join")
	b.ReportMetric(medianMillis(linked), "ms/connected")
	b.ReportMetric(0, "ns/op")
}

// untilHeard waits until every tone has been heard in a 10 ms period of
// spk and returns when the last one was.
func untilHeard(b *testing.B, spk *pcm.Recorder, tones map[string]float64) time.Time {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const period = sec / 100
	missing := maps.Clone(tones)
	for n := period; ; n += period {
		if err := spk.Wait(ctx, n); err != nil {
			b.Fatalf("not heard within 10 s: %v", slices.Collect(maps.Keys(missing)))
		}
		got := spk.Samples()[n-period : n]
		for u, f := range missing {
			if mediatest.ToneShare(got, f) > 0.1 {
				delete(missing, u)
			}
		}
		if len(missing) == 0 {
			return time.Now()
		}
	}
}

// medianMillis is the median of ds in milliseconds.
func medianMillis(ds []time.Duration) float64 {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return float64(ds[len(ds)/2].Microseconds()) / 1000
}
