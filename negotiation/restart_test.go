package negotiation

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/transport/v4/vnet"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Shortened ICE timers for the vnet tests: "disconnected" 500 ms after the
// last traffic, "failed" after another 1.5 s (a restarted agent that never
// connects fails after both, 2 s), keepalives every 100 ms.
const (
	vnetDisconnected = 500 * time.Millisecond
	vnetFailed       = 1500 * time.Millisecond
	vnetKeepalive    = 100 * time.Millisecond
	vnetGrace        = 200 * time.Millisecond
)

// vnetPair builds two peers on a virtual network whose router link can be
// cut.
func vnetPair(t *testing.T) (a, b *peer, cut *atomic.Bool, iceStates func(p *peer) []webrtc.ICEConnectionState) {
	t.Helper()
	router, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: "198.51.100.0/24", LoggerFactory: logging.NewDefaultLoggerFactory()})
	require.NoError(t, err)
	cut = &atomic.Bool{}
	router.AddChunkFilter(func(vnet.Chunk) bool { return !cut.Load() })
	api := func(ip string) *webrtc.API {
		n, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{ip}})
		require.NoError(t, err)
		require.NoError(t, router.AddNet(n))
		var se webrtc.SettingEngine
		se.SetNet(n)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
		se.SetICETimeouts(vnetDisconnected, vnetFailed, vnetKeepalive)
		return webrtc.NewAPI(webrtc.WithSettingEngine(se))
	}
	apiA, apiB := api("198.51.100.1"), api("198.51.100.2")
	require.NoError(t, router.Start())
	t.Cleanup(func() { _ = router.Stop() })

	var mu sync.Mutex
	states := map[bool][]webrtc.ICEConnectionState{}
	a, b = newPair(t, pairOptions{apiA: apiA, apiB: apiB, cfg: func(c *Config) {
		polite := c.Polite
		c.DisconnectedGrace = vnetGrace
		c.OnICEConnectionStateChange = func(s webrtc.ICEConnectionState) {
			mu.Lock()
			states[polite] = append(states[polite], s)
			mu.Unlock()
		}
	}})
	iceStates = func(p *peer) []webrtc.ICEConnectionState {
		mu.Lock()
		defer mu.Unlock()
		return append([]webrtc.ICEConnectionState(nil), states[p == b]...)
	}
	return a, b, cut, iceStates
}

// TestICERestartRecovers: the link is cut, ICE goes disconnected, both
// sides restart ICE after the grace (their restart offers collide and
// resolve through perfect negotiation), the link returns, and the call is
// connected again with new ICE credentials and data flowing.
func TestICERestartRecovers(t *testing.T) {
	a, b, cut, iceStates := vnetPair(t)
	var aTracks []webrtc.TrackLocal
	require.NoError(t, addTrack(t, &aTracks, "a0")(a))
	e := newEcho(t, a, b)
	converged(t, a, b, aTracks, nil)
	e.ping(t, "before", 5*time.Second)
	ua, ub := localUfrag(t, a.pc), localUfrag(t, b.pc)

	cut.Store(true)
	require.Eventually(t, func() bool {
		return a.n.Counters().Restarts+b.n.Counters().Restarts >= 1
	}, 10*time.Second, 5*time.Millisecond, "no ICE restart after the cut")
	assert.Contains(t, iceStates(a), webrtc.ICEConnectionStateDisconnected)
	cut.Store(false)

	require.Eventually(t, func() bool {
		return a.n.idle() && b.n.idle() &&
			a.pc.ICEConnectionState() == webrtc.ICEConnectionStateConnected &&
			b.pc.ICEConnectionState() == webrtc.ICEConnectionStateConnected &&
			localUfrag(t, a.pc) != ua && localUfrag(t, b.pc) != ub
	}, 15*time.Second, 5*time.Millisecond, "not reconnected with new credentials")
	e.ping(t, "after", 10*time.Second)
	assert.NotContains(t, iceStates(a), webrtc.ICEConnectionStateFailed, "restart came from disconnected, before failed")
	assert.NotContains(t, iceStates(b), webrtc.ICEConnectionStateFailed, "restart came from disconnected, before failed")
	assert.Empty(t, a.out.errors())
	assert.Empty(t, b.out.errors())
	select {
	case err := <-a.failed:
		t.Fatalf("unexpected failure: %v", err)
	default:
	}
	t.Logf("impolite %+v", a.n.Counters())
	t.Logf("polite   %+v", b.n.Counters())
}

// TestICERestartGivesUp: the link never returns; after the restart on
// "disconnected" and one last restart on "failed", the failure is reported
// (OnFailed, Done, Err) with ErrICEFailed within a bound set by the
// shortened ICE timers.
func TestICERestartGivesUp(t *testing.T) {
	a, b, cut, iceStates := vnetPair(t)
	var aTracks []webrtc.TrackLocal
	require.NoError(t, addTrack(t, &aTracks, "a0")(a))
	converged(t, a, b, aTracks, nil)

	cut.Store(true)
	start := time.Now()
	// disconnected (0.5 s) + grace (0.2 s) + restarted agent fails (2 s)
	// + last restart fails (2 s) ≈ 4.7 s; allow scheduling slack.
	const bound = 9 * time.Second
	for _, p := range []*peer{a, b} {
		select {
		case err := <-p.failed:
			require.ErrorIs(t, err, ErrICEFailed)
		case <-time.After(bound - time.Since(start)):
			t.Fatalf("failure not reported within %v; ICE states %v", bound, iceStates(p))
		}
		<-p.n.Done()
		assert.True(t, errors.Is(p.n.Err(), ErrICEFailed), fmt.Sprint(p.n.Err()))
		assert.GreaterOrEqual(t, p.n.Counters().Restarts+p.n.Counters().IgnoredOffers+p.n.Counters().Rollbacks, uint64(1))
	}
	t.Logf("failure reported after %v", time.Since(start))
	assert.Contains(t, iceStates(a), webrtc.ICEConnectionStateFailed)
}
