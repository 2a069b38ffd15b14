package negotiation

import (
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// feed writes a packet to every track every 20 ms until the test ends, so
// the far side's OnTrack fires (pion fires it on the first RTP packet).
func feed(t *testing.T, tracks ...*webrtc.TrackLocalStaticSample) {
	t.Helper()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				for _, tr := range tracks {
					_ = tr.WriteSample(media.Sample{Data: []byte{0xf8, 0xff, 0xfe}, Duration: 20 * time.Millisecond})
				}
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}

// TestRenegotiationTrackMidCall: a second track added mid-call (by either
// side) is negotiated through OnNegotiationNeeded and reaches the far side
// (OnTrack fires there). The answer to that re-offer names the DTLS role
// its side took in the first exchange: pion on its own answers a re-offer
// "active" whatever its role; when it made the first offer it is the DTLS
// server, and Chrome refuses such an answer ("Failed to set SSL role for
// the transport").
func TestRenegotiationTrackMidCall(t *testing.T) {
	other := map[string]string{"active": "passive", "passive": "active"}
	for _, adder := range []string{"impolite", "polite"} {
		t.Run(adder, func(t *testing.T) {
			a, b := newPair(t, pairOptions{})
			first := newAudioTrack(t, "first")
			_, err := a.pc.AddTrack(first)
			require.NoError(t, err)
			second := newAudioTrack(t, "second")
			feed(t, first, second)
			require.Eventually(t, func() bool { return b.remoteTracks() == 1 && a.connected() && b.connected() },
				10*time.Second, 2*time.Millisecond, "first track")
			// a offered first; b's answer fixed the roles.
			bSetup := setupOf(b.pc.CurrentLocalDescription().SDP)
			require.Contains(t, other, bSetup)

			from, to := a, b
			if adder == "polite" {
				from, to = b, a
			}
			offers := from.n.Counters().OffersSent
			_, err = from.pc.AddTrack(second)
			require.NoError(t, err)
			want := 2
			if from == b {
				want = 1
			}
			require.Eventually(t, func() bool { return to.remoteTracks() == want && a.n.idle() && b.n.idle() },
				10*time.Second, 2*time.Millisecond, "second track did not reach the far side")
			to.mu.Lock()
			last := to.tracks[len(to.tracks)-1]
			to.mu.Unlock()
			assert.Equal(t, "second", last.ID())
			assert.Equal(t, offers+1, from.n.Counters().OffersSent, "renegotiated with one offer")

			// What the offerer was told (pion keeps its own text of the
			// answer, which may still say active).
			role := map[*peer]string{a: other[bSetup], b: bSetup}[to]
			told := from.pc.CurrentRemoteDescription().SDP
			assert.Equal(t, role, setupOf(told), "the answer keeps the role of the first exchange")
			assert.NotContains(t, told, "a=setup:"+other[role], "one role in every m-line")
			assert.True(t, a.connected() && b.connected(), "the call survives the renegotiation")
			assert.Empty(t, a.out.errors())
			assert.Empty(t, b.out.errors())
		})
	}
}

func TestKeepSetup(t *testing.T) {
	in := "v=0\r\na=setup:actpass\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=setup:active\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=setup:active\r\n"
	out := keepSetup(in, "passive")
	assert.Equal(t, "v=0\r\na=setup:passive\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=setup:passive\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=setup:passive\r\n", out)
	assert.Equal(t, "passive", setupOf(out))
	assert.Equal(t, "", setupOf("v=0\r\n"))
	assert.Equal(t, "a=setup:active\n", keepSetup("a=setup:passive\n", "active"), "LF-only lines keep their ending")
}
