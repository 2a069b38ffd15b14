//go:build cgo

package media

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/media/mediatest"
)

// TestOpusConcealmentLength checks that PLC and FEC fill exactly the
// samples asked for, from a scratch buffer with room to spare, and that
// a frame rebuilt from the next packet's FEC data sounds like the frame
// that was lost. libopus conceals as many samples as it is given room for,
// so a decoder that passed the buffer's capacity would conceal 120 ms per
// lost 20 ms frame and play PLC in place of the FEC frame.
func TestOpusConcealmentLength(t *testing.T) {
	const frame = SampleRate / 50
	sig := mediatest.SpeechLike(SampleRate, 7)
	enc, err := NewEncoder(CodecOpus, EncoderConfig{FrameMillis: 20})
	require.NoError(t, err)
	require.NoError(t, enc.SetPacketLoss(20)) // FEC on
	var pkts [][]byte
	for off := 0; off+frame <= len(sig); off += frame {
		out := make([]byte, 1500)
		n, err := enc.Encode(sig[off:off+frame], out)
		require.NoError(t, err)
		pkts = append(pkts, out[:n])
	}

	const sentinel = 12345
	scratch := make([]int16, 6*frame)
	fill := func() {
		for i := range scratch {
			scratch[i] = sentinel
		}
	}
	untouched := func(from int) bool {
		for _, v := range scratch[from:] {
			if v != sentinel {
				return false
			}
		}
		return true
	}

	// Play the stream losing frame lost, once concealed by PLC and once
	// rebuilt from FEC, and compare the lost frame with the original.
	const lost = 30
	play := func(useFEC bool) []int16 {
		dec, err := NewDecoder(CodecOpus)
		require.NoError(t, err)
		var out []int16
		for i, p := range pkts {
			fill()
			switch {
			case i == lost && useFEC:
				require.NoError(t, dec.DecodeFEC(pkts[i+1], scratch[:frame]))
				assert.True(t, untouched(frame), "FEC wrote past the frame it was asked for")
				out = append(out, scratch[:frame]...)
				continue
			case i == lost:
				require.NoError(t, dec.DecodePLC(scratch[:frame]))
				assert.True(t, untouched(frame), "PLC wrote past the frame it was asked for")
				out = append(out, scratch[:frame]...)
				continue
			}
			n, err := dec.Decode(p, scratch)
			require.NoError(t, err)
			require.Equal(t, frame, n)
			out = append(out, scratch[:n]...)
		}
		return out
	}
	clean := func() []int16 {
		dec, err := NewDecoder(CodecOpus)
		require.NoError(t, err)
		var out []int16
		for _, p := range pkts {
			n, err := dec.Decode(p, scratch)
			require.NoError(t, err)
			out = append(out, scratch[:n]...)
		}
		return out
	}()
	delay, _ := mediatest.Delay(sig, clean)
	ref := sig[lost*frame : (lost+1)*frame]
	snrAt := func(out []int16) float64 { return mediatest.SNR(ref, out[lost*frame:], delay) }
	withFEC, withPLC := play(true), play(false)
	t.Logf("lost frame: SNR %.1f dB with FEC, %.1f dB with PLC, %.1f dB clean", snrAt(withFEC), snrAt(withPLC), snrAt(clean))
	assert.Greater(t, snrAt(withFEC), snrAt(withPLC)+3, "the FEC frame should be much closer to the original than PLC")
	// The stream stays aligned after the loss: the next second frame decodes
	// as in the clean run.
	next := (lost + 2) * frame
	assert.Greater(t, mediatest.SNR(clean[next:next+frame], withFEC[next:], 0), 10.0)
}

// TestOpusAudioModeUnderLoss checks what call.CodecConfig.Application
// promises for OpusAudio: CELT (no in-band FEC possible) on a clean link
// and at up to 5 % reported loss, hybrid, which carries SILK's in-band
// FEC, above it. The TOC byte's configuration number tells the mode
// (RFC 6716 §3.1: 0–11 SILK, 12–15 hybrid, 16–31 CELT).
func TestOpusAudioModeUnderLoss(t *testing.T) {
	sig := mediatest.SpeechLike(SampleRate, 3)
	modes := func(app OpusApplication, loss int) map[string]int {
		// The capacity-minded use of OpusAudio: CELT on speech below
		// complexity 7.
		enc, err := NewEncoder(CodecOpus, EncoderConfig{Application: app, Complexity: 3})
		require.NoError(t, err)
		require.NoError(t, enc.SetPacketLoss(loss))
		out := make([]byte, 1500)
		m := map[string]int{}
		for off := 0; off+960 <= len(sig); off += 960 {
			_, err := enc.Encode(sig[off:off+960], out)
			require.NoError(t, err)
			switch c := out[0] >> 3; {
			case c < 12:
				m["silk"]++
			case c < 16:
				m["hybrid"]++
			default:
				m["celt"]++
			}
		}
		return m
	}
	assert.Equal(t, map[string]int{"celt": 50}, modes(OpusAudio, 0))
	assert.Equal(t, map[string]int{"celt": 50}, modes(OpusAudio, 5))
	assert.Equal(t, map[string]int{"hybrid": 50}, modes(OpusAudio, 10))
	assert.Equal(t, map[string]int{"hybrid": 50}, modes(OpusVoIP, 0), "the default codes speech with SILK (hybrid at fullband)")
}
