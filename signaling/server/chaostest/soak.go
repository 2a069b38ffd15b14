package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/signaling/server"
)

// soakConfig sets the soak run.
type soakConfig struct {
	calls    int           // calls to place (0: until duration)
	duration time.Duration // how long to place calls (0: until calls)
	rate     float64       // calls started per second, at most
	parallel int           // pairs of phones calling at once
	talk     time.Duration // how long an answered call talks
}

// ending is how a soak call ends, and the reasons each side must report.
type ending struct {
	name           string
	caller, callee call.Reason
}

// The endings, in the order calls take them (call k ends as endings[k %
// len]): half the calls are answered and hung up, the rest end every
// other way.
var endings = []ending{
	{"hangup by caller", call.ReasonHangup, call.ReasonRemoteHangup},
	{"hangup by caller", call.ReasonHangup, call.ReasonRemoteHangup},
	{"hangup by caller", call.ReasonHangup, call.ReasonRemoteHangup},
	{"hangup by callee", call.ReasonRemoteHangup, call.ReasonHangup},
	{"decline", call.ReasonDeclined, call.ReasonDeclined},
	{"cancel", call.ReasonCancelled, call.ReasonCancelled},
	{"busy", call.ReasonBusy, ""},
	{"no answer", call.ReasonNoAnswer, call.ReasonNoAnswer},
	{"network cut", call.ReasonICEFailed, call.ReasonICEFailed},
	{"signaling loss", call.ReasonSignalingLost, call.ReasonNoAnswer},
}

// errSetup marks a soak call that was never connected with audio flowing
// both ways: counted apart from the calls that ended with a wrong reason.
var errSetup = errors.New("set-up failed")

// soakRing is the phones' ring timeout in the soak: the no-answer and
// signaling-loss calls last this long.
const soakRing = 2 * time.Second

// sample is the process's resources at one point.
type sample struct {
	at         string
	calls      int64
	goroutines int
	fds        int
	heap       uint64
}

func takeSample(at string, calls int64) sample {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fds := -1
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		fds = len(ents)
	}
	return sample{at: at, calls: calls, goroutines: runtime.NumGoroutine(), fds: fds, heap: ms.HeapInuse}
}

// serveLocal serves a development-mode signaling server on loopback and
// returns its WebSocket URL.
func serveLocal() (url string, stop func(), err error) {
	// Every phone connects from 127.0.0.1: lift the per-address limits.
	srv := server.New(server.Config{DevMode: true, MaxConnsPerAddr: 1 << 20, ConnRate: rate.Inf, ConnBurst: 1 << 20})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = srv.Close()
		return "", nil, err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	return "ws://" + ln.Addr().String() + "/", func() { _ = srv.Close(); _ = hs.Close() }, nil
}

// soakWorker is one pair of phones (a calls b) plus z, whom b calls to be
// busy, and the hosts their media uses.
type soakWorker struct {
	id         int
	url        string
	a, b, z    *phone
	hostA      *calltest.Host
	seA, seB   *calltest.Host
	ringConfig phoneConfig
}

// runSoak places calls through a signaling server over WebSockets, media
// on a simulated network, and prints the calls completed, those that
// ended with a wrong reason, and the resources at warm-up, middle and
// end, each sampled with every phone idle.
func runSoak(ctx context.Context, cfg soakConfig, out io.Writer) error {
	url, stop, err := serveLocal()
	if err != nil {
		return err
	}
	defer stop()
	nw, err := calltest.NewNetwork(calltest.NetworkConfig{})
	if err != nil {
		return err
	}
	defer nw.Close()

	workers := make([]*soakWorker, cfg.parallel)
	defer func() {
		for _, w := range workers {
			if w != nil {
				closeAll([]*phone{w.a, w.b, w.z})
			}
		}
	}()
	for i := range workers {
		if workers[i], err = newSoakWorker(ctx, i, url, nw); err != nil {
			return err
		}
	}

	var (
		next    atomic.Int64 // calls started
		done    atomic.Int64 // calls finished
		mu      sync.Mutex
		byEnd   = map[string][3]int{} // ending: calls, wrong end reason, set-up failed
		wrong   []string
		samples []sample
	)
	limit := int64(cfg.calls)
	deadline := time.Time{}
	if cfg.duration > 0 {
		deadline = time.Now().Add(cfg.duration)
	}
	more := func() bool {
		return ctx.Err() == nil && (limit == 0 || next.Load() < limit) && (deadline.IsZero() || time.Now().Before(deadline))
	}
	// Phases: warm-up, first half, second half; all workers idle between.
	phase := func(n int64) {
		tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.rate)) // shared: the whole run's rate
		defer tick.Stop()
		var wg sync.WaitGroup
		for _, w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for more() && (n == 0 || next.Load() < n) {
					select {
					case <-tick.C:
					case <-ctx.Done():
						return
					}
					k := next.Add(1) - 1
					if limit > 0 && k >= limit {
						return
					}
					e := endings[k%int64(len(endings))]
					err := w.run(ctx, e, cfg.talk)
					done.Add(1)
					mu.Lock()
					c := byEnd[e.name]
					c[0]++
					if err != nil {
						if errors.Is(err, errSetup) {
							c[2]++
						} else {
							c[1]++
						}
						if len(wrong) < 20 {
							wrong = append(wrong, fmt.Sprintf("call %d (%s): %v", k, e.name, err))
						}
					}
					byEnd[e.name] = c
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	settle := func(at string) {
		// Let the calls' goroutines finish before counting.
		prev := -1
		_ = poll(ctx, 10*time.Second, func() bool {
			n := runtime.NumGoroutine()
			same := n == prev
			prev = n
			return same
		})
		s := takeSample(at, done.Load())
		samples = append(samples, s)
		fmt.Fprintf(out, "%-8s calls %6d  goroutines %5d  fds %4d  heap %6.1f MiB\n", s.at, s.calls, s.goroutines, s.fds, float64(s.heap)/(1<<20))
	}
	start := time.Now()
	warm := max(int64(len(endings)*cfg.parallel), limit/20)
	phase(warm)
	settle("warm-up")
	if limit > 0 {
		phase(warm + (limit-warm)/2)
	} else {
		half := time.Now().Add(time.Until(deadline) / 2)
		saved := deadline
		deadline = half
		phase(0)
		deadline = saved
	}
	settle("middle")
	phase(0)
	settle("end")
	elapsed := time.Since(start)

	total, bad, setup := 0, 0, 0
	for _, e := range endings {
		c, ok := byEnd[e.name]
		if !ok {
			continue
		}
		delete(byEnd, e.name)
		fmt.Fprintf(out, "  %-18s calls %6d  wrong end reason %d  set-up failed %d\n", e.name, c[0], c[1], c[2])
		total += c[0]
		bad += c[1]
		setup += c[2]
	}
	fmt.Fprintf(out, "calls %d in %v (%.1f/s), wrong end reason %d, set-up failed %d\n", total, elapsed.Round(time.Second), float64(total)/elapsed.Seconds(), bad, setup)
	for _, w := range wrong {
		fmt.Fprintln(out, "   ", w)
	}
	if bad > 0 || setup > 0 {
		return fmt.Errorf("%d calls ended with a wrong reason, %d failed to set up", bad, setup)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

func newSoakWorker(ctx context.Context, i int, url string, nw *calltest.Network) (*soakWorker, error) {
	w := &soakWorker{id: i, url: url}
	var hosts [3]*calltest.Host
	for j := range hosts {
		h, err := nw.Host()
		if err != nil {
			return nil, err
		}
		hosts[j] = h
	}
	w.hostA = hosts[0]
	// a's signaling loss is final: the signaling-loss call replaces a.
	w.ringConfig = phoneConfig{ringTimeout: soakRing, settingEngine: hosts[0].SettingEngine, noReconnect: true, signalingGrace: time.Second}
	var err error
	if w.a, err = newPhone(ctx, fmt.Sprintf("soak%d-a", i), []string{url}, w.ringConfig); err != nil {
		return w, err
	}
	if w.b, err = newPhone(ctx, fmt.Sprintf("soak%d-b", i), []string{url}, phoneConfig{ringTimeout: soakRing, settingEngine: hosts[1].SettingEngine}); err != nil {
		return w, err
	}
	if w.z, err = newPhone(ctx, fmt.Sprintf("soak%d-z", i), []string{url}, phoneConfig{ringTimeout: soakRing, settingEngine: hosts[2].SettingEngine}); err != nil {
		return w, err
	}
	return w, nil
}

// expect checks that c ended with want, within d.
func expect(ctx context.Context, side string, c *call.Call, want call.Reason, d time.Duration) error {
	got, err := waitEnd(ctx, c, d)
	if err != nil {
		return fmt.Errorf("%s: %w", side, err)
	}
	if got != want {
		return fmt.Errorf("%s ended %q (%v), want %q", side, got, c.Err(), want)
	}
	return nil
}

// run places one call from a to b that ends as e says.
func (w *soakWorker) run(ctx context.Context, e ending, talk time.Duration) error {
	const endWait = 20 * time.Second
	a, b := w.a, w.b
	switch e.name {
	case "busy":
		cz, err := b.Dial(ctx, w.z.user)
		if err != nil {
			return err
		}
		zc, err := w.z.incoming(ctx)
		if err != nil {
			return err
		}
		if err := waitState(ctx, zc, call.Ringing, endWait); err != nil {
			return err
		}
		ca, err := a.Dial(ctx, b.user)
		if err != nil {
			return err
		}
		err = expect(ctx, "caller", ca, e.caller, endWait)
		cz.Hangup()
		return errors.Join(err, expect(ctx, "busy callee's own call", cz, call.ReasonCancelled, endWait),
			expect(ctx, "its callee", zc, call.ReasonCancelled, endWait))
	case "decline", "cancel", "no answer", "signaling loss":
		ca, err := a.Dial(ctx, b.user)
		if err != nil {
			return err
		}
		cb, err := b.incoming(ctx)
		if err != nil {
			return err
		}
		if err := waitState(ctx, cb, call.Ringing, endWait); err != nil {
			return err
		}
		switch e.name {
		case "decline":
			_ = cb.Decline(ctx)
		case "cancel":
			ca.Hangup()
		case "signaling loss":
			a.sock.cut()
		}
		err = errors.Join(expect(ctx, "caller", ca, e.caller, endWait), expect(ctx, "callee", cb, e.callee, endWait))
		if e.name == "signaling loss" {
			a.close()
			na, nerr := newPhone(ctx, a.user, []string{w.url}, w.ringConfig)
			if nerr != nil {
				return errors.Join(err, nerr)
			}
			w.a = na
		}
		return err
	}
	ca, cb, err := connect(ctx, a, b)
	if err != nil {
		if ca != nil {
			ca.Hangup()
		}
		if cb != nil {
			cb.Hangup()
		}
		return fmt.Errorf("%w: %w", errSetup, err)
	}
	t := time.NewTimer(talk)
	<-t.C
	switch e.name {
	case "hangup by caller":
		ca.Hangup()
	case "hangup by callee":
		cb.Hangup()
	case "network cut":
		w.hostA.Cut(true)
		defer w.hostA.Cut(false)
	}
	return errors.Join(expect(ctx, "caller", ca, e.caller, endWait), expect(ctx, "callee", cb, e.callee, endWait))
}
