package media

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/media/mediatest"
)

// BenchmarkCallMedia measures one direction of one call per 20 ms frame:
// capture chunking, level/VAD, encode, RTP packetisation, jitter buffer,
// decode, and reports how many two-way calls the machine's cores sustain.
func BenchmarkCallMedia(b *testing.B) {
	for _, c := range Codecs() {
		for _, cx := range []int{9, 5} {
			if c.Name != CodecOpus && cx != 9 {
				continue
			}
			b.Run(fmt.Sprintf("%s/complexity=%d", c.Name, cx), func(b *testing.B) {
				sig := mediatest.SpeechLike(SampleRate*2, 1)
				clk := newFakeClock()
				r, _ := NewReceiver(ReceiverConfig{Codec: c.Name, Now: clk.now})
				defer r.Close()
				s, _ := NewSender(&pushWriter{r: r}, SenderConfig{Codec: c.Name, Complexity: cx})
				defer s.Close()
				out := make([]int16, 480)
				i := 0
				for b.Loop() {
					off := (i % 100) * 960
					_, _ = s.WritePCM(sig[off : off+480])
					_, _ = s.WritePCM(sig[off+480 : off+960])
					clk.add(10 * time.Millisecond)
					_, _ = r.ReadPCM(out)
					clk.add(10 * time.Millisecond)
					_, _ = r.ReadPCM(out)
					i++
				}
				per := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(per*1e6, "µs/frame")
				b.ReportMetric(float64(runtime.NumCPU())*0.020/(2*per), "calls/machine")
			})
		}
	}
}

// TestConcurrentCalls runs N two-way calls in one process, every call end
// driven by its own 10 ms device-like clock (capture → Sender, playback ←
// Receiver), and checks that no tick's work overran into the next one and
// no playback ran dry.
func TestConcurrentCalls(t *testing.T) {
	// Opt-in: on a shared machine other work makes the figure meaningless.
	calls, err := strconv.Atoi(os.Getenv("DIALTONE_CALLS"))
	if err != nil || testing.Short() || raceEnabled {
		t.Skip("capacity test: DIALTONE_CALLS=100 go test -run ConcurrentCalls (no -race) on an idle machine")
	}
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
		s, err := NewSender(&pushWriter{r: peer}, SenderConfig{Codec: codec, Complexity: 5})
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
	assert.Zero(t, overruns.Load())
	assert.Zero(t, late)
	// Concealment only at the very end, when the far side has stopped.
	assert.LessOrEqual(t, concealed, uint64(2*calls*6), fmt.Sprint("concealed ", concealed))
}
