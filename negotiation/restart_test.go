package negotiation

import (
	"errors"
	"fmt"
	"strings"
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
// connects fails after both, 2 s), keepalives every 100 ms; the candidates
// of a far-side restart held at most 1 s, well before that failure.
const (
	vnetDisconnected = 500 * time.Millisecond
	vnetFailed       = 1500 * time.Millisecond
	vnetKeepalive    = 100 * time.Millisecond
	vnetGrace        = 200 * time.Millisecond
	vnetHold         = time.Second
)

// vnetPair builds two peers on a virtual network whose router link can be
// cut; a is 198.51.100.1, b 198.51.100.2. filter, if any, sees every
// packet the router would forward and drops those it returns false for.
func vnetPair(t *testing.T, filter ...vnet.ChunkFilter) (a, b *peer, cut *atomic.Bool, iceStates func(p *peer) []webrtc.ICEConnectionState) {
	t.Helper()
	router, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: "198.51.100.0/24", LoggerFactory: logging.NewDefaultLoggerFactory()})
	require.NoError(t, err)
	cut = &atomic.Bool{}
	router.AddChunkFilter(func(c vnet.Chunk) bool {
		for _, f := range filter {
			if !f(c) {
				return false
			}
		}
		return !cut.Load()
	})
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
		c.RemoteRestartHold = vnetHold
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

// TestRemoteRestartHeldUntilChecked: the impolite side restarts ICE on a
// connection whose first offer came from the polite side, which is
// therefore the controlling ICE agent (RFC 8445 §6.1.1; the roles hold
// across restarts). The controlling side answers at once but sends the
// restarting side no connectivity check before that side has applied the
// answer: a browser answers such an early check, but Firefox loses the
// nomination pion sends with it, once, and never moves its media to the
// new connection. Once the answer is applied, the restarting side's own
// checks reach the controlling side, ICE connects on the new credentials
// and data flows again.
func TestRemoteRestartHeldUntilChecked(t *testing.T) {
	var early atomic.Bool // the window before the answer is delivered
	var earlyChecks atomic.Int32
	a, b, _, _ := vnetPair(t, func(c vnet.Chunk) bool {
		if early.Load() && isCheck(c, "198.51.100.2", "198.51.100.1") {
			earlyChecks.Add(1)
		}
		return true
	})
	var bTracks []webrtc.TrackLocal
	require.NoError(t, addTrack(t, &bTracks, "b0")(b))
	converged(t, a, b, nil, bTracks)
	require.Equal(t, webrtc.ICERoleControlling, b.pc.SCTP().Transport().ICETransport().Role(), "the first offerer controls")
	e := newEcho(t, a, b)
	e.ping(t, "before", 5*time.Second)
	ua := localUfrag(t, a.pc)
	before := b.n.Counters()

	b.out.hold() // b's answer and candidates wait
	early.Store(true)
	a.n.RestartICE()
	require.Eventually(t, func() bool {
		c := b.n.Counters()
		return c.AnswersSent > before.AnswersSent && c.CandidatesHeld+c.CandidatesApplied > before.CandidatesApplied
	}, 10*time.Second, 5*time.Millisecond, "b answered the restart and got a's new candidates")
	assert.Never(t, func() bool { return earlyChecks.Load() > 0 }, 500*time.Millisecond, 10*time.Millisecond,
		"b checked a's new candidates before a had b's answer")
	early.Store(false)
	b.out.release(0)

	require.Eventually(t, func() bool {
		return a.n.idle() && b.n.idle() &&
			a.pc.ICEConnectionState() == webrtc.ICEConnectionStateConnected &&
			b.pc.ICEConnectionState() == webrtc.ICEConnectionStateConnected &&
			localUfrag(t, a.pc) != ua
	}, 15*time.Second, 5*time.Millisecond, "not reconnected with new credentials")
	e.ping(t, "after", 10*time.Second)
	assert.Empty(t, a.out.errors())
	assert.Empty(t, b.out.errors())
	t.Logf("restarting (impolite) %+v", a.n.Counters())
	t.Logf("controlling (polite)  %+v", b.n.Counters())
}

// TestRemoteRestartHoldEnds: as in TestRemoteRestartHeldUntilChecked the
// impolite side restarts ICE and the polite side controls, but the
// restarting side's checks do not reach the controlling side (as behind a
// NAT on the controlling side that opens only to its own checks). The
// controlling side then starts checking after Config.RemoteRestartHold,
// and once the checks pass both ways again ICE reconnects.
func TestRemoteRestartHoldEnds(t *testing.T) {
	var blockA atomic.Bool // drop a's checks to b
	var firstCheck atomic.Int64
	a, b, _, _ := vnetPair(t, func(c vnet.Chunk) bool {
		if blockA.Load() && isCheck(c, "198.51.100.2", "198.51.100.1") {
			firstCheck.CompareAndSwap(0, time.Now().UnixNano())
		}
		return !blockA.Load() || !isCheck(c, "198.51.100.1", "198.51.100.2")
	})
	var bTracks []webrtc.TrackLocal
	require.NoError(t, addTrack(t, &bTracks, "b0")(b))
	converged(t, a, b, nil, bTracks)
	e := newEcho(t, a, b)
	e.ping(t, "before", 5*time.Second)
	ua := localUfrag(t, a.pc)

	blockA.Store(true)
	start := time.Now()
	a.n.RestartICE()
	require.Eventually(t, func() bool { return firstCheck.Load() != 0 }, 10*time.Second, 5*time.Millisecond,
		"b never checked a's new candidates")
	waited := time.Unix(0, firstCheck.Load()).Sub(start)
	assert.GreaterOrEqual(t, waited, vnetHold, "b checked before its hold ended")
	t.Logf("b's first check of a's new candidates %v after the restart", waited.Round(time.Millisecond))
	blockA.Store(false)

	require.Eventually(t, func() bool {
		return a.n.idle() && b.n.idle() &&
			a.pc.ICEConnectionState() == webrtc.ICEConnectionStateConnected &&
			b.pc.ICEConnectionState() == webrtc.ICEConnectionStateConnected &&
			localUfrag(t, a.pc) != ua
	}, 15*time.Second, 5*time.Millisecond, "not reconnected with new credentials")
	e.ping(t, "after", 10*time.Second)
	assert.NotZero(t, b.n.Counters().CandidatesHeld)
}

// isCheck reports whether c is a STUN Binding request (RFC 8489: type
// 0x0001, magic cookie 0x2112A442) from host from to host to.
func isCheck(c vnet.Chunk, from, to string) bool {
	p := c.UserData()
	return len(p) >= 20 && p[0] == 0x00 && p[1] == 0x01 &&
		p[4] == 0x21 && p[5] == 0x12 && p[6] == 0xA4 && p[7] == 0x42 &&
		strings.HasPrefix(c.SourceAddr().String(), from+":") &&
		strings.HasPrefix(c.DestinationAddr().String(), to+":")
}
