package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	chromiumflags "github.com/dialtone-dev/dialtone/internal/chromium"
	"github.com/dialtone-dev/dialtone/internal/netimpair"
	"github.com/dialtone-dev/dialtone/internal/testenv"
	"github.com/dialtone-dev/dialtone/media/mediatest"
)

// TestChromiumClean runs the Chromium anchor on a clean link with 4 s of
// speech, at 20 ms and at 10 ms frames: the speech must arrive through the
// relay in packets of the asked length, sound close to what was sent, and
// take a plausible time to get there.
func TestChromiumClean(t *testing.T) {
	chromium := os.Getenv("DIALTONE_CHROMIUM")
	if chromium == "" {
		chromium = chromiumflags.DefaultPath
	}
	chromium = testenv.Program(t, chromium)
	if testing.Short() {
		t.Skip("starts a browser")
	}
	gap := make([]int16, mediatest.SampleRate*4/10)
	speech := mediatest.Speech(t, mediatest.SpeechSet()[0])[:4*mediatest.SampleRate]
	speech = slices.Concat(gap, speech, gap)

	for _, frameMillis := range []int{20, 10} {
		t.Run(fmt.Sprintf("%dms", frameMillis), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c := condition{name: "clean", link: netimpair.Link{}, frameMillis: frameMillis}
			r, err := chromiumCall(ctx, chromium, c, speech, 1)
			if errors.Is(err, errChromiumNeedsRoot) {
				testenv.Missing(t, "%v", err)
			}
			require.NoError(t, err)
			t.Logf("MOS %.2f, mouth-to-ear %v, concealed %.2f %%, %.1f adjustments/min, %.1f packets/s, jitter buffer %v (target %v), clipped %d",
				r.mos, r.mouthToEar, 100*r.concealed, r.adjustments, r.packetRate, r.jitterBuffer, r.jitterTarget, r.clipped)
			t.Logf("relay: forward %+v, backward %+v; pc1's pair %s", r.forward, r.backward, r.selected)

			assert.Greater(t, r.forward.Sent, 0, "the relay carried pc1's audio")
			assert.Greater(t, r.backward.Sent, 0, "the relay carried pc2's replies")
			assert.InEpsilon(t, 1000/float64(frameMillis), r.packetRate, 0.15, "audio packets per second")
			assert.Greater(t, r.mos, 3.5, "MOS-LQO on a clean link")
			assert.Greater(t, r.mouthToEar, time.Duration(0), "mouth-to-ear")
			assert.Less(t, r.mouthToEar, 300*time.Millisecond, "mouth-to-ear")
			assert.Less(t, r.concealed, 0.02, "concealment on a clean link")
			assert.Zero(t, r.clipped, "clipped samples")
		})
	}
}
