package call_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/media/mediatest"
	"github.com/dialtone-dev/dialtone/signaling/server"
	"github.com/stretchr/testify/require"
)

// fast is a config with timers short enough for tests.
func fast() call.Config {
	return call.Config{
		RingTimeout:     3 * time.Second,
		ConnectTimeout:  8 * time.Second,
		EndToneDuration: 150 * time.Millisecond,
		StatsInterval:   250 * time.Millisecond,
		SignalingGrace:  2 * time.Second,
		RelayTimeout:    500 * time.Millisecond,
	}
}

func newLab(t *testing.T, cfg server.Config) *calltest.Lab {
	t.Helper()
	lab := calltest.NewLab(cfg)
	t.Cleanup(lab.Close)
	return lab
}

func newPhone(t *testing.T, lab *calltest.Lab, user string, opts calltest.PhoneOptions) *calltest.Phone {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if opts.Config.RingTimeout == 0 {
		cfg := fast()
		cfg.Logger = opts.Config.Logger
		opts.Config = cfg
	}
	p, err := lab.NewPhone(ctx, user, opts)
	require.NoError(t, err)
	return p
}

// watcher records every event of a call and lets a test wait for one.
type watcher struct {
	c      *call.Call
	mu     sync.Mutex
	events []call.Event
	change chan struct{}
	closed chan struct{}
}

func watch(c *call.Call) *watcher {
	w := &watcher{c: c, change: make(chan struct{}), closed: make(chan struct{})}
	go func() {
		defer close(w.closed)
		for e := range c.Events() {
			w.mu.Lock()
			w.events = append(w.events, e)
			ch := w.change
			w.change = make(chan struct{})
			w.mu.Unlock()
			close(ch)
		}
	}()
	return w
}

// waitFor waits until an event matching ok has been seen.
func (w *watcher) waitFor(t *testing.T, what string, d time.Duration, ok func(call.Event) bool) call.Event {
	t.Helper()
	deadline := time.After(d)
	seen := 0
	for {
		w.mu.Lock()
		for ; seen < len(w.events); seen++ {
			if ok(w.events[seen]) {
				e := w.events[seen]
				w.mu.Unlock()
				return e
			}
		}
		ch := w.change
		w.mu.Unlock()
		select {
		case <-ch:
		case <-w.closed:
			w.mu.Lock()
			n := len(w.events)
			w.mu.Unlock()
			if seen == n {
				t.Fatalf("call %s: events closed before %s; states: %v", w.c.ID(), what, w.states())
			}
		case <-deadline:
			t.Fatalf("call %s: no %s within %v; states: %v (now %s)", w.c.ID(), what, d, w.states(), w.c.State())
		}
	}
}

func (w *watcher) waitState(t *testing.T, s call.State, d time.Duration) call.Event {
	t.Helper()
	return w.waitFor(t, "state "+s.String(), d, func(e call.Event) bool {
		return e.Kind == call.EventState && e.State == s
	})
}

// waitStateAfter waits for state s reached after an earlier state prev.
func (w *watcher) waitStateAfter(t *testing.T, prev, s call.State, d time.Duration) {
	t.Helper()
	seenPrev := false
	w.waitFor(t, s.String()+" after "+prev.String(), d, func(e call.Event) bool {
		if e.Kind != call.EventState {
			return false
		}
		if e.State == prev {
			seenPrev = true
			return false
		}
		return seenPrev && e.State == s
	})
}

// waitEnd waits for the end and returns its reason.
func (w *watcher) waitEnd(t *testing.T, d time.Duration) call.Reason {
	t.Helper()
	return w.waitState(t, call.Ended, d).Reason
}

func (w *watcher) states() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, e := range w.events {
		if e.Kind == call.EventState {
			s := e.State.String()
			if e.Reason != "" {
				s += "(" + string(e.Reason) + ")"
			}
			out = append(out, s)
		}
	}
	return out
}

// nextIncoming waits for p's next incoming call.
func nextIncoming(t *testing.T, p *calltest.Phone, d time.Duration) *call.Call {
	t.Helper()
	select {
	case c := <-p.Incoming():
		require.NotNil(t, c)
		return c
	case <-time.After(d):
		t.Fatalf("%s: no incoming call within %v", p.User(), d)
		return nil
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// signalFor makes a distinct, deterministic test signal per speaker.
func signalFor(seed uint64, seconds int) []int16 {
	return mediatest.SpeechLike(48000*seconds, seed)
}

func describe(c *call.Call) string {
	return fmt.Sprintf("%s[%s→%s %s]", c.ID(), map[bool]string{true: "out", false: "in"}[c.Outgoing()], c.Peer(), c.State())
}
