package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dialtone-dev/dialtone/call"
)

// chaosConfig sets the chaos runs.
type chaosConfig struct {
	redisBin    string
	pairs       int           // calls per scenario
	presenceTTL time.Duration // the nodes' redisbroker.Config.PresenceTTL
	ringTimeout time.Duration
	traffic     time.Duration // how long calls are placed around a restart
}

// result is one scenario's outcome.
type result struct {
	name     string
	calls    int // calls checked
	lost     int // calls that did not end as they should have
	recovery []time.Duration
	notes    []string
}

func (r *result) fail(format string, args ...any) {
	r.lost++
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

func (r result) print(w io.Writer) {
	fmt.Fprintf(w, "%-28s calls %4d  lost %d", r.name, r.calls, r.lost)
	if len(r.recovery) > 0 {
		s := slices.Clone(r.recovery)
		slices.Sort(s)
		fmt.Fprintf(w, "  reconnect p50 %v max %v (n=%d)", s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond), len(s))
	}
	fmt.Fprintln(w)
	for _, n := range r.notes {
		fmt.Fprintln(w, "   ", n)
	}
}

// runChaos runs every scenario on a fresh cluster and prints each result;
// an error when a call was lost.
func runChaos(ctx context.Context, cfg chaosConfig, out io.Writer) error {
	cl, err := startCluster(ctx, cfg.redisBin, cfg.presenceTTL)
	if err != nil {
		return err
	}
	defer cl.close()
	pc := phoneConfig{ringTimeout: cfg.ringTimeout}
	lost := 0
	for _, sc := range []struct {
		name string
		run  func(context.Context, *cluster, chaosConfig, phoneConfig) result
	}{
		{"kill node, calls connected", killConnected},
		{"kill node, calls ringing", killRinging},
		{"rolling restart", rollingRestart},
		{"redis restart", redisRestart},
	} {
		r := sc.run(ctx, cl, cfg, pc)
		r.name = sc.name
		r.print(out)
		lost += r.lost
	}
	if lost > 0 {
		return fmt.Errorf("%d calls lost", lost)
	}
	return nil
}

// pairs makes n callers on node `from` and n callees on the other node.
func pairs(ctx context.Context, cl *cluster, n, from int, tag string, pc phoneConfig) (callers, callees []*phone, err error) {
	for i := range n {
		a, err := newPhone(ctx, fmt.Sprintf("%s-a%d", tag, i), cl.urls(from), pc)
		if err != nil {
			return callers, callees, err
		}
		callers = append(callers, a)
		b, err := newPhone(ctx, fmt.Sprintf("%s-b%d", tag, i), cl.urls(1-from), pc)
		if err != nil {
			return callers, callees, err
		}
		callees = append(callees, b)
	}
	return callers, callees, nil
}

func closeAll(ps ...[]*phone) {
	var wg sync.WaitGroup
	for _, l := range ps {
		for _, p := range l {
			if p == nil {
				continue
			}
			wg.Add(1)
			go func() { defer wg.Done(); p.close() }()
		}
	}
	wg.Wait()
}

// connect places a call from a to b and waits until both ends are
// connected and audio flows both ways.
func connect(ctx context.Context, a, b *phone) (*call.Call, *call.Call, error) {
	ca, err := a.Dial(ctx, b.user)
	if err != nil {
		return nil, nil, err
	}
	cb, err := b.incoming(ctx)
	if err != nil {
		ca.Hangup()
		return ca, nil, err
	}
	if err := cb.Accept(ctx); err != nil {
		return ca, cb, err
	}
	for _, c := range []*call.Call{ca, cb} {
		if err := waitState(ctx, c, call.Connected, 10*time.Second); err != nil {
			return ca, cb, err
		}
	}
	return ca, cb, flowing(ctx, ca, cb)
}

// flowing waits until both ends have received 10 more packets than now.
func flowing(ctx context.Context, cs ...*call.Call) error {
	base := make([]uint64, len(cs))
	for i, c := range cs {
		base[i] = c.Stats().PacketsReceived
	}
	err := poll(ctx, 5*time.Second, func() bool {
		for i, c := range cs {
			if c.Stats().PacketsReceived < base[i]+10 {
				return false
			}
		}
		return true
	})
	if err != nil {
		var b strings.Builder
		for i, c := range cs {
			st := c.Stats()
			fmt.Fprintf(&b, "; %s (%s): received %d more, sent %d", c.Peer(), c.State(), st.PacketsReceived-base[i], st.PacketsSent)
		}
		return fmt.Errorf("audio not flowing after 5 s%s: %w", b.String(), err)
	}
	return nil
}

// killConnected: calls connected between node 1 (callers) and node 2
// (callees); node 1 is killed. The media of every call keeps flowing;
// callers reconnect to node 2; a quarter of the calls are hung up by the
// caller during the outage, a quarter by the callee (towards a user whose
// node just died), the rest after it: each hang-up reaches the other end.
func killConnected(ctx context.Context, cl *cluster, cfg chaosConfig, pc phoneConfig) (r result) {
	callers, callees, err := pairs(ctx, cl, cfg.pairs, 0, "kc", pc)
	defer closeAll(callers, callees)
	if err != nil {
		r.fail("set-up: %v", err)
		return r
	}
	cas, cbs := make([]*call.Call, len(callers)), make([]*call.Call, len(callers))
	for i := range callers {
		if cas[i], cbs[i], err = connect(ctx, callers[i], callees[i]); err != nil {
			r.fail("set-up: %v", err)
			return r
		}
	}
	r.calls = len(cas)
	cl.nodes[0].kill()
	killed := time.Now()
	quarter := max(1, len(cas)/4)
	for i := range cas {
		switch {
		case i < quarter:
			cas[i].Hangup()
		case i < 2*quarter:
			cbs[i].Hangup()
		}
	}
	// Media goes on without signaling.
	for i := 2 * quarter; i < len(cas); i++ {
		if err := flowing(ctx, cas[i], cbs[i]); err != nil {
			r.fail("call %d: media stopped after the kill: %v", i, err)
		}
	}
	if err := poll(ctx, 30*time.Second, func() bool {
		for _, p := range callers {
			if len(p.tr.reconnections()) == 0 {
				return false
			}
		}
		return true
	}); err != nil {
		r.fail("callers did not all reconnect: %v", err)
	}
	for _, p := range callers {
		r.recovery = append(r.recovery, p.tr.reconnections()...)
	}
	for i := 2 * quarter; i < len(cas); i++ {
		cas[i].Hangup()
	}
	for i := range cas {
		byCaller := i < quarter || i >= 2*quarter
		hungUp, other := cas[i], cbs[i]
		if !byCaller {
			hungUp, other = cbs[i], cas[i]
		}
		if rs, err := waitEnd(ctx, hungUp, 10*time.Second); err != nil || rs != call.ReasonHangup {
			r.fail("call %d: the side that hung up ended %q %v", i, rs, err)
		}
		if rs, err := waitEnd(ctx, other, 20*time.Second); err != nil || rs != call.ReasonRemoteHangup {
			r.fail("call %d: the other side ended %q %v, %v after the kill", i, rs, err, time.Since(killed).Round(time.Millisecond))
		}
	}
	if err := cl.startNode(ctx, 0); err != nil {
		r.fail("restart node 1: %v", err)
	}
	return r
}

// killRinging: calls ringing between the nodes, callers on node 1 for
// half of them and callees on node 1 for the other half; node 1 is
// killed. Half of the calls are answered after the kill, the others left
// to ring: each call ends connected on both sides, or ended with a reason
// on both, within the ring timeout — never ringing on one side.
func killRinging(ctx context.Context, cl *cluster, cfg chaosConfig, pc phoneConfig) (r result) {
	half := max(1, cfg.pairs/2)
	c1, e1, err := pairs(ctx, cl, half, 0, "kr1", pc) // callers on the killed node
	defer closeAll(c1, e1)
	if err != nil {
		r.fail("set-up: %v", err)
		return r
	}
	c2, e2, err := pairs(ctx, cl, half, 1, "kr2", pc) // callees on the killed node
	defer closeAll(c2, e2)
	if err != nil {
		r.fail("set-up: %v", err)
		return r
	}
	callers, callees := append(c1, c2...), append(e1, e2...)
	cas, cbs := make([]*call.Call, len(callers)), make([]*call.Call, len(callers))
	for i := range callers {
		if cas[i], err = callers[i].Dial(ctx, callees[i].user); err != nil {
			r.fail("dial: %v", err)
			return r
		}
		if cbs[i], err = callees[i].incoming(ctx); err != nil {
			r.fail("ring: %v", err)
			return r
		}
	}
	r.calls = len(cas)
	cl.nodes[0].kill()
	for i := range cbs {
		if i%2 == 0 {
			// Answered during the outage: the accept waits in the phone's
			// outbox if its node is the dead one.
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := cbs[i].Accept(actx); err != nil && !errors.Is(err, call.ErrEnded) {
				r.notes = append(r.notes, fmt.Sprintf("call %d: accept: %v", i, err))
			}
			cancel()
		}
	}
	deadline := cfg.ringTimeout + 20*time.Second
	for i := range cas {
		a, b := cas[i], cbs[i]
		both := func() bool {
			sa, sb := a.State(), b.State()
			return (sa == call.Connected && sb == call.Connected) || (sa == call.Ended && sb == call.Ended)
		}
		if err := poll(ctx, deadline, both); err != nil {
			r.fail("call %d: caller %s (%s), callee %s (%s) after %v", i, a.State(), a.Reason(), b.State(), b.Reason(), deadline)
			continue
		}
		if a.State() == call.Ended && (a.Reason() == "" || b.Reason() == "") {
			r.fail("call %d ended without a reason", i)
		}
		r.notes = append(r.notes, fmt.Sprintf("call %d (answered %v): caller %s %s, callee %s %s", i, i%2 == 0, a.State(), a.Reason(), b.State(), b.Reason()))
		a.Hangup()
	}
	for _, p := range callers {
		r.recovery = append(r.recovery, p.tr.reconnections()...)
	}
	if err := cl.startNode(ctx, 0); err != nil {
		r.fail("restart node 1: %v", err)
	}
	return r
}

// traffic places calls between pairs of phones, one after the other per
// pair, until stop: each is answered, talks for talk, is hung up by the
// caller, and must end hangup / remote-hangup.
func traffic(ctx context.Context, cl *cluster, n int, tag string, pc phoneConfig, talk time.Duration, stop <-chan struct{}) (r result) {
	callers, callees, err := pairs(ctx, cl, n, 0, tag, pc)
	defer closeAll(callers, callees)
	if err != nil {
		r.fail("set-up: %v", err)
		return r
	}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				err := oneCall(ctx, callers[i], callees[i], talk)
				mu.Lock()
				r.calls++
				if err != nil {
					r.fail("pair %d call %d: %v", i, k, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return r
}

// oneCall places, answers, talks and hangs up one call.
func oneCall(ctx context.Context, a, b *phone, talk time.Duration) error {
	ca, cb, err := connect(ctx, a, b)
	if err != nil {
		if ca != nil {
			ca.Hangup()
			_, _ = waitEnd(ctx, ca, 10*time.Second)
		}
		if cb != nil {
			cb.Hangup()
			_, _ = waitEnd(ctx, cb, 10*time.Second)
		}
		return err
	}
	t := time.NewTimer(talk)
	<-t.C
	ca.Hangup()
	if rs, err := waitEnd(ctx, ca, 10*time.Second); err != nil || rs != call.ReasonHangup {
		return fmt.Errorf("caller ended %q %v", rs, err)
	}
	if rs, err := waitEnd(ctx, cb, 20*time.Second); err != nil || rs != call.ReasonRemoteHangup {
		return fmt.Errorf("callee ended %q %v", rs, err)
	}
	return nil
}

// rollingRestart: calls placed throughout while node 1, then node 2, is
// stopped (graceful shutdown) and started again.
func rollingRestart(ctx context.Context, cl *cluster, cfg chaosConfig, pc phoneConfig) result {
	return underTraffic(ctx, cl, cfg, pc, "rr", func(r *result) {
		for i := range cl.nodes {
			cl.nodes[i].stop()
			if err := cl.startNode(ctx, i); err != nil {
				r.fail("restart node %d: %v", i+1, err)
			}
			pause(ctx, cfg.traffic/3)
		}
	})
}

// redisRestart: calls placed throughout while Redis is killed and started
// again empty.
func redisRestart(ctx context.Context, cl *cluster, cfg chaosConfig, pc phoneConfig) result {
	return underTraffic(ctx, cl, cfg, pc, "rs", func(r *result) {
		cl.redis.kill()
		if err := cl.startRedis(ctx); err != nil {
			r.fail("restart redis: %v", err)
		}
		pause(ctx, cfg.traffic/2)
	})
}

// underTraffic runs traffic on cfg.pairs pairs, and fault once traffic has
// run for a third of cfg.traffic.
func underTraffic(ctx context.Context, cl *cluster, cfg chaosConfig, pc phoneConfig, tag string, fault func(*result)) result {
	stop := make(chan struct{})
	done := make(chan result, 1)
	go func() { done <- traffic(ctx, cl, cfg.pairs, tag, pc, 500*time.Millisecond, stop) }()
	pause(ctx, cfg.traffic/3)
	var fr result
	fault(&fr)
	close(stop)
	r := <-done
	r.lost += fr.lost
	r.notes = append(r.notes, fr.notes...)
	return r
}

func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
