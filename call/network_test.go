package call_test

import (
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/media/pcm"
	"github.com/dialtone-dev/dialtone/signaling/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func vnetPhones(t *testing.T) (a, b *calltest.Phone, net *calltest.Network, sigA []int16) {
	t.Helper()
	lab := newLab(t, server.Config{})
	net, err := calltest.NewNetwork(calltest.NetworkConfig{Delay: 5 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = net.Close() })
	mk := func(user string, mic []int16) *calltest.Phone {
		cfg := fast()
		cfg.DisconnectedGrace = 200 * time.Millisecond
		cfg.SettingEngine, err = net.SettingEngine()
		require.NoError(t, err)
		opts := calltest.PhoneOptions{Config: cfg}
		if mic != nil {
			opts.Mic = pcm.Loop(mic)
		}
		return newPhone(t, lab, user, opts)
	}
	sigA = signalFor(6, 2)
	return mk("alice", sigA), mk("bob", nil), net, sigA
}

// The network path dies and comes back (a phone moving between networks):
// ICE restarts, the call passes through Reconnecting and is Connected again,
// and audio resumes.
func TestNetworkChangeICERestart(t *testing.T) {
	a, b, net, sigA := vnetPhones(t)
	ac, bc, aw, bw := connect(t, a, b)

	net.Cut(true)
	aw.waitState(t, call.Reconnecting, 5*time.Second)
	bw.waitState(t, call.Reconnecting, 5*time.Second)
	net.Cut(false)
	aw.waitStateAfter(t, call.Reconnecting, call.Connected, 10*time.Second)
	bw.waitStateAfter(t, call.Reconnecting, call.Connected, 10*time.Second)
	require.NoError(t, b.Speaker.Wait(ctxT(t, 5*time.Second), b.Speaker.Len()+2*sec+sec/4))
	corr, snr := heard(t, sigA, b.Speaker.Samples())
	t.Logf("after the restart: corr %.3f SNR %.1f dB; alice %v; bob %v", corr, snr, aw.states(), bw.states())
	assert.Greater(t, corr, 0.9, "audio resumes after the network change")

	ac.Hangup()
	aw.waitEnd(t, setupWait)
	bw.waitEnd(t, setupWait)
	_ = bc
}

// A cut that never heals ends the call ice-failed on both sides within the
// bound the ICE timers set.
func TestNetworkCutForeverEndsICEFailed(t *testing.T) {
	a, b, net, _ := vnetPhones(t)
	_, _, aw, bw := connect(t, a, b)
	net.Cut(true)
	start := time.Now()
	// disconnected (0.5 s) + grace + restart + failed (1.5 s) + one more
	// restart after failed + failed again: well under 10 s.
	assert.Equal(t, call.ReasonICEFailed, aw.waitEnd(t, 10*time.Second))
	assert.Equal(t, call.ReasonICEFailed, bw.waitEnd(t, 10*time.Second))
	t.Logf("ice-failed after %v", time.Since(start).Round(time.Millisecond))
}
