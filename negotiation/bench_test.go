package negotiation

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"
)

// connectedSignal returns a channel closed when pc reaches "connected".
// It replaces the owner's OnConnectionStateChange handler.
func connectedSignal(pc *webrtc.PeerConnection) <-chan struct{} {
	ch := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(ch) })
		}
	})
	return ch
}

func waitBoth(b *testing.B, x, y <-chan struct{}) {
	b.Helper()
	timeout := time.After(10 * time.Second)
	for _, ch := range []<-chan struct{}{x, y} {
		select {
		case <-ch:
		case <-timeout:
			b.Fatal("not connected")
		}
	}
}

func reportMedian(b *testing.B, d []time.Duration) {
	b.Helper()
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2])/float64(time.Millisecond), "ms/setup")
	b.ReportMetric(float64(d[len(d)*9/10])/float64(time.Millisecond), "p90-ms/setup")
}

// BenchmarkSetup measures one call set-up through two Negotiators on
// loopback: from the moment the offering side adds its track (which fires
// negotiationneeded and creates the offer) until both PeerConnections are
// connected. ms/setup is the median over b.N set-ups.
func BenchmarkSetup(b *testing.B) {
	for _, offerer := range []string{"impolite", "polite"} {
		b.Run(offerer+"-offers", func(b *testing.B) {
			api := loopbackAPI(b, nil)
			durations := make([]time.Duration, 0, b.N)
			for b.Loop() {
				x, y := newPair(b, pairOptions{apiA: api})
				cx, cy := connectedSignal(x.pc), connectedSignal(y.pc)
				p := x
				if offerer == "polite" {
					p = y
				}
				tr := newAudioTrack(b, "bench")
				start := time.Now()
				_, err := p.pc.AddTrack(tr)
				require.NoError(b, err)
				waitBoth(b, cx, cy)
				durations = append(durations, time.Since(start))
				x.close()
			}
			reportMedian(b, durations)
		})
	}
}

// BenchmarkSetupBarePion is the same set-up with plain pion offer/answer and
// trickle (no negotiator): from CreateOffer until both are connected.
func BenchmarkSetupBarePion(b *testing.B) {
	api := loopbackAPI(b, nil)
	durations := make([]time.Duration, 0, b.N)
	for b.Loop() {
		x, err := api.NewPeerConnection(webrtc.Configuration{})
		require.NoError(b, err)
		y, err := api.NewPeerConnection(webrtc.Configuration{})
		require.NoError(b, err)
		cx, cy := connectedSignal(x), connectedSignal(y)
		toY, toX := newTrickle(y), newTrickle(x)
		x.OnICECandidate(toY.add)
		y.OnICECandidate(toX.add)
		_, err = x.AddTrack(newAudioTrack(b, "bench"))
		require.NoError(b, err)

		start := time.Now()
		offer, err := x.CreateOffer(nil)
		require.NoError(b, err)
		require.NoError(b, x.SetLocalDescription(offer))
		require.NoError(b, y.SetRemoteDescription(offer))
		toY.ready()
		answer, err := y.CreateAnswer(nil)
		require.NoError(b, err)
		require.NoError(b, y.SetLocalDescription(answer))
		require.NoError(b, x.SetRemoteDescription(answer))
		toX.ready()
		waitBoth(b, cx, cy)
		durations = append(durations, time.Since(start))
		require.NoError(b, x.Close())
		require.NoError(b, y.Close())
	}
	reportMedian(b, durations)
}

// trickle hands candidates to pc, holding them until its remote
// description is set.
type trickle struct {
	mu      sync.Mutex
	pc      *webrtc.PeerConnection
	isReady bool
	pending []webrtc.ICECandidateInit
}

func newTrickle(pc *webrtc.PeerConnection) *trickle { return &trickle{pc: pc} }

func (t *trickle) add(c *webrtc.ICECandidate) {
	if c == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.isReady {
		t.pending = append(t.pending, c.ToJSON())
		return
	}
	_ = t.pc.AddICECandidate(c.ToJSON())
}

func (t *trickle) ready() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.isReady = true
	for _, c := range t.pending {
		_ = t.pc.AddICECandidate(c)
	}
	t.pending = nil
}
