//go:build cgo

package apm

import (
	"fmt"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/media/apm/internal/speex"
	"github.com/stretchr/testify/require"
)

// variant is one canceller set-up the harness compares.
type variant struct {
	name string
	make func() (*Processor, error)
}

// aecOnly is the configuration the cancellers are compared in: the echo
// canceller and the high-pass filter, without noise suppression or gain
// control, whose level changes would blur the echo figures.
var aecOnly = Config{EchoCancel: true, HighPass: true}

func variants() []variant {
	withDelay := func(p *Processor, err error, d time.Duration) (*Processor, error) {
		if err == nil {
			p.SetDelay(d)
		}
		return p, err
	}
	return []variant{
		{"webrtc", func() (*Processor, error) {
			// The chosen stage: WebRTC with the device's latency reported.
			p, err := New(aecOnly)
			return withDelay(p, err, delayBefore)
		}},
		{"webrtc-all", func() (*Processor, error) {
			p, err := New(Config{EchoCancel: true, NoiseSuppress: true, GainControl: true, HighPass: true})
			return withDelay(p, err, delayBefore)
		}},
		{"webrtc-low", func() (*Processor, error) {
			e, err := newWebRTC(suppressLow)
			if err != nil {
				return nil, err
			}
			p, err := newProcessor(e, aecOnly)
			return withDelay(p, err, delayBefore)
		}},
		{"speex", func() (*Processor, error) {
			// No delay: the filter spans the largest bulk delay and the tail.
			return newProcessor(newSpeex(300*time.Millisecond), aecOnly)
		}},
		{"speex-delayed", func() (*Processor, error) {
			// The reference delayed by the device latency; the filter spans
			// the tail and the unreported jump.
			p, err := newProcessor(newSpeex(200*time.Millisecond), aecOnly)
			return withDelay(p, err, delayBefore)
		}},
	}
}

func (f figures) String() string {
	return fmt.Sprintf("ERLE %.1f dB, converged %v, double talk: near end %+.1f dB (SNR %.1f dB), re-converged %v (then %.1f dB), %v per 10 ms (%.2f %% of a core), own ERLE estimate %.0f dB",
		f.ERLE, f.Converge, -f.NearLoss, f.NearSNR, f.Reconverge, f.ERLEAfter, f.PerFrame.Round(time.Microsecond), f.CorePercent, f.ReportedDB)
}

// BenchmarkEchoHarness runs each canceller through the echo scene and
// reports the harness's figures (docs/PERFORMANCE.md quotes them):
//
//	go test -run '^$' -bench EchoHarness -benchtime 1x ./media/apm
func BenchmarkEchoHarness(b *testing.B) {
	s := echoScene(b)
	for _, v := range variants() {
		b.Run(v.name, func(b *testing.B) {
			var f figures
			for b.Loop() {
				p, err := v.make()
				require.NoError(b, err)
				f, _ = run(p, s)
				p.Close()
			}
			b.ReportMetric(f.ERLE, "dB-ERLE")
			b.ReportMetric(f.Converge.Seconds(), "s-converge")
			b.ReportMetric(-f.NearLoss, "dB-near")
			b.ReportMetric(f.NearSNR, "dB-nearSNR")
			b.ReportMetric(f.Reconverge.Seconds(), "s-reconverge")
			b.ReportMetric(float64(f.PerFrame.Microseconds()), "µs/10ms")
			b.Logf("%s: %v", v.name, f)
		})
	}
}

// speexEngine runs speexdsp's canceller (media/apm/internal/speex) as an
// engine, for the harness's comparison.
type speexEngine struct{ *speex.Engine }

func newSpeex(tail time.Duration) speexEngine { return speexEngine{speex.New(SampleRate, block, tail)} }

func (e speexEngine) set(cfg Config) error {
	e.Set(cfg.EchoCancel, cfg.NoiseSuppress, cfg.GainControl)
	return nil
}
func (e speexEngine) render(frame []int16)                       { e.Render(frame) }
func (e speexEngine) capture(frame []int16, delay time.Duration) { e.Capture(frame, delay) }
func (e speexEngine) erle() float64                              { return e.ERLE() }
func (e speexEngine) close()                                     { e.Close() }
