//go:build cgo && !race

package mediatest

// Signal processing in one goroutine, which the race detector only slows:
// these tests build without it (scripts/test.sh runs them in a pass of
// their own).

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/dialtone-dev/dialtone/media"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// opusRoundTrip encodes pcm with media's Opus encoder at cfg in 20 ms
// frames and decodes it again.
func opusRoundTrip(t testing.TB, pcm []int16, cfg media.EncoderConfig) []int16 {
	return opusLossy(t, pcm, cfg, nil)
}

// opusLossy is opusRoundTrip with the frames for which lost returns true
// replaced by the decoder's concealment.
func opusLossy(t testing.TB, pcm []int16, cfg media.EncoderConfig, lost func() bool) []int16 {
	t.Helper()
	enc, err := media.NewEncoder(media.CodecOpus, cfg)
	require.NoError(t, err)
	defer enc.Close()
	dec, err := media.NewDecoder(media.CodecOpus)
	require.NoError(t, err)
	defer dec.Close()
	const frame = SampleRate / 50
	out := make([]int16, 0, len(pcm)+frame)
	payload := make([]byte, 1500)
	buf := make([]int16, 5760)
	for i := 0; i < len(pcm); i += frame {
		in := make([]int16, frame)
		copy(in, pcm[i:])
		n, err := enc.Encode(in, payload)
		require.NoError(t, err)
		if lost != nil && lost() {
			require.NoError(t, dec.DecodePLC(buf[:frame]))
			out = append(out, buf[:frame]...)
			continue
		}
		m, err := dec.Decode(payload[:n], buf)
		require.NoError(t, err)
		out = append(out, buf[:m]...)
	}
	return out
}

// TestQualityRanksOpusComplexity checks that the measure hears what Opus's
// complexity buys on speech, as PESQ does (P.862.2 on this kind of speech:
// 2.74 at complexity 1, 2.82 at 3, 3.57 at 5, 3.99 at 10): higher
// complexity scores higher, by a clear margin from 1 to 10.
func TestQualityRanksOpusComplexity(t *testing.T) {
	set := SpeechSet()[:2]
	mean := map[int]float64{}
	for _, u := range set {
		x := Speech(t, u)
		for _, c := range []int{1, 3, 5, 10} {
			q, err := Quality(x, opusRoundTrip(t, x, media.EncoderConfig{Complexity: c}))
			require.NoError(t, err)
			t.Logf("%-18s complexity %2d: MOS %.2f NSIM %.3f", u.Voice, c, q.MOS, q.NSIM)
			mean[c] += q.MOS / float64(len(set))
		}
	}
	assert.Greater(t, mean[3], mean[1], "complexity 3 over 1")
	assert.Greater(t, mean[5], mean[3], "complexity 5 over 3")
	assert.Greater(t, mean[10], mean[5], "complexity 10 over 5")
	assert.Greater(t, mean[10]-mean[1], 0.3, "complexity 10 clearly over 1")
}

// TestDefaultEncoderQuality: speech through the encoder at its defaults
// scores where Opus's quality on speech levels off (complexity 9 and 10
// score alike; complexity 3 scores about 4.37 here).
func TestDefaultEncoderQuality(t *testing.T) {
	var mos float64
	set := SpeechSet()[:2]
	for _, u := range set {
		x := Speech(t, u)
		q, err := Quality(x, opusRoundTrip(t, x, media.EncoderConfig{}))
		require.NoError(t, err)
		t.Logf("%-18s MOS %.2f", u.Voice, q.MOS)
		mos += q.MOS / float64(len(set))
	}
	assert.Greater(t, mos, 4.5)
}

// TestQualityFallsWithPacketLoss drops random 20 ms Opus frames, concealed
// by the decoder: the more are lost, the lower the score.
func TestQualityFallsWithPacketLoss(t *testing.T) {
	x := Speech(t, SpeechSet()[3])
	prev := 5.0
	for _, pct := range []int{0, 5, 15} {
		rng := rand.New(rand.NewPCG(uint64(pct), 0x6c6f7373))
		d := opusLossy(t, x, media.EncoderConfig{Complexity: 10}, func() bool { return rng.IntN(100) < pct })
		q, err := Quality(x, d)
		require.NoError(t, err)
		t.Logf("%2d%% frames lost: MOS %.2f NSIM %.3f", pct, q.MOS, q.NSIM)
		assert.Less(t, q.MOS, prev, "%d%% lost", pct)
		prev = q.MOS
	}
}

// BenchmarkOpusComplexityQuality scores media's Opus encoder at each
// complexity and in media.CapacityEncoder's profile on the whole speech
// set, offline (encode, decode, Quality), and reports the mean MOS-LQO of
// each as a metric. The measure hears up to 8 kHz, so it cannot see what
// the capacity profile's wideband cap removes above.
//
//	go test -run '^$' -bench OpusComplexityQuality -benchtime 1x ./media/mediatest
func BenchmarkOpusComplexityQuality(b *testing.B) {
	set := SpeechSet()
	speech := make([][]int16, len(set))
	for i, u := range set {
		speech[i] = Speech(b, u)
	}
	configs := []struct {
		name string
		cfg  media.EncoderConfig
	}{{"capacity", media.CapacityEncoder()}, {"audio-c3", media.EncoderConfig{Application: media.OpusAudio, Complexity: 3}}}
	for _, c := range []int{1, 3, 5, 9, 10} {
		configs = append(configs, struct {
			name string
			cfg  media.EncoderConfig
		}{fmt.Sprintf("c%d", c), media.EncoderConfig{Complexity: c}})
	}
	for range b.N {
		for _, c := range configs {
			var mos float64
			for i, x := range speech {
				q, err := Quality(x, opusRoundTrip(b, x, c.cfg))
				require.NoError(b, err)
				b.Logf("%-18s %-8s: MOS %.2f NSIM %.3f", set[i].Voice, c.name, q.MOS, q.NSIM)
				mos += q.MOS / float64(len(set))
			}
			b.ReportMetric(mos, "MOS@"+c.name)
		}
	}
}
