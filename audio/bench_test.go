package audio

import (
	"context"
	"testing"
	"time"
)

// BenchmarkTapDispatch is the session's cost on the hot path: the
// generation check and lock around the user's callback.
func BenchmarkTapDispatch(b *testing.B) {
	t := &tap{capture: func([]int16) {}}
	t.cur.Store(1)
	fn := t.captureFn(1)
	p := make([]int16, 480)
	b.ReportAllocs()
	for b.Loop() {
		fn(p)
	}
}

// BenchmarkVirtualSessionPeriod: one 10 ms period of a session on the
// virtual backend (capture device + playback device, silence source,
// discard sink, no-op callbacks) driven by a ManualClock. It includes
// the clock's tick handoff (a channel send and an acknowledgement per
// device), so it is an upper bound on the per-period overhead.
func BenchmarkVirtualSessionPeriod(b *testing.B) {
	ctx := context.Background()
	clock := NewManualClock(time.Unix(0, 0))
	vb := NewVirtualBackend(VirtualBackendConfig{Clock: clock})
	s, err := Open(ctx, Config{Backend: vb, PollInterval: -1, Callbacks: Callbacks{Capture: func([]int16) {}, Playback: func([]int16) {}}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		if err := clock.Advance(ctx, 10*time.Millisecond); err != nil {
			b.Fatal(err)
		}
	}
	per := time.Since(start) / time.Duration(b.N)
	b.ReportMetric(float64(per.Nanoseconds()), "ns/period")
	b.ReportMetric(100*float64(per)/float64(10*time.Millisecond), "%core@10ms")
}

// BenchmarkVirtualDevicePeriod: a bare duplex Virtual device (no session).
func BenchmarkVirtualDevicePeriod(b *testing.B) {
	ctx := context.Background()
	clock := NewManualClock(time.Unix(0, 0))
	v, err := NewVirtual(VirtualConfig{Clock: clock})
	if err != nil {
		b.Fatal(err)
	}
	if err := v.Start(Callbacks{Capture: func([]int16) {}, Playback: func([]int16) {}}); err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	b.ReportAllocs()
	for b.Loop() {
		if err := clock.Advance(ctx, 10*time.Millisecond); err != nil {
			b.Fatal(err)
		}
	}
}
