package call

import (
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/media"
	"github.com/stretchr/testify/assert"
)

func TestCodecDelay(t *testing.T) {
	assert.Equal(t, 26500*time.Microsecond, codecDelay(media.CodecOpus, 20*time.Millisecond), "a frame plus Opus's look-ahead")
	assert.Equal(t, 20*time.Millisecond, codecDelay(media.CodecPCMU, 20*time.Millisecond), "PCMU has no look-ahead")
}

// The MOS estimate is fed what the listener got: a frame FEC rebuilt was
// heard, a late one was not; the delay is the codec's own.
func TestMOSFromHeardLoss(t *testing.T) {
	prev := Stats{PacketsReceived: 1000, PacketsLost: 10, FECRecovered: 5, Late: 1}
	tests := []struct {
		name           string
		cur            Stats
		heard, delayMs float64 // the heard loss (%) and one-way delay (ms) MOS should see
	}{
		{
			name:  "network loss all rebuilt by FEC",
			cur:   Stats{Codec: media.CodecOpus, PacketsReceived: 1090, PacketsLost: 20, FECRecovered: 15, Late: 1, BufferDelay: 20 * time.Millisecond, RTT: 10 * time.Millisecond},
			heard: 0, delayMs: 5 + 20 + 26.5,
		},
		{
			name:  "half rebuilt, two late",
			cur:   Stats{Codec: media.CodecOpus, PacketsReceived: 1090, PacketsLost: 20, FECRecovered: 10, Late: 3, BufferDelay: 20 * time.Millisecond},
			heard: 7, delayMs: 20 + 26.5,
		},
		{
			name:  "PCMU: no FEC, no look-ahead",
			cur:   Stats{Codec: media.CodecPCMU, PacketsReceived: 1095, PacketsLost: 15, FECRecovered: 5, Late: 1, BufferDelay: 20 * time.Millisecond},
			heard: 5, delayMs: 20 + 20,
		},
		{
			name:  "new receiver: counters restarted",
			cur:   Stats{Codec: media.CodecOpus, PacketsReceived: 50, PacketsLost: 12, BufferDelay: 20 * time.Millisecond},
			heard: 0, delayMs: 20 + 26.5,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.cur
			st.HeardLoss = heardLoss(prev, st)
			assert.InDelta(t, tt.heard, st.HeardLoss, 1e-9)
			assert.InDelta(t, MOS(tt.delayMs, tt.heard), estimateMOS(st, 20*time.Millisecond), 1e-9)
		})
	}
	// The network lost 10 %, the listener nothing: the score is a clean
	// call's, not a 10 %-loss call's.
	clean := Stats{Codec: media.CodecOpus, Loss: 10, HeardLoss: 0, BufferDelay: 20 * time.Millisecond}
	assert.Greater(t, estimateMOS(clean, 20*time.Millisecond), 4.3)
}
