package main

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/internal/netimpair"
	"github.com/dialtone-dev/dialtone/internal/testenv"
	"github.com/dialtone-dev/dialtone/media/mediatest"
)

// TestChromiumClean runs the Chromium anchor once on a clean link with 4 s
// of speech: the speech must arrive through the relay, sound close to what
// was sent, and take a plausible time to get there.
func TestChromiumClean(t *testing.T) {
	chromium := os.Getenv("DIALTONE_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/lib/chromium/chromium"
	}
	chromium = testenv.Program(t, chromium)
	if testing.Short() {
		t.Skip("starts a browser")
	}
	gap := make([]int16, mediatest.SampleRate*4/10)
	speech := mediatest.Speech(t, mediatest.SpeechSet()[0])[:4*mediatest.SampleRate]
	speech = slices.Concat(gap, speech, gap)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := chromiumCall(ctx, chromium, condition{name: "clean", link: netimpair.Link{}, frameMillis: 20}, speech, 1)
	if errors.Is(err, errChromiumNeedsRoot) {
		testenv.Missing(t, "%v", err)
	}
	require.NoError(t, err)
	t.Logf("MOS %.2f, mouth-to-ear %v, concealed %.2f %%, %.1f adjustments/min, %.1f packets/s, jitter buffer %v (target %v), FEC packets %d, clipped %d",
		r.mos, r.mouthToEar, 100*r.concealed, r.adjustments, r.packetRate, r.jitterBuffer, r.jitterTarget, r.fecPackets, r.clipped)
	t.Logf("relay: forward %+v, backward %+v; pc1's pair %s", r.forward, r.backward, r.selected)
	t.Logf("answer:\n%s", r.answer)

	assert.Greater(t, r.forward.Sent, 0, "the relay carried pc1's audio")
	assert.Greater(t, r.backward.Sent, 0, "the relay carried pc2's replies")
	assert.Greater(t, r.mos, 3.5, "MOS-LQO on a clean link")
	assert.Greater(t, r.mouthToEar, time.Duration(0), "mouth-to-ear")
	assert.Less(t, r.mouthToEar, 300*time.Millisecond, "mouth-to-ear")
	assert.Less(t, r.concealed, 0.02, "concealment on a clean link")
	assert.Zero(t, r.clipped, "clipped samples")
}
