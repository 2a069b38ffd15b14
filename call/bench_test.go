package call_test

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/audio"
	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/internal/cpuload"
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

// BenchmarkRoomCPU holds a room of 4 and of 8 members in one process,
// every member a lab phone with virtual devices and a speech-like
// microphone of its own (everyone talks at once), and measures b.N seconds
// of it once the mesh is up and the jitter buffers have settled. It
// reports the CPU the process used per second of the room's audio
// (cores), that per member (cores/member), what other processes took
// meanwhile (other-cores: a run where they took much is spoiled), the
// cores the hypervisor withheld (steal-cores: the same, from the host), the
// late frames of every member's every stream (late-frames: packets that
// came after their play-out time plus underruns, as call/loadtest counts
// them) and the frames each member's sender encoded per second
// (encodes/member·s), which stays at one per 20 ms frame whatever the
// number of members: the microphone is encoded once and the packet goes
// to every peer connection.
func BenchmarkRoomCPU(b *testing.B) {
	for _, n := range []int{4, 8} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) { benchRoomCPU(b, n) })
	}
}

func benchRoomCPU(b *testing.B, n int) {
	lab := calltest.NewLab(server.Config{RateLimit: 1e6, RateBurst: 1e6})
	defer lab.Close()
	ctx := context.Background()
	cfg := call.Config{EndToneDuration: -1, StatsInterval: 500 * time.Millisecond}
	var phones []*calltest.Phone
	var stats []*roomStats
	for i := range n {
		u := fmt.Sprintf("m%d", i)
		p, err := lab.NewPhone(ctx, u, calltest.PhoneOptions{Config: cfg, Mic: pcm.Loop(mediatest.SpeechLike(10*sec, uint64(i+1)))})
		require.NoError(b, err)
		r, err := p.Join(ctx, "cpu", call.RoomConfig{})
		require.NoError(b, err)
		phones = append(phones, p)
		stats = append(stats, collectRoomStats(r))
	}
	for _, s := range stats {
		require.NoError(b, s.waitConnected(ctx, n-1, 30*time.Second))
	}
	// Settle, as call/loadtest's warm-up: the jitter buffers adapt to the
	// process's scheduling delays in the first seconds, and every stream
	// has a stats sample.
	spk := phones[0].Speaker
	require.NoError(b, spk.Wait(ctx, spk.Len()+5*sec))

	b.ResetTimer()
	s0, cpu0, t0 := snapshotRoomStats(stats), cpuload.Now(), time.Now()
	require.NoError(b, spk.Wait(ctx, spk.Len()+b.N*sec))
	cpu1, t1 := cpuload.Now(), time.Now()
	// The last stats sample of the window, up to one interval later.
	require.NoError(b, spk.Wait(ctx, spk.Len()+sec/2))
	s1 := snapshotRoomStats(stats)
	b.StopTimer()

	self, others := cpu1.Cores(cpu0, t1.Sub(t0))
	b.ReportMetric(self, "cores")
	b.ReportMetric(self/float64(n), "cores/member")
	b.ReportMetric(others, "other-cores")
	b.ReportMetric(cpu1.StealCores(cpu0, t1.Sub(t0)), "steal-cores")
	b.ReportMetric(float64(s1.late-s0.late), "late-frames")
	b.ReportMetric(float64(s1.streams), "streams")
	var rates []float64
	for i := range n {
		dt := s1.sentAt[i].Sub(s0.sentAt[i]).Seconds()
		require.Positive(b, dt, "stats of member %d's sender", i)
		rates = append(rates, float64(s1.sent[i]-s0.sent[i])/dt)
	}
	slices.Sort(rates)
	b.ReportMetric(rates[len(rates)/2], "encodes/member·s")
	b.ReportMetric(0, "ns/op")
}

// roomStats keeps the latest stats sample of each stream of one member's
// room (MemberStats) and counts its MemberConnected.
type roomStats struct {
	mu        sync.Mutex
	latest    map[string]call.Stats
	connected int
	change    chan struct{} // closed and replaced when connected grows
}

func collectRoomStats(r *call.Room) *roomStats {
	s := &roomStats{latest: map[string]call.Stats{}, change: make(chan struct{})}
	go func() {
		for e := range r.Events() {
			s.mu.Lock()
			switch e.Kind {
			case call.MemberStats:
				s.latest[e.Member.User] = e.Stats
			case call.MemberConnected:
				s.connected++
				close(s.change)
				s.change = make(chan struct{})
			}
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *roomStats) waitConnected(ctx context.Context, n int, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		s.mu.Lock()
		got, ch := s.connected, s.change
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%d of %d members connected: %w", got, n, ctx.Err())
		}
	}
}

// roomStatsSnapshot sums a room's streams: the late frames of all, and
// per member its sender's packets (the shared sender's count, in every
// stream's sample) with the time of the sample.
type roomStatsSnapshot struct {
	late    uint64
	streams int
	sent    []uint64
	sentAt  []time.Time
}

func snapshotRoomStats(all []*roomStats) roomStatsSnapshot {
	var out roomStatsSnapshot
	for _, s := range all {
		s.mu.Lock()
		var sent uint64
		var at time.Time
		for _, st := range s.latest {
			out.late += st.Late + st.Underruns
			out.streams++
			if st.Time.After(at) {
				sent, at = st.PacketsSent, st.Time
			}
		}
		s.mu.Unlock()
		out.sent = append(out.sent, sent)
		out.sentAt = append(out.sentAt, at)
	}
	return out
}

// BenchmarkRoomMouthToEar measures the mouth-to-ear delay inside a room of
// four and on a 1:1 call the same way and at the same time, so that both
// see the same load: in one process, alice talks to bob on a call while
// another talker talks in a room to three listeners. The talkers'
// microphones play a speech-like signal and the listeners' are silent (a
// room listener's mix holds the talker alone); every microphone and
// speaker period is stamped with the wall-clock time (mediatest.Timeline
// on audio.Tap, as the demo does), and mediatest.MouthToEar finds b.N
// seconds (at least 3) of the talker's signal in what each listener
// played, in 0.5 s windows, once the jitter buffers have settled. It
// reports the median over the windows for the call (call-ms/m2e) and the
// room (room-ms/m2e: the median listener), the room's minus the call's
// (diff-ms), the share of windows found (matched, the least of the two)
// and the cores the hypervisor withheld meanwhile (steal-cores: on a
// virtual machine whose host is busy, the process waits for CPU however
// idle the machine looks).
func BenchmarkRoomMouthToEar(b *testing.B) {
	lab := calltest.NewLab(server.Config{RateLimit: 1e6, RateBurst: 1e6})
	defer lab.Close()
	ctx := context.Background()
	talk := func(user string) *timedPhone {
		return newTimedPhone(b, lab, user, pcm.Loop(mediatest.SpeechLike(10*sec, 1)))
	}

	alice, bob := talk("alice"), newTimedPhone(b, lab, "bob", nil)
	go func() {
		for in := range bob.Incoming() {
			_ = in.Accept(ctx)
		}
	}()
	c, err := alice.Dial(ctx, "bob")
	require.NoError(b, err)
	defer c.Hangup()
	for e := range c.Events() {
		if e.Kind == call.EventState && e.State == call.Connected {
			break
		}
		require.NotEqual(b, call.Ended, e.State, "call ended: %s", e.Reason)
	}
	go func() {
		for range c.Events() {
		}
	}()

	members := []*timedPhone{talk("talker")}
	for _, u := range []string{"carol", "dave", "erin"} {
		members = append(members, newTimedPhone(b, lab, u, nil))
	}
	var stats []*roomStats
	for _, p := range members {
		r, err := p.Join(ctx, "m2e", call.RoomConfig{})
		require.NoError(b, err)
		stats = append(stats, collectRoomStats(r))
	}
	for _, s := range stats {
		require.NoError(b, s.waitConnected(ctx, len(members)-1, 30*time.Second))
	}

	cpu0, t0 := cpuload.Now(), time.Now()
	from, until := talkWindow(b)
	steal := cpuload.Now().StealCores(cpu0, time.Since(t0))
	onCall := mouthToEar(b, from, until, alice, bob)
	inRoom := mouthToEar(b, from, until, members[0], members[1:]...)
	b.ReportMetric(millis(onCall.MouthToEar), "call-ms/m2e")
	b.ReportMetric(millis(inRoom.MouthToEar), "room-ms/m2e")
	b.ReportMetric(millis(inRoom.MouthToEar-onCall.MouthToEar), "diff-ms")
	b.ReportMetric(min(matched(onCall), matched(inRoom)), "matched")
	b.ReportMetric(steal, "steal-cores")
	b.ReportMetric(0, "ns/op")
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func matched(m mediatest.Measurement) float64 { return float64(m.Good) / float64(max(1, m.All)) }

// timedPhone is a lab phone whose microphone and speaker periods are
// stamped on the wall clock.
type timedPhone struct {
	*calltest.Phone
	mic, spk *mediatest.Timeline
}

func newTimedPhone(b *testing.B, lab *calltest.Lab, user string, mic pcm.Reader) *timedPhone {
	b.Helper()
	t := &timedPhone{mic: &mediatest.Timeline{}, spk: &mediatest.Timeline{}}
	backend := audio.Tap(audio.NewVirtualBackend(audio.VirtualBackendConfig{Devices: []audio.VirtualDevice{
		{ID: "mic", Direction: audio.Capture, Default: true, Source: mic},
		{ID: "speaker", Direction: audio.Playback, Default: true},
	}}), audio.Callbacks{Capture: t.mic.Add, Playback: t.spk.Add})
	b.Cleanup(func() { _ = backend.Close() })
	cfg := call.Config{EndToneDuration: -1, Audio: call.AudioConfig{Backend: backend}}
	p, err := lab.NewPhone(context.Background(), user, calltest.PhoneOptions{Config: cfg})
	require.NoError(b, err)
	t.Phone = p
	return t
}

// talkWindow waits two settling seconds (the jitter buffers' start-up),
// then b.N seconds (at least 3) of talk, and returns that stretch; it
// returns once the speakers have played its end.
func talkWindow(b *testing.B) (from, until time.Time) {
	b.Helper()
	wait := func(d time.Duration) {
		t := time.NewTimer(d)
		defer t.Stop()
		<-t.C
	}
	wait(2 * time.Second)
	b.ResetTimer()
	from = time.Now()
	wait(time.Duration(max(b.N, 3)) * time.Second)
	until = time.Now()
	wait(500 * time.Millisecond)
	b.StopTimer()
	return from, until
}

// mouthToEar measures the talker's mouth-to-ear delay to each listener
// over [from, until] and returns the listener with the median delay.
func mouthToEar(b *testing.B, from, until time.Time, talker *timedPhone, listeners ...*timedPhone) mediatest.Measurement {
	b.Helper()
	var ms []mediatest.Measurement
	for _, l := range listeners {
		m := mediatest.MouthToEar(talker.mic, l.spk, mediatest.MouthToEarConfig{From: from, Until: until})
		require.True(b, m.Found(), "%s heard %s: %d of %d windows matched", l.User(), talker.User(), m.Good, m.All)
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(x, y mediatest.Measurement) int { return cmp.Compare(x.MouthToEar, y.MouthToEar) })
	return ms[len(ms)/2]
}
