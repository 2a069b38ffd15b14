package server

import (
	"context"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/dialtone-dev/dialtone/signaling"
)

// BenchmarkAbuse runs each attack of issue 24 against a default-configured
// server on loopback while a well-behaved pair (alice and bob, WebSocket
// clients) exchange 40 signals a second, and reports the pair's round-trip
// time (p50-ms, p99-ms) and how often a well-behaved user (alice, bob,
// the auto-responding bot) lost its connection (disconnects). b.N is the
// number of round trips measured. Everyone connects from 127.0.0.1: the
// pair and the bot connect first, within the per-address burst, and the
// attackers' connections then meet the per-address limits.
//
//	go test -run XXX -bench Abuse -benchtime 200x ./signaling/server/
func BenchmarkAbuse(b *testing.B) {
	for _, a := range []struct {
		name string
		run  func(env *abuseEnv, stop <-chan struct{})
	}{
		{"quiet", nil},
		{"invite-flood-reconnect", func(env *abuseEnv, stop <-chan struct{}) { env.flood(stop, "bob", 0) }},
		{"big-invite-flood", func(env *abuseEnv, stop <-chan struct{}) { env.flood(stop, "bob", 4<<10) }},
		{"reflection-via-bot", func(env *abuseEnv, stop <-chan struct{}) { env.reflect(stop) }},
		{"connection-flood", func(env *abuseEnv, stop <-chan struct{}) { env.connFlood(stop) }},
		{"malformed-flood", func(env *abuseEnv, stop <-chan struct{}) { env.malformed(stop) }},
	} {
		b.Run(a.name, func(b *testing.B) {
			env := newAbuseEnv(b)
			defer env.close()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			if a.run != nil {
				wg.Add(1)
				go func() {
					defer wg.Done()
					a.run(env, stop)
				}()
			}
			rtts := env.measure(b, b.N)
			close(stop)
			wg.Wait()
			slices.Sort(rtts)
			ms := func(q float64) float64 {
				return float64(rtts[min(len(rtts)-1, int(q*float64(len(rtts))))]) / 1e6
			}
			b.ReportMetric(ms(0.5), "p50-ms")
			b.ReportMetric(ms(0.99), "p99-ms")
			b.ReportMetric(float64(env.disconnects.Load()), "disconnects")
			b.ReportMetric(0, "ns/op")
		})
	}
}

type abuseEnv struct {
	s           *Server
	hs          *httptest.Server
	url         string
	alice, bob  *signaling.Client
	bot         *signaling.Client
	disconnects atomic.Int64
	wg          sync.WaitGroup
	ctx         context.Context
	cancel      context.CancelFunc
}

func newAbuseEnv(b *testing.B) *abuseEnv {
	s := New(Config{DevMode: true})
	hs := httptest.NewServer(s)
	env := &abuseEnv{s: s, hs: hs, url: "ws" + strings.TrimPrefix(hs.URL, "http")}
	env.ctx, env.cancel = context.WithCancel(context.Background())
	dial := func(user string) *signaling.Client {
		c, err := signaling.Dial(env.ctx, env.url+"?user="+user, signaling.DialConfig{})
		if err != nil {
			b.Fatal(err)
		}
		<-c.Incoming() // ready
		env.wg.Add(1)
		go func() {
			defer env.wg.Done()
			for st := range c.Status() {
				if st.State == signaling.StateDown {
					env.disconnects.Add(1)
				}
			}
		}()
		return c
	}
	env.alice, env.bob, env.bot = dial("alice"), dial("bob"), dial("bot")
	// bob echoes alice's signals; the bot answers every invite busy.
	env.wg.Add(2)
	go func() {
		defer env.wg.Done()
		for m := range env.bob.Incoming() {
			if m.Type == signaling.TypeSignal && m.From == "alice" {
				_ = env.bob.Send(env.ctx, signaling.Message{Type: signaling.TypeSignal, To: "alice", Call: m.Call, Data: m.Data})
			}
		}
	}()
	go func() {
		defer env.wg.Done()
		for m := range env.bot.Incoming() {
			if m.Type == signaling.TypeInvite {
				_ = env.bot.Send(env.ctx, signaling.Message{Type: signaling.TypeBusy, To: m.From, Call: m.Call})
			}
		}
	}()
	return env
}

func (env *abuseEnv) close() {
	env.cancel()
	_ = env.alice.Close()
	_ = env.bob.Close()
	_ = env.bot.Close()
	_ = env.s.Close()
	env.hs.Close()
	env.wg.Wait()
}

// measure sends n signals alice → bob → alice, one per 25 ms, and returns
// their round-trip times.
func (env *abuseEnv) measure(b *testing.B, n int) []time.Duration {
	rtts := make([]time.Duration, 0, n)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	for i := 0; i < n; i++ {
		<-tick.C
		call := "rt" + strconv.Itoa(i)
		start := time.Now()
		if err := env.alice.Send(env.ctx, signaling.Message{Type: signaling.TypeSignal, To: "bob", Call: call, Data: []byte(`{"candidate":{}}`)}); err != nil {
			b.Fatal(err)
		}
		timeout := time.After(10 * time.Second)
	wait:
		for {
			select {
			case m := <-env.alice.Incoming():
				if m.Type == signaling.TypeSignal && m.Call == call {
					rtts = append(rtts, time.Since(start))
					break wait
				}
			case <-timeout:
				b.Fatalf("round trip %d lost", i)
			}
		}
	}
	b.StopTimer()
	return rtts
}

// rawDial connects user without the client's manners; nil when refused.
func (env *abuseEnv) rawDial(user string) *websocket.Conn {
	ws, resp, err := websocket.DefaultDialer.Dial(env.url+"?user="+user, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return nil
	}
	return ws
}

// flood sends invites (with pad bytes of data) to victim as fast as the
// socket takes them, never reading, reconnecting whenever cut off.
func (env *abuseEnv) flood(stop <-chan struct{}, victim string, pad int) {
	data := `{}`
	if pad > 0 {
		data = `{"displayName":"` + strings.Repeat("x", pad) + `"}`
	}
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		ws := env.rawDial("mallory")
		if ws == nil {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		// Reading would slow the flood: only let the socket go when told.
		done := make(chan struct{})
		go func() {
			select {
			case <-stop:
			case <-done:
			}
			_ = ws.Close()
		}()
		for k := 0; ; k++ {
			frame := []byte(`{"type":"invite","to":"` + victim + `","call":"m` + strconv.Itoa(i) + `-` + strconv.Itoa(k) + `","data":` + data + `}`)
			_ = ws.SetWriteDeadline(time.Now().Add(time.Second))
			if ws.WriteMessage(websocket.TextMessage, frame) != nil {
				break
			}
		}
		close(done)
		_ = ws.Close()
	}
}

// reflect has three callers each send the bot 45 invites a second (under
// their own rate) for it to answer busy.
func (env *abuseEnv) reflect(stop <-chan struct{}) {
	var wg sync.WaitGroup
	for u := 0; u < 3; u++ {
		ws := env.rawDial("caller" + strconv.Itoa(u))
		if ws == nil {
			continue
		}
		wg.Add(2)
		go func() { // drain the answers
			defer wg.Done()
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			defer ws.Close()
			tick := time.NewTicker(time.Second / 45)
			defer tick.Stop()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				frame := []byte(`{"type":"invite","to":"bot","call":"r` + strconv.Itoa(k) + `"}`)
				if ws.WriteMessage(websocket.TextMessage, frame) != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
}

// connFlood opens connections from the one address as fast as it can,
// holding up to 2000 open.
func (env *abuseEnv) connFlood(stop <-chan struct{}) {
	var open []*websocket.Conn
	defer func() {
		for _, ws := range open {
			_ = ws.Close()
		}
	}()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		if ws := env.rawDial("c" + strconv.Itoa(i)); ws != nil {
			open = append(open, ws)
		}
		if len(open) >= 2000 {
			_ = open[0].Close()
			open = open[1:]
		}
	}
}

// malformed sends bob frames of invalid UTF-8 and broken JSON, reconnecting
// when closed as abusive.
func (env *abuseEnv) malformed(stop <-chan struct{}) {
	bad := [][]byte{
		[]byte(`{"type":"signal","to":"bob","call":"c","data":{"x":"` + "\xff" + `"}}`),
		[]byte(`{"type":"signal","to":"bob"`),
	}
	for {
		select {
		case <-stop:
			return
		default:
		}
		ws := env.rawDial("mallory")
		if ws == nil {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		go func() { // read the errors so mallory is not cut off as slow
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}()
		for k := 0; ; k++ {
			if ws.WriteMessage(websocket.TextMessage, bad[k%2]) != nil {
				break
			}
		}
		_ = ws.Close()
	}
}
