package media

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/media/mediatest"
)

// capacityCase is one media configuration for the capacity figures.
type capacityCase struct {
	name  string
	codec string
	cfg   SenderConfig
	loss  int // loss hint given to the senders (turns Opus FEC on)
}

func capacityCases() []capacityCase {
	var cs []capacityCase
	if OpusAvailable {
		cs = append(cs,
			capacityCase{"opus/default", CodecOpus, SenderConfig{}, 0},
			capacityCase{"opus/default/fec", CodecOpus, SenderConfig{}, 5},
			capacityCase{"opus/capacity", CodecOpus, SenderConfig{Complexity: CapacityEncoder().Complexity, MaxBandwidth: CapacityEncoder().MaxBandwidth}, 0},
			capacityCase{"opus/cx=5", CodecOpus, SenderConfig{Complexity: 5}, 0},
			capacityCase{"opus/cx=3", CodecOpus, SenderConfig{Complexity: 3}, 0},
			capacityCase{"opus/cx=1", CodecOpus, SenderConfig{Complexity: 1}, 0},
			capacityCase{"opus/lowdelay", CodecOpus, SenderConfig{Application: OpusLowDelay, Complexity: 9}, 0},
		)
	}
	return append(cs, capacityCase{"PCMU", CodecPCMU, SenderConfig{}, 0})
}

// BenchmarkCallCapacity measures the media work of one two-way call (both
// ends: capture chunking, level/VAD, encode, RTP, jitter buffer, decode;
// no network stack) per 20 ms of conversation on speech-like audio, and
// derives how many two-way calls one core and this machine could carry at
// 100 % CPU. pion's SRTP/UDP path and scheduling come on top: the live
// checks are BenchmarkLiveCalls and, for the whole call path, call/loadtest.
//
//	go test -run - -bench CallCapacity ./media/
func BenchmarkCallCapacity(b *testing.B) {
	for _, c := range capacityCases() {
		b.Run(c.name, func(b *testing.B) {
			sig := [2][]int16{mediatest.SpeechLike(SampleRate*2, 1), mediatest.SpeechLike(SampleRate*2, 2)}
			clk := newFakeClock()
			var rs [2]*Receiver
			var ss [2]*Sender
			for i := range rs {
				r, err := NewReceiver(ReceiverConfig{Codec: c.codec, Now: clk.now})
				require.NoError(b, err)
				defer r.Close()
				rs[i] = r
			}
			for i := range ss {
				cfg := c.cfg
				cfg.Codec = c.codec
				s, err := NewSender(&pushWriter{r: rs[1-i]}, cfg)
				require.NoError(b, err)
				defer s.Close()
				s.SetPacketLoss(c.loss)
				ss[i] = s
			}
			out := make([]int16, 480)
			i := 0
			for b.Loop() {
				off := (i % 100) * 960
				for half := range 2 {
					for e := range 2 {
						_, _ = ss[e].WritePCM(sig[e][off+half*480 : off+(half+1)*480])
					}
					clk.add(10 * time.Millisecond)
					for e := range 2 {
						_, _ = rs[e].ReadPCM(out)
					}
				}
				i++
			}
			per := b.Elapsed().Seconds() / float64(b.N) // CPU seconds per 20 ms of one two-way call
			b.ReportMetric(per*1e6, "µs/call")
			b.ReportMetric(0.020/per, "calls/core")
			b.ReportMetric(float64(runtime.NumCPU())*0.020/per, "calls/machine")
		})
	}
}

// BenchmarkLiveCalls runs two-way calls in one process for 3 s of real
// time, every call end driven by its own 10 ms device-like clock (capture →
// Sender, playback ← Receiver), and reports ticks whose work overran into
// the next one (overruns), the worst tick lateness, and receiver concealed
// frames. Zero overruns means the process sustains that many calls. Its
// sub-benchmarks set the number of calls and the Opus complexity; run one
// alone on a quiet machine, without -race:
//
//	go test -run - -bench 'LiveCalls/calls=100/complexity=default' -benchtime 1x ./media/
func BenchmarkLiveCalls(b *testing.B) {
	for _, calls := range []int{100, 200} {
		for _, cx := range []int{0, 1} {
			name := fmt.Sprintf("calls=%d/complexity=%d", calls, cx)
			if cx == 0 {
				name = fmt.Sprintf("calls=%d/complexity=default", calls)
			}
			b.Run(name, func(b *testing.B) {
				for range b.N {
					liveCalls(b, calls, cx)
				}
			})
		}
	}
}

// liveCalls runs calls two-way calls at Opus complexity cx (0: the default).
func liveCalls(t testing.TB, calls, cx int) {
	const dur = 3 * time.Second
	codec := Codecs()[0].Name
	type end struct {
		s *Sender
		r *Receiver
	}
	ends := make([]end, 2*calls)
	for i := range ends {
		r, err := NewReceiver(ReceiverConfig{Codec: codec})
		require.NoError(t, err)
		ends[i].r = r
	}
	for i := range ends {
		peer := ends[i^1].r
		s, err := NewSender(&pushWriter{r: peer}, SenderConfig{Codec: codec, Complexity: cx})
		require.NoError(t, err)
		ends[i].s = s
	}
	sig := mediatest.SpeechLike(SampleRate, 3)
	var overruns, ticks atomic.Int64
	var worst atomic.Int64
	start := time.Now().Add(50 * time.Millisecond)
	var wg sync.WaitGroup
	for i := range ends {
		wg.Add(1)
		go func(e end, phase time.Duration) {
			defer wg.Done()
			in := make([]int16, 480)
			out := make([]int16, 480)
			t0 := start.Add(phase)
			tm := time.NewTimer(time.Hour)
			defer tm.Stop()
			for k := 0; time.Duration(k)*10*time.Millisecond < dur; {
				due := t0.Add(time.Duration(k) * 10 * time.Millisecond)
				if w := time.Until(due); w > 0 {
					tm.Reset(w)
					<-tm.C
					continue
				}
				off := (k % 100) * 480
				copy(in, sig[off:off+480])
				_, _ = e.s.WritePCM(in)
				_, _ = e.r.ReadPCM(out)
				late := time.Since(due)
				if late > 10*time.Millisecond {
					overruns.Add(1)
				}
				if int64(late) > worst.Load() {
					worst.Store(int64(late))
				}
				ticks.Add(1)
				k++
			}
		}(ends[i], time.Duration(i%10)*time.Millisecond)
	}
	wg.Wait()
	var concealed, late uint64
	for _, e := range ends {
		st := e.r.Stats()
		concealed += st.Concealed
		late += st.Late
		require.NoError(t, e.s.Close())
		require.NoError(t, e.r.Close())
	}
	t.Logf("%d two-way calls (%s), %d ticks: overruns %d, worst tick lateness %v, receiver late %d concealed %d",
		calls, codec, ticks.Load(), overruns.Load(), time.Duration(worst.Load()), late, concealed)
	if b, ok := t.(*testing.B); ok {
		b.ReportMetric(float64(calls), "calls")
		b.ReportMetric(float64(overruns.Load()), "overruns")
		b.ReportMetric(float64(time.Duration(worst.Load()).Microseconds())/1000, "worst-ms")
		b.ReportMetric(float64(concealed), "concealed")
		b.ReportMetric(0, "ns/op")
	}
}
