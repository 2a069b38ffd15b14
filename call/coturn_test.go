package call_test

import (
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

	ac, err := a.Dial(t.Context(), "bob")
	require.NoError(t, err)
	aw := watch(ac)
	bc := nextIncoming(t, b, setupWait)
	bw := watch(bc)
	start := time.Now()
	require.NoError(t, bc.Accept(ctxT(t, setupWait)))
	aw.waitState(t, call.Connected, setupWait)
	bw.waitState(t, call.Connected, setupWait)
	took := time.Since(start)
	t.Logf("accept → connected through coturn: %v", took)
	assert.Less(t, took, relayConnectBound, "a relay-only call must not wait for a direct path that cannot exist")

	require.NoError(t, b.Speaker.Wait(ctxT(t, 10*time.Second), b.Speaker.Len()+2*sec+sec/4))
	require.NoError(t, a.Speaker.Wait(ctxT(t, 10*time.Second), a.Speaker.Len()+2*sec+sec/4))
	corrAB, snrAB := heard(t, sigA, b.Speaker.Samples())
	corrBA, snrBA := heard(t, sigB, a.Speaker.Samples())
	t.Logf("through coturn: alice→bob corr %.3f SNR %.1f dB; bob→alice corr %.3f SNR %.1f dB", corrAB, snrAB, corrBA, snrBA)
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
