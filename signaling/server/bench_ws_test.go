package server

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

// BenchmarkWebSocketRelay measures one 2 KB `signal` relayed between two
// WebSocket clients through the server on loopback (client write → server
// read, decode, route, encode, write → client read), ping-pong, so ns/op is
// the relay's latency with one message in flight.
//
//	go test -run XXX -bench WebSocketRelay ./signaling/server/
func BenchmarkWebSocketRelay(b *testing.B) {
	s := New(Config{DevMode: true, RateLimit: rate.Inf})
	hs := httptest.NewServer(s)
	defer hs.Close()
	defer s.Close()
	url := "ws" + strings.TrimPrefix(hs.URL, "http")
	dial := func(user string) *websocket.Conn {
		ws, _, err := websocket.DefaultDialer.Dial(url+"?user="+user, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := ws.ReadMessage(); err != nil { // ready
			b.Fatal(err)
		}
		return ws
	}
	alice, bob := dial("alice"), dial("bob")
	defer alice.Close()
	defer bob.Close()
	pad := strings.Repeat("x", 1950)
	toBob := []byte(`{"type":"signal","to":"bob","call":"c","data":{"candidate":{"candidate":"` + pad + `"}}}`)
	toAlice := []byte(`{"type":"signal","to":"alice","call":"c","data":{"candidate":{"candidate":"` + pad + `"}}}`)
	b.SetBytes(int64(len(toBob)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		from, to, frame := alice, bob, toBob
		if i%2 == 1 {
			from, to, frame = bob, alice, toAlice
		}
		if err := from.WriteMessage(websocket.TextMessage, frame); err != nil {
			b.Fatal(err)
		}
		if _, _, err := to.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}
