package call_test

import (
	"log/slog"
	"regexp"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/internal/coturntest"
	"github.com/dialtone-dev/dialtone/media/pcm"
	"github.com/dialtone-dev/dialtone/signaling/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// relayConnectBound is how long a relay-only call may take from Accept to
// Connected on loopback: a direct call takes a few ms, and so does a relay
// pair (two allocations, one round of checks); pion's default 2 s wait
// before accepting a relay pair would not fit.
const relayConnectBound = time.Second

// Relay-only calls through a real coturn, with credentials the signaling
// server makes from coturn's shared secret: they connect about as fast as a
// direct call, audio flows both ways (checked by content), and coturn's
// own log shows an allocation and a channel bind for each phone.
func TestRelayOnlyThroughCoturn(t *testing.T) {
	turn := coturntest.Start(t, coturntest.Options{Verbose: true})
	lab := newLab(t, server.Config{TURNURLs: turn.URLs(), TURNSecret: turn.Secret})
	cfg := fast()
	cfg.RelayOnly = true
	sigA, sigB := signalFor(21, 2), signalFor(22, 2)
	a := newPhone(t, lab, "alice", calltest.PhoneOptions{Config: cfg, Mic: pcm.Loop(sigA)})
	b := newPhone(t, lab, "bob", calltest.PhoneOptions{Config: cfg, Mic: pcm.Loop(sigB)})

	ac, bc, aw, bw := ring(t, a, b)
	start := time.Now()
	require.NoError(t, bc.Accept(ctxT(t, setupWait)))
	aw.waitState(t, call.Connected, setupWait)
	bw.waitState(t, call.Connected, setupWait)
	took := time.Since(start)
	t.Logf("accept → connected through coturn: %v", took)
	assert.Less(t, took, relayConnectBound, "a relay-only call must not wait for a direct path that cannot exist")

	corrAB, _, corrBA, _ := bothWays(t, "through coturn: ", a, b, sigA, sigB)
	assert.Greater(t, corrAB, 0.9)
	assert.Greater(t, corrBA, 0.9)

	for _, user := range []string{"alice", "bob"} {
		t.Log(turn.WaitLog(t, time.Second, "user <", ":"+user+">", "ALLOCATE processed, success"))
		t.Log(turn.WaitLog(t, time.Second, "user <", ":"+user+">", "CHANNEL_BIND processed, success"))
	}
	ac.Hangup()
	aw.waitEnd(t, setupWait)
	bw.waitEnd(t, setupWait)
}

// A TURN secret the relay does not share ends a relay-only call within a
// second or so, as relay-failed on both sides, not after ConnectTimeout as
// connect-timeout: the side that finds it first has Err naming the relay
// and its 401, logged at warning level, and tells the other.
func TestRelayOnlyWrongSecretFailsFast(t *testing.T) {
	turn := coturntest.Start(t, coturntest.Options{Secret: []byte("the-relay-secret")})
	lab := newLab(t, server.Config{TURNURLs: turn.URLs(), TURNSecret: []byte("another-secret")})
	var logs syncBuffer
	cfg := fast()
	cfg.RelayOnly = true
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a := newPhone(t, lab, "alice", calltest.PhoneOptions{Config: cfg})
	b := newPhone(t, lab, "bob", calltest.PhoneOptions{Config: cfg})

	ac, bc, aw, bw := ring(t, a, b)
	start := time.Now()
	require.NoError(t, bc.Accept(ctxT(t, setupWait)))
	assert.Equal(t, call.ReasonRelayFailed, aw.waitEnd(t, 3*time.Second))
	assert.Equal(t, call.ReasonRelayFailed, bw.waitEnd(t, 3*time.Second))
	t.Logf("accept → both ended: %v; alice's err: %v; bob's err: %v", time.Since(start), ac.Err(), bc.Err())
	found := ac.Err()
	if found == nil {
		found = bc.Err()
	}
	require.ErrorIs(t, found, call.ErrRelay)
	assert.Contains(t, found.Error(), turn.URLs()[0])
	assert.Contains(t, found.Error(), "401")
	assert.Regexp(t, `level=WARN .*reason=relay-failed .*`+regexp.QuoteMeta(turn.URLs()[0])+`.*401`, logs.String())
}

// Relay credentials that expire during a call are renewed before they do,
// and the call's allocation is made again with them: the call keeps its
// media past the credentials' lifetime through a relay that refuses to
// refresh an allocation with expired credentials (the embedded TURN
// relay, with allocations short-lived enough to need refreshing within
// the test), and coturn logs a second allocation with fresh credentials.
func TestRelayCredentialsRenewedMidCall(t *testing.T) {
	const ttl = 3 * time.Second
	for _, tc := range []struct {
		name  string
		relay func(t *testing.T) (urls []string, secret []byte, newAllocations func() int)
	}{
		{"embedded", func(t *testing.T) ([]string, []byte, func() int) {
			secret := []byte("turn-secret")
			turn, err := server.NewTURN(server.TURNConfig{
				ListenAddr: "127.0.0.1:0", Secret: secret, AllowLoopbackPeers: true,
				AllocationLifetime: ttl,
			})
			require.NoError(t, err)
			t.Cleanup(func() { _ = turn.Close() })
			return turn.URLs(), secret, nil
		}},
		{"coturn", func(t *testing.T) ([]string, []byte, func() int) {
			turn := coturntest.Start(t, coturntest.Options{Verbose: true})
			return turn.URLs(), turn.Secret, func() int {
				return turn.Count(":alice>", "ALLOCATE processed, success")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The two relays side by side: each waits out two lifetimes.
			t.Parallel()
			urls, secret, allocations := tc.relay(t)
			lab := newLab(t, server.Config{TURNURLs: urls, TURNSecret: secret, TURNTTL: ttl})
			cfg := fast()
			cfg.RelayOnly = true
			sigA, sigB := signalFor(31, 2), signalFor(32, 2)
			a := newPhone(t, lab, "alice", calltest.PhoneOptions{Config: cfg, Mic: pcm.Loop(sigA)})
			b := newPhone(t, lab, "bob", calltest.PhoneOptions{Config: cfg, Mic: pcm.Loop(sigB)})
			ac, bc, aw, bw := connect(t, a, b)

			// Past two lifetimes the first credentials have expired and an
			// allocation made with them is gone; then three seconds more
			// must carry media both ways. Each renewal restarts ICE, which
			// loses a few packets (more on a loaded machine).
			require.NoError(t, b.Speaker.Wait(ctxT(t, 20*time.Second), b.Speaker.Len()+2*int(ttl/time.Second)*sec+sec/2))
			fromA, fromB := bc.Stats().PacketsReceived, ac.Stats().PacketsReceived
			require.NoError(t, b.Speaker.Wait(ctxT(t, 10*time.Second), b.Speaker.Len()+3*sec))
			gotB, gotA := bc.Stats().PacketsReceived-fromA, ac.Stats().PacketsReceived-fromB
			corrAB, _ := heard(t, sigA, b.Speaker.Samples())
			corrBA, _ := heard(t, sigB, a.Speaker.Samples())
			t.Logf("3 s past two credential lifetimes: bob got %d packets, alice %d (of 150); corr alice→bob %.3f, bob→alice %.3f; states %v %v",
				gotB, gotA, corrAB, corrBA, aw.states(), bw.states())
			assert.Greater(t, gotB, uint64(75))
			assert.Greater(t, gotA, uint64(75))
			assert.Equal(t, call.Connected, ac.State())
			if allocations != nil {
				assert.GreaterOrEqual(t, allocations(), 2, "alice allocated again with fresh credentials")
			}
			ac.Hangup()
			aw.waitEnd(t, setupWait)
			bw.waitEnd(t, setupWait)
		})
	}
}
