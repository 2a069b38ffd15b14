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
// (OnTrack fires there).
func TestRenegotiationTrackMidCall(t *testing.T) {
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
			assert.Empty(t, a.out.errors())
			assert.Empty(t, b.out.errors())
		})
	}
}
