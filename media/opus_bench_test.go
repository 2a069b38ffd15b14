//go:build cgo

package media

import (
	"fmt"
	"testing"

	"github.com/dialtone-dev/dialtone/media/mediatest"
)

func BenchmarkOpusEncode(b *testing.B) {
	sig := mediatest.SpeechLike(SampleRate*2, 1)
	for _, cx := range []int{10, 5} {
		for _, fec := range []bool{false, true} {
			b.Run(fmt.Sprintf("complexity=%d/fec=%v", cx, fec), func(b *testing.B) {
				enc, err := NewEncoder(CodecOpus, EncoderConfig{Complexity: cx})
				if err != nil {
					b.Fatal(err)
				}
				if fec {
					_ = enc.SetPacketLoss(10)
				}
				out := make([]byte, 1500)
				i := 0
				for b.Loop() {
					off := (i % 100) * 960
					if _, err := enc.Encode(sig[off:off+960], out); err != nil {
						b.Fatal(err)
					}
					i++
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/frame")
			})
		}
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
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/frame")
		})
	}
}
