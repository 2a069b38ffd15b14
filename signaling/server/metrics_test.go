package server

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/signaling"
)

// scrape fetches the metrics handler and returns series → value.
func scrape(t *testing.T, s *Server) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Metrics().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	out := make(map[string]float64)
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "dialtone_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, line)
		out[line[:i]] = v
	}
	return out
}

// After some traffic the scraped numbers match what happened: connections,
// routed messages by type, errors by code, push results, pending invites.
func TestMetricsAfterTraffic(t *testing.T) {
	var fail atomic.Bool
	s := newTestServer(t, Config{Pusher: PusherFunc(func(_ context.Context, p Push) error {
		if fail.Load() {
			return ErrPushStatus
		}
		return nil
	})})
	alice := connectLocal(t, s, "alice", LocalOptions{})
	bob := connectLocal(t, s, "bob", LocalOptions{})

	send(t, alice, msg(t, signaling.TypeInvite, "bob", "c1", nil))
	recvType(t, bob, signaling.TypeInvite)
	recvType(t, alice, signaling.TypeWaiting)
	for i := 0; i < 3; i++ {
		send(t, alice, msg(t, signaling.TypeSignal, "bob", "c1", nil))
		recvType(t, bob, signaling.TypeSignal)
	}
	send(t, bob, msg(t, signaling.TypeHangup, "alice", "c1", nil))
	recvType(t, alice, signaling.TypeHangup)

	send(t, alice, signaling.Message{Type: signaling.TypeSignal, Call: "c1"}) // no to
	assert.Equal(t, signaling.CodeMissingTo, recvError(t, alice).Code)
	require.NoError(t, sendRaw(alice, []byte(`{"type":"no pe"}`)))
	assert.Equal(t, signaling.CodeUnknownType, recvError(t, alice).Code)

	// A push that works leaves a pending invite; one that fails does not.
	send(t, alice, msg(t, signaling.TypeInvite, "carol", "c2", nil))
	recvType(t, alice, signaling.TypeWaiting)
	fail.Store(true) // the push above has completed: `waiting` follows it
	send(t, alice, msg(t, signaling.TypeInvite, "dave", "c3", nil))
	recvType(t, alice, signaling.TypePushFailed)

	m := scrape(t, s)
	assert.Equal(t, 2.0, m["dialtone_signaling_connections"])
	assert.Equal(t, 1.0, m[`dialtone_signaling_messages_routed_total{type="invite"}`])
	assert.Equal(t, 3.0, m[`dialtone_signaling_messages_routed_total{type="signal"}`])
	assert.Equal(t, 1.0, m[`dialtone_signaling_messages_routed_total{type="hangup"}`])
	assert.Equal(t, 0.0, m[`dialtone_signaling_messages_routed_total{type="accept"}`])
	assert.Equal(t, 1.0, m[`dialtone_signaling_errors_total{code="missing-to"}`])
	assert.Equal(t, 1.0, m[`dialtone_signaling_errors_total{code="unknown-type"}`])
	assert.Equal(t, 1.0, m[`dialtone_signaling_push_total{result="ok"}`])
	assert.Equal(t, 1.0, m[`dialtone_signaling_push_total{result="failed"}`])
	assert.Equal(t, 1.0, m["dialtone_signaling_pending_invites"])

	// bob leaves: the gauge follows.
	require.NoError(t, bob.Close())
	require.Eventually(t, func() bool { return scrape(t, s)["dialtone_signaling_connections"] == 1 }, waitFor, 5*time.Millisecond)

	// Two servers in one process have separate registries.
	other := newTestServer(t, Config{})
	assert.Equal(t, 0.0, scrape(t, other)[`dialtone_signaling_messages_routed_total{type="signal"}`])
}
