package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limitedHandler passes each message text (at Info and above) at most
// LogRate times per second (bursts of LogBurst), so that an attack, which
// makes the same line over and over (failed upgrades, abusive closes),
// cannot flood the log. The next record of a text that gets through
// carries how many were suppressed since the last one. Debug records pass
// unlimited: they are off in production.
type limitedHandler struct {
	next  slog.Handler
	state *logLimits
}

type logLimits struct {
	every rate.Limit
	burst int

	mu    sync.Mutex
	texts map[string]*logText
}

type logText struct {
	lim        *rate.Limiter
	suppressed int
	last       time.Time
}

// maxLogTexts bounds the distinct texts tracked; the server's texts are
// constants, so it is only reached by a handler shared with other code.
const maxLogTexts = 1024

func newLimitedHandler(next slog.Handler, every rate.Limit, burst int) slog.Handler {
	return &limitedHandler{next: next, state: &logLimits{every: every, burst: burst, texts: make(map[string]*logText)}}
}

func (h *limitedHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *limitedHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelInfo || h.state.every == rate.Inf {
		return h.next.Handle(ctx, r)
	}
	s := h.state
	s.mu.Lock()
	t := s.texts[r.Message]
	if t == nil {
		if len(s.texts) >= maxLogTexts {
			for k, v := range s.texts {
				if r.Time.Sub(v.last) > time.Minute {
					delete(s.texts, k)
				}
			}
		}
		t = &logText{lim: rate.NewLimiter(s.every, s.burst)}
		if len(s.texts) < maxLogTexts {
			s.texts[r.Message] = t
		}
	}
	t.last = r.Time
	if !t.lim.AllowN(r.Time, 1) {
		t.suppressed++
		s.mu.Unlock()
		return nil
	}
	n := t.suppressed
	t.suppressed = 0
	s.mu.Unlock()
	if n > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("suppressed", n))
	}
	return h.next.Handle(ctx, r)
}

// suppress counts a record of text at now as suppressed, and reports
// true, when its limit would not let it through: a caller that asks first
// saves building a record that would be dropped. Without a limit (nil s,
// or an infinite rate) it reports false.
func (s *logLimits) suppress(text string, now time.Time) bool {
	if s == nil || s.every == rate.Inf {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.texts[text]
	if t == nil || t.lim.TokensAt(now) >= 1 {
		return false
	}
	t.suppressed++
	t.last = now
	return true
}

func (h *limitedHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &limitedHandler{next: h.next.WithAttrs(as), state: h.state}
}

func (h *limitedHandler) WithGroup(name string) slog.Handler {
	return &limitedHandler{next: h.next.WithGroup(name), state: h.state}
}
