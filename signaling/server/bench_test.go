package server

import (
	"context"
	"testing"

	"github.com/dialtone-dev/dialtone/signaling"
)

// BenchmarkLocalRoundTrip measures one message alice → server → bob over
// in-process conns (JSON encode, Decode, route, deliver).
func BenchmarkLocalRoundTrip(b *testing.B) {
	s := New(Config{DevMode: true, RateLimit: 1e9, RateBurst: 1 << 30})
	defer s.Close()
	ctx := context.Background()
	alice, _ := s.ConnectLocal(ctx, "alice", LocalOptions{})
	bob, _ := s.ConnectLocal(ctx, "bob", LocalOptions{})
	defer alice.Close()
	defer bob.Close()
	<-alice.Incoming()
	<-bob.Incoming()
	m, _ := signaling.NewMessage(signaling.TypeSignal, "bob", "c", map[string]any{"candidate": map[string]any{"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host"}})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := alice.Send(ctx, m); err != nil {
			b.Fatal(err)
		}
		<-bob.Incoming()
	}
}
