package call_test

import (
	"context"
	"fmt"
	"slices"
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

// eventLog records every event a channel delivers and lets a test wait
// for one; it serves both calls' and rooms' events.
type eventLog[E any] struct {
	mu     sync.Mutex
	events []E
	change chan struct{} // closed when an event is added
	closed chan struct{} // closed when the channel is
}

func recordEvents[E any](ch <-chan E) *eventLog[E] {
	l := &eventLog[E]{change: make(chan struct{}), closed: make(chan struct{})}
	go func() {
		defer close(l.closed)
		for e := range ch {
			l.mu.Lock()
			l.events = append(l.events, e)
			changed := l.change
			l.change = make(chan struct{})
			l.mu.Unlock()
			close(changed)
		}
	}()
	return l
}

// snapshot returns the events so far.
func (l *eventLog[E]) snapshot() []E {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// waitFor waits until an event matching ok has been seen and returns it.
// A failure names what was awaited, prefixed by name and followed by
// detail().
func (l *eventLog[E]) waitFor(t *testing.T, name, what string, d time.Duration, ok func(E) bool, detail func() string) E {
	t.Helper()
	deadline := time.After(d)
	seen := 0
	for {
		l.mu.Lock()
		for ; seen < len(l.events); seen++ {
			if ok(l.events[seen]) {
				e := l.events[seen]
				l.mu.Unlock()
				return e
			}
		}
		ch := l.change
		l.mu.Unlock()
		select {
		case <-ch:
		case <-l.closed:
			l.mu.Lock()
			n := len(l.events)
			l.mu.Unlock()
			if seen == n {
				t.Fatalf("%s: events closed before %s; %s", name, what, detail())
			}
		case <-deadline:
			t.Fatalf("%s: no %s within %v; %s", name, what, d, detail())
		}
	}
}

// watcher records every event of a call and lets a test wait for one.
type watcher struct {
	*eventLog[call.Event]
	c *call.Call
}

func watch(c *call.Call) *watcher {
	return &watcher{eventLog: recordEvents(c.Events()), c: c}
}

// waitFor waits until an event matching ok has been seen.
func (w *watcher) waitFor(t *testing.T, what string, d time.Duration, ok func(call.Event) bool) call.Event {
	t.Helper()
	return w.eventLog.waitFor(t, "call "+w.c.ID(), what, d, ok, func() string {
		return fmt.Sprintf("states: %v (now %s)", w.states(), w.c.State())
	})
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
	var out []string
	for _, e := range w.snapshot() {
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
