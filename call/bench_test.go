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
	benchDial(b, lab, call.Config{EndToneDuration: -1})
}

// BenchmarkDialRelayOnly is BenchmarkDial with RelayOnly phones whose
// media goes through the server's embedded TURN relay on 127.0.0.1, with
// the credentials the server hands out: the time a user who asked for
// relay only waits for a call. BenchmarkDial is its anchor.
func BenchmarkDialRelayOnly(b *testing.B) {
	secret := []byte("bench-secret")
	turn, err := server.NewTURN(server.TURNConfig{ListenAddr: "127.0.0.1:0", Secret: secret, AllowLoopbackPeers: true})
	require.NoError(b, err)
	defer turn.Close()
	lab := calltest.NewLab(server.Config{RateLimit: 1e6, RateBurst: 1e6, TURNURLs: turn.URLs(), TURNSecret: secret})
	defer lab.Close()
	benchDial(b, lab, call.Config{EndToneDuration: -1, RelayOnly: true})
}

func benchDial(b *testing.B, lab *calltest.Lab, cfg call.Config) {
	ctx := context.Background()
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

// BenchmarkRoomJoin measures how long a fourth member takes from Join to
// a working mesh: Join → the server's member list → a peer connection
// with each of the three members already in the room, connected on both
// ends (MemberConnected on the joiner for all three, and on each of them
// for the joiner). In-memory signaling, WebRTC on loopback, virtual audio.
// It reports the median ms per join (ms/join); BenchmarkDial's ms/call is
// the 1:1 anchor.
func BenchmarkRoomJoin(b *testing.B) {
	lab := calltest.NewLab(server.Config{RateLimit: 1e6, RateBurst: 1e6})
	defer lab.Close()
	ctx := context.Background()
	cfg := call.Config{EndToneDuration: -1}
	connected := make(chan string, 16) // "member saw user"
	for _, u := range []string{"alice", "bob", "carol"} {
		p, err := lab.NewPhone(ctx, u, calltest.PhoneOptions{Config: cfg})
		require.NoError(b, err)
		r, err := p.Join(ctx, "bench", call.RoomConfig{})
		require.NoError(b, err)
		go func() {
			for e := range r.Events() {
				if e.Kind == call.MemberConnected && e.Member.User == "dave" {
					connected <- u
				}
			}
		}()
	}
	dave, err := lab.NewPhone(ctx, "dave", calltest.PhoneOptions{Config: cfg})
	require.NoError(b, err)
	durations := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		r, err := dave.Join(ctx, "bench", call.RoomConfig{})
		require.NoError(b, err)
		seen := 0
		for e := range r.Events() {
			if e.Kind == call.MemberConnected {
				if seen++; seen == 3 {
					break
				}
			}
		}
		for range 3 {
			<-connected
		}
		durations = append(durations, time.Since(start))
		b.StopTimer()
		require.NoError(b, r.Leave(ctx))
		for range r.Events() { // to the end: the queue goes with the room
		}
		b.StartTimer()
	}
	b.StopTimer()
	sort.Slice(durations, func(i, j int) bool { return durations[i] < durations[j] })
	b.ReportMetric(float64(durations[len(durations)/2].Microseconds())/1000, "ms/join")
	b.ReportMetric(0, "ns/op")
}
