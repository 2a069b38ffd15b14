package server

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lockedBuffer is a bytes.Buffer safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// An attack that makes the same log line over and over (here 40 refused
// logins) writes a bounded number of lines, and says how many it left
// out.
func TestLogRateLimited(t *testing.T) {
	var out lockedBuffer
	s := New(Config{
		Authenticator: TokenAuth{Secret: []byte("k")},
		Logger:        slog.New(slog.NewTextHandler(&out, nil)),
		LogRate:       0.001, LogBurst: 3, ConnRate: 1000, ConnBurst: 1000,
	})
	url := startHTTP(t, s)
	for i := 0; i < 40; i++ {
		_, resp, err := websocket.DefaultDialer.Dial(url+"?token=forged", nil)
		require.Error(t, err)
		_ = resp.Body.Close()
	}
	assert.Equal(t, uint64(40), s.Stats().Unauthorized)
	lines := strings.Count(out.String(), "signaling: unauthorized")
	assert.Equal(t, 3, lines, "%s", out.String())

	// A line that gets through after a pause carries the count left out.
	var out2 bytes.Buffer
	h := newLimitedHandler(slog.NewTextHandler(&out2, nil), 1, 1)
	t0 := time.Unix(1_900_000_000, 0)
	for _, at := range []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 2 * time.Second} {
		require.NoError(t, h.Handle(context.Background(), slog.NewRecord(t0.Add(at), slog.LevelWarn, "flood", 0)))
	}
	assert.Equal(t, 2, strings.Count(out2.String(), "flood"), "%s", out2.String())
	assert.Contains(t, out2.String(), "suppressed=2")
}

// A caller that asks suppress first (the refused-connection line) builds
// no record over the limit, and the count still comes out whole in the
// next line that gets through.
func TestLogSuppressCounts(t *testing.T) {
	var out bytes.Buffer
	h := newLimitedHandler(slog.NewTextHandler(&out, nil), 1, 1).(*limitedHandler)
	t0 := time.Unix(1_900_000_000, 0)
	handled := 0
	for _, at := range []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 2 * time.Second} {
		now := t0.Add(at)
		if h.state.suppress("flood", now) {
			continue
		}
		handled++
		require.NoError(t, h.Handle(context.Background(), slog.NewRecord(now, slog.LevelInfo, "flood", 0)))
	}
	assert.Equal(t, 2, handled, "records built")
	assert.Equal(t, 2, strings.Count(out.String(), "flood"), "%s", out.String())
	assert.Contains(t, out.String(), "suppressed=3")
	assert.False(t, (*logLimits)(nil).suppress("flood", t0), "no limits: nothing suppressed")
}

// Refused connections past the address's limits log a bounded number of
// lines, like any other line.
func TestLogRefusedLimited(t *testing.T) {
	var out lockedBuffer
	s := New(Config{DevMode: true, Logger: slog.New(slog.NewTextHandler(&out, nil)),
		LogRate: 0.001, LogBurst: 3, ConnRate: 0.001, ConnBurst: 1, MaxConnsPerAddr: 1})
	t.Cleanup(func() { _ = s.Close() })
	codes := map[int]int{}
	for range 40 {
		r := httptest.NewRequest(http.MethodGet, "/?user=a", nil)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		codes[w.Code]++
	}
	assert.Equal(t, 39, codes[http.StatusTooManyRequests], "%v", codes)
	assert.Equal(t, 3, strings.Count(out.String(), "connection refused"), "%s", out.String())
}
