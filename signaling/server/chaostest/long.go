package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/media"
	"github.com/dialtone-dev/dialtone/media/mediatest"
	"github.com/dialtone-dev/dialtone/media/pcm"
)

// statsLog keeps a call's per-second stats samples: the latest, and the
// jitter buffer's delay of each.
type statsLog struct {
	mu     sync.Mutex
	n      int
	last   call.Stats
	delays []time.Duration
	done   chan struct{}
}

func logStats(c *call.Call) *statsLog {
	l := &statsLog{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for ev := range c.Events() {
			if ev.Kind != call.EventStats {
				continue
			}
			l.mu.Lock()
			l.n++
			l.last = ev.Stats
			l.delays = append(l.delays, ev.Stats.BufferDelay)
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *statsLog) get() (n int, last call.Stats) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n, l.last
}

// drift returns the jitter buffer's median delay over the first and the
// last tenth of the call, leaving out its first minute (while it adapts
// to the path). A difference between the two ends' clocks would move it
// steadily; a loaded machine only moves it for a while.
func (l *statsLog) drift() (early, late time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.delays
	if len(d) > 120 {
		d = d[60:]
	}
	k := max(1, len(d)/10)
	median := func(v []time.Duration) time.Duration {
		v = slices.Clone(v)
		slices.Sort(v)
		return v[len(v)/2]
	}
	return median(d[:k]), median(d[len(d)-k:])
}

// runLong holds one call for d, speech-like audio both ways, and prints
// every `every` the process's heap and goroutines and each end's packets,
// jitter-buffer delay, audio inserted and removed, and concealment. It
// fails when a stats sample went missing, the heap grew past bounds, the
// jitter buffers' delay drifted, or packets were lost.
func runLong(ctx context.Context, d, every time.Duration, out io.Writer) error {
	url, stop, err := serveLocal()
	if err != nil {
		return err
	}
	defer stop()
	voice := mediatest.SpeechLike(10*media.SampleRate, 7)
	a, err := newPhone(ctx, "long-a", []string{url}, phoneConfig{mic: pcm.Loop(voice)})
	if err != nil {
		return err
	}
	defer a.close()
	b, err := newPhone(ctx, "long-b", []string{url}, phoneConfig{mic: pcm.Loop(voice)})
	if err != nil {
		return err
	}
	defer b.close()
	ca, cb, err := connect(ctx, a, b)
	if err != nil {
		return err
	}
	la, lb := logStats(ca), logStats(cb)
	start := time.Now()
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	line := func(s call.Stats) string {
		return fmt.Sprintf("sent %7d recv %7d lost %3d buffer %5.1f ms ins %6v rem %6v concealed %v",
			s.PacketsSent, s.PacketsReceived, s.PacketsLost, float64(s.BufferDelay)/1e6,
			s.Inserted.Round(time.Millisecond), s.Removed.Round(time.Millisecond), s.ConcealedAudio.Round(time.Millisecond))
	}
	var heap0 uint64
	tick := time.NewTicker(every)
	defer tick.Stop()
	for time.Since(start) < d && ctx.Err() == nil && ca.State() == call.Connected {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		h := heap()
		if heap0 == 0 {
			heap0 = h
		}
		_, sa := la.get()
		_, sb := lb.get()
		fmt.Fprintf(out, "%8v heap %5.1f MiB goroutines %3d | a: %s | b: %s\n", time.Since(start).Round(time.Second),
			float64(h)/(1<<20), runtime.NumGoroutine(), line(sa), line(sb))
	}
	held := time.Since(start)
	heapEnd := heap()
	ca.Hangup()
	var errs []error
	if r, err := waitEnd(ctx, ca, 10*time.Second); err != nil || r != call.ReasonHangup {
		errs = append(errs, fmt.Errorf("caller ended %q %v", r, err))
	}
	if r, err := waitEnd(ctx, cb, 10*time.Second); err != nil || r != call.ReasonRemoteHangup {
		errs = append(errs, fmt.Errorf("callee ended %q %v", r, err))
	}
	<-la.done
	<-lb.done
	fmt.Fprintf(out, "held %v; heap after the first interval %.1f MiB, at the end %.1f MiB\n", held.Round(time.Second), float64(heap0)/(1<<20), float64(heapEnd)/(1<<20))
	if heapEnd > heap0+heap0/2+2<<20 {
		errs = append(errs, fmt.Errorf("heap grew from %d to %d bytes", heap0, heapEnd))
	}
	for _, e := range []struct {
		name string
		log  *statsLog
		peer *statsLog
	}{{"a", la, lb}, {"b", lb, la}} {
		n, last := e.log.get()
		_, peer := e.peer.get()
		early, late := e.log.drift()
		want := int(held / time.Second)
		fmt.Fprintf(out, "%s: %d stats samples for %d s; jitter buffer median %.1f ms in the first tenth, %.1f ms in the last; received %d of the %d the other end sent\n",
			e.name, n, want, float64(early)/1e6, float64(late)/1e6, last.PacketsReceived, peer.PacketsSent)
		if n < want-want/50-2 {
			errs = append(errs, fmt.Errorf("%s: %d stats samples in %d s", e.name, n, want))
		}
		if drift := late - early; drift > 100*time.Millisecond || drift < -100*time.Millisecond {
			errs = append(errs, fmt.Errorf("%s: jitter buffer delay drifted by %v", e.name, drift))
		}
		if peer.PacketsSent > last.PacketsReceived+last.PacketsReceived/100+100 {
			errs = append(errs, fmt.Errorf("%s: received %d of %d packets", e.name, last.PacketsReceived, peer.PacketsSent))
		}
	}
	return errors.Join(errs...)
}
