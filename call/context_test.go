package call_test

import (
	"context"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/signaling/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Cancelling the context given to Dial while the callee's phone rings
// ends the call `cancelled` on both sides, as cancelling a net.Dialer's
// context aborts the connection attempt.
func TestDialContextCancelledWhileRinging(t *testing.T) {
	lab := newLab(t, server.Config{})
	a := newPhone(t, lab, "alice", calltest.PhoneOptions{})
	b := newPhone(t, lab, "bob", calltest.PhoneOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ac, err := a.Dial(ctx, "bob")
	require.NoError(t, err)
	aw := watch(ac)
	bw := watch(nextIncoming(t, b, setupWait))
	aw.waitState(t, call.Waiting, setupWait)
	cancel()
	// Well before the ring timeout (fast: 3 s), which would end it
	// `no-answer`.
	assert.Equal(t, call.ReasonCancelled, aw.waitEnd(t, time.Second))
	assert.Equal(t, call.ReasonCancelled, bw.waitEnd(t, time.Second))
}

// Once the call is connected, Dial's context no longer matters.
func TestDialContextIgnoredOnceConnected(t *testing.T) {
	lab := newLab(t, server.Config{})
	a := newPhone(t, lab, "alice", calltest.PhoneOptions{})
	b := newPhone(t, lab, "bob", calltest.PhoneOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	ac, err := a.Dial(ctx, "bob")
	require.NoError(t, err)
	aw := watch(ac)
	bc := nextIncoming(t, b, setupWait)
	bw := watch(bc)
	require.NoError(t, bc.Accept(ctxT(t, setupWait)))
	aw.waitState(t, call.Connected, setupWait)
	cancel()
	// A text round trip after the cancel: had the cancel ended the call,
	// the hang-up would have reached bob before the text.
	require.NoError(t, ac.SendText(ctxT(t, setupWait), "still here"))
	assert.Equal(t, "still here", bw.waitFor(t, "text", setupWait, func(e call.Event) bool { return e.Kind == call.EventText }).Text)
	assert.Equal(t, call.Connected, ac.State())
	assert.Equal(t, call.Connected, bc.State())
	ac.Hangup()
	assert.Equal(t, call.ReasonHangup, aw.waitEnd(t, setupWait))
	bw.waitEnd(t, setupWait)
}

// An Accept whose context has already ended fails with the context's
// error and does not answer the call later: the call keeps ringing and can
// still be declined.
func TestAcceptWithExpiredContextDoesNotAnswer(t *testing.T) {
	lab := newLab(t, server.Config{})
	a := newPhone(t, lab, "alice", calltest.PhoneOptions{})
	b := newPhone(t, lab, "bob", calltest.PhoneOptions{})
	_, bc, aw, bw := ring(t, a, b)
	aw.waitState(t, call.Waiting, setupWait)
	expired, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, bc.Accept(expired), context.Canceled)
	require.NoError(t, bc.Decline(ctxT(t, setupWait)), "the call is still ringing")
	assert.Equal(t, call.ReasonDeclined, aw.waitEnd(t, setupWait))
	assert.Equal(t, call.ReasonDeclined, bw.waitEnd(t, setupWait))
	assert.NotContains(t, aw.states(), "connecting", "the expired Accept answered the call")
}

// SendDTMF right after Accept waits for the media path, as SendText does,
// instead of failing because the call is not connected yet.
func TestDTMFRightAfterAccept(t *testing.T) {
	lab := newLab(t, server.Config{})
	a := newPhone(t, lab, "alice", calltest.PhoneOptions{})
	b := newPhone(t, lab, "bob", calltest.PhoneOptions{})
	_, bc, aw, bw := ring(t, a, b)
	require.ErrorIs(t, bc.SendDTMF(ctxT(t, time.Second), "1"), call.ErrState, "not answered yet")
	require.NoError(t, bc.Accept(ctxT(t, setupWait)))
	require.NoError(t, bc.SendDTMF(ctxT(t, setupWait), "4#"), "sent while connecting")
	assert.Equal(t, "4#", digits(t, aw, 2))
	bc.Hangup()
	aw.waitEnd(t, setupWait)
	assert.ErrorIs(t, bc.SendDTMF(ctxT(t, time.Second), "1"), call.ErrEnded)
	bw.waitEnd(t, setupWait)
}

// Text and DTMF sent with a context that ends while they wait for the
// media path are never sent: the peer gets only what was sent after.
func TestWaitingSendsDroppedWhenContextEnds(t *testing.T) {
	lab := newLab(t, server.Config{})
	a := newPhone(t, lab, "alice", calltest.PhoneOptions{})
	b := newPhone(t, lab, "bob", calltest.PhoneOptions{})
	ac, bc, aw, bw := ring(t, a, b)
	require.NoError(t, bc.Accept(ctxT(t, setupWait)))
	// The call is connecting: both would wait, but their contexts are over.
	expired, cancel := context.WithCancel(t.Context())
	cancel()
	assert.ErrorIs(t, bc.SendText(expired, "ghost"), context.Canceled)
	assert.ErrorIs(t, bc.SendDTMF(expired, "9"), context.Canceled)
	bw.waitState(t, call.Connected, setupWait)
	require.NoError(t, bc.SendText(ctxT(t, setupWait), "real"))
	require.NoError(t, bc.SendDTMF(ctxT(t, setupWait), "1"))
	assert.Equal(t, "real", aw.waitFor(t, "text", setupWait, func(e call.Event) bool { return e.Kind == call.EventText }).Text)
	assert.Equal(t, "1", digits(t, aw, 1))
	ac.Hangup()
	aw.waitEnd(t, setupWait)
	bw.waitEnd(t, setupWait)
}

// digits waits for the first n DTMF digits w's call received.
func digits(t *testing.T, w *watcher, n int) string {
	t.Helper()
	var got []rune
	for len(got) < n {
		skip := len(got)
		e := w.waitFor(t, "DTMF digit", 5*time.Second, func(e call.Event) bool {
			if e.Kind != call.EventDTMF {
				return false
			}
			skip--
			return skip < 0
		})
		got = append(got, e.Digit)
	}
	return string(got)
}
