package negotiation

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConnectBasic(t *testing.T) {
	for _, offerer := range []string{"impolite", "polite"} {
		t.Run(offerer, func(t *testing.T) {
			a, b := newPair(t, pairOptions{})
			p := a
			if offerer == "polite" {
				p = b
			}
			_, err := p.pc.AddTrack(newAudioTrack(t, "x"))
			require.NoError(t, err)
			require.Eventually(t, func() bool {
				return a.connected() && b.connected() && a.n.idle() && b.n.idle()
			}, 10*time.Second, 2*time.Millisecond)
			assert.Empty(t, a.out.errors())
			assert.Empty(t, b.out.errors())
			assert.Contains(t, a.pc.CurrentRemoteDescription().SDP+a.pc.CurrentLocalDescription().SDP, "stream-x x")
			assert.True(t, strings.Contains(b.pc.CurrentRemoteDescription().SDP+b.pc.CurrentLocalDescription().SDP, "stream-x x"))
			assert.Equal(t, uint64(1), p.n.Counters().OffersSent)
			assert.Equal(t, webrtc.SignalingStateStable, a.pc.SignalingState())
		})
	}
}

// TestTracksBeforeNew: a track added before the Negotiator existed (pion
// fired negotiationneeded to nobody) is still offered.
func TestTracksBeforeNew(t *testing.T) {
	tr := newAudioTrack(t, "early")
	a, b := newPair(t, pairOptions{beforeNew: func(pc *webrtc.PeerConnection, polite bool) {
		if polite {
			_, err := pc.AddTrack(tr)
			require.NoError(t, err)
		}
	}})
	converged(t, a, b, nil, []webrtc.TrackLocal{tr})
	assert.Equal(t, uint64(1), b.n.Counters().OffersSent)
}

// TestSendFailureRetry: when Send fails for the polite side's offer, the
// offer is forgotten and Negotiate sends it again once signaling works.
func TestSendFailureRetry(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	a, b := newPair(t, pairOptions{cfg: func(c *Config) {
		if c.Polite {
			send := c.Send
			c.Send = func(s Signal) error {
				if fail.Load() {
					return errors.New("transport down")
				}
				return send(s)
			}
		}
	}})
	var bTracks []webrtc.TrackLocal
	require.NoError(t, addTrack(t, &bTracks, "b0")(b))
	require.Eventually(t, func() bool { return b.n.Counters().OffersSent == 1 && b.n.idle() == false }, 5*time.Second, time.Millisecond)
	fail.Store(false)
	b.n.Negotiate()
	converged(t, a, b, nil, bTracks)
	assert.Equal(t, uint64(2), b.n.Counters().OffersSent)
}

// TestWaitForOffer: both sides add their track at once, as a caller and a
// callee do on answer; the callee waits for the caller's offer and answers
// its own track into it: one m-line, no glare, no rollback, every track
// across. The callee may follow its answer with one spare offer (see
// "Known limits" in doc.go), never with one that collides.
func TestWaitForOffer(t *testing.T) {
	a, b := newPair(t, pairOptions{cfg: func(c *Config) {
		c.WaitForOffer = c.Polite
	}})
	var aTracks, bTracks []webrtc.TrackLocal
	require.NoError(t, addTrack(t, &bTracks, "callee")(b))
	require.NoError(t, addTrack(t, &aTracks, "caller")(a))
	converged(t, a, b, aTracks, bTracks)
	assert.Equal(t, uint64(1), a.n.Counters().OffersSent)
	assert.Len(t, b.pc.GetTransceivers(), 1, "the callee's track went into the caller's m-line")
	assert.LessOrEqual(t, b.n.Counters().OffersSent, uint64(1), "the waiting side made no offer of its own")
	assert.Zero(t, b.n.Counters().Rollbacks)
	assert.Zero(t, a.n.Counters().IgnoredOffers)
}
