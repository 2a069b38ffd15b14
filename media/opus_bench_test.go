//go:build cgo

package media

import (
	"fmt"
	"testing"

	"github.com/dialtone-dev/dialtone/media/mediatest"
)

// opusSpeechSNR encodes and decodes 4 s of speech-like signal with cfg and
// returns the SNR after alignment (dB) and the bitrate (kbit/s).
func opusSpeechSNR(tb testing.TB, cfg EncoderConfig, lossHint int) (snr, kbps float64) {
	sig := mediatest.SpeechLike(SampleRate*4, 1)
	enc, err := NewEncoder(CodecOpus, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	_ = enc.SetPacketLoss(lossHint)
	dec, _ := NewDecoder(CodecOpus)
	buf := make([]byte, 1500)
	pcm := make([]int16, 5760)
	var out []int16
	bytes := 0
	for off := 0; off+960 <= len(sig); off += 960 {
		n, err := enc.Encode(sig[off:off+960], buf)
		if err != nil {
			tb.Fatal(err)
		}
		bytes += n
		m, _ := dec.Decode(buf[:n], pcm)
		out = append(out, pcm[:m]...)
	}
	d, _ := mediatest.Delay(sig, out)
	return mediatest.SNR(sig, out, d), float64(bytes*8) / 4 / 1000
}

// BenchmarkOpusSpeech is the cost/quality table behind the default encoder
// settings: encode time per 20 ms frame of speech-like signal at 32 kbit/s,
// SNR after decoding, and the bitrate actually produced, per application
// mode, bandwidth cap and complexity (and with FEC on for the default).
//
//	go test -run - -bench OpusSpeech ./media/
func BenchmarkOpusSpeech(b *testing.B) {
	type setting struct {
		name string
		cfg  EncoderConfig
		loss int
	}
	var list []setting
	for _, cx := range []int{1, 2, 3, 5, 7, 9, 10} {
		list = append(list, setting{fmt.Sprintf("voip/full/cx=%d", cx), EncoderConfig{Complexity: cx}, 0})
	}
	for _, cx := range []int{1, 3, 5, 9} {
		list = append(list, setting{fmt.Sprintf("voip/wide/cx=%d", cx), EncoderConfig{Complexity: cx, MaxBandwidth: OpusWideband}, 0})
	}
	for _, cx := range []int{3, 9} {
		list = append(list,
			setting{fmt.Sprintf("voip/full/cx=%d/fec", cx), EncoderConfig{Complexity: cx}, 10},
			setting{fmt.Sprintf("audio/full/cx=%d", cx), EncoderConfig{Complexity: cx, Application: OpusAudio}, 0},
			setting{fmt.Sprintf("lowdelay/full/cx=%d", cx), EncoderConfig{Complexity: cx, Application: OpusLowDelay}, 0})
	}
	sig := mediatest.SpeechLike(SampleRate*2, 1)
	for _, st := range list {
		b.Run(st.name, func(b *testing.B) {
			snr, kbps := opusSpeechSNR(b, st.cfg, st.loss)
			enc, err := NewEncoder(CodecOpus, st.cfg)
			if err != nil {
				b.Fatal(err)
			}
			_ = enc.SetPacketLoss(st.loss)
			out := make([]byte, 1500)
			i := 0
			for b.Loop() {
				off := (i % 100) * 960
				if _, err := enc.Encode(sig[off:off+960], out); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e3/float64(b.N), "µs/frame")
			b.ReportMetric(snr, "SNR-dB")
			b.ReportMetric(kbps, "kbit/s")
		})
	}
}

func BenchmarkOpusDecode(b *testing.B) {
	sig := mediatest.SpeechLike(SampleRate*2, 1)
	enc, _ := NewEncoder(CodecOpus, EncoderConfig{})
	_ = enc.SetPacketLoss(10)
	var pkts [][]byte
	for off := 0; off+960 <= len(sig); off += 960 {
		out := make([]byte, 1500)
		n, _ := enc.Encode(sig[off:off+960], out)
		pkts = append(pkts, out[:n])
	}
	pcm := make([]int16, 5760)
	for _, mode := range []string{"decode", "plc", "fec"} {
		b.Run(mode, func(b *testing.B) {
			dec, _ := NewDecoder(CodecOpus)
			i := 0
			for b.Loop() {
				p := pkts[i%len(pkts)]
				var err error
				switch mode {
				case "decode":
					_, err = dec.Decode(p, pcm)
				case "plc":
					err = dec.DecodePLC(pcm[:960])
				case "fec":
					err = dec.DecodeFEC(p, pcm[:960])
				}
				if err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e3/float64(b.N), "µs/frame")
		})
	}
}
