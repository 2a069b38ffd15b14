package call_test

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/dialtone-dev/dialtone/signaling/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Accept on the callee and cancel on the caller cross on the wire. Whatever
// the interleaving, both ends must agree: either the call was cancelled on
// both sides, or it was answered and then hung up.
func TestAcceptCancelRace(t *testing.T) {
	// A hundred call set-ups in a few seconds is far above the rate limit a
	// real server applies to one client (50/s): lift it.
	lab := newLab(t, server.Config{RateLimit: 10000, RateBurst: 10000})
	a := newPhone(t, lab, "alice", calltest.PhoneOptions{})
	b := newPhone(t, lab, "bob", calltest.PhoneOptions{})
	rng := rand.New(rand.NewPCG(7, 7))
	outcomes := map[string]int{}
	const rounds = 100
	for round := range rounds {
		ac, bc, aw, bw := ring(t, a, b)
		aw.waitState(t, call.Waiting, setupWait)

		// Jitter both sides so every interleaving occurs (sleeps shape the
		// race, they do not synchronise anything).
		acceptDelay := time.Duration(rng.IntN(3000)) * time.Microsecond
		hangupDelay := time.Duration(rng.IntN(3000)) * time.Microsecond
		acceptErr := make(chan error, 1)
		go func() {
			time.Sleep(acceptDelay)
			acceptErr <- bc.Accept(ctxT(t, setupWait))
		}()
		time.Sleep(hangupDelay)
		ac.Hangup()
		ra, rb := aw.waitEnd(t, setupWait), bw.waitEnd(t, setupWait)
		err := <-acceptErr
		switch {
		case ra == call.ReasonCancelled:
			assert.Equal(t, call.ReasonCancelled, rb, "round %d: caller cancelled, callee says %s", round, rb)
			if err != nil {
				assert.ErrorIs(t, err, call.ErrEnded)
			}
		case ra == call.ReasonHangup:
			assert.Equal(t, call.ReasonRemoteHangup, rb, "round %d", round)
			assert.NoError(t, err)
		default:
			t.Fatalf("round %d: unexpected outcome caller %s callee %s", round, ra, rb)
		}
		outcomes[string(ra)+"/"+string(rb)]++
		<-ac.Done()
		<-bc.Done()
	}
	t.Logf("outcomes over %d rounds: %v", rounds, outcomes)
	assert.NotZero(t, outcomes["cancelled/cancelled"], "the cancel-first interleaving never happened")
	assert.NotZero(t, outcomes["hangup/remote-hangup"], "the accept-first interleaving never happened")
}

// Both users dial each other at the same instant: one call survives, both
// phones agree which, and it connects without anyone answering (both users
// wanted to talk).
func TestCrossedDials(t *testing.T) {
	lab := newLab(t, server.Config{RateLimit: 10000, RateBurst: 10000})
	a := newPhone(t, lab, "alice", calltest.PhoneOptions{})
	b := newPhone(t, lab, "bob", calltest.PhoneOptions{})
	kinds := map[string]int{}
	for round := range 20 {
		start := make(chan struct{})
		dialled := make([]*call.Call, 2)
		var wg sync.WaitGroup
		for i, p := range []*calltest.Phone{a, b} {
			peer := map[int]string{0: "bob", 1: "alice"}[i]
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				c, err := p.Dial(t.Context(), peer)
				assert.NoError(t, err, "round %d", round)
				dialled[i] = c
			}()
		}
		close(start)
		wg.Wait()
		require.NotNil(t, dialled[0])
		require.NotNil(t, dialled[1])

		// Each phone's surviving call: its Dial result if that lives on,
		// else the crossed call that arrived on Incoming.
		survivor := func(p *calltest.Phone, mine *call.Call, w *watcher) *call.Call {
			if mine.ID() == dialled[0].ID() && mine.ID() == dialled[1].ID() {
				return mine
			}
			other := dialled[0]
			if other == mine {
				other = dialled[1]
			}
			if mine.ID() < other.ID() {
				return mine
			}
			assert.Equal(t, call.ReasonCancelled, w.waitEnd(t, setupWait), "round %d: the higher call ID gives way", round)
			in := nextIncoming(t, p, setupWait)
			assert.True(t, in.Crossed())
			return in
		}
		if dialled[0].ID() == dialled[1].ID() {
			kinds["one dial answered the other"]++
			assert.True(t, dialled[0].Crossed() || dialled[1].Crossed())
			// The callee side's call also sits on its Incoming queue.
			callee := b
			if !dialled[0].Outgoing() {
				callee = a
			}
			in := nextIncoming(t, callee, setupWait)
			require.Equal(t, dialled[0].ID(), in.ID())
		} else {
			kinds["both invites crossed"]++
		}
		w0, w1 := watch(dialled[0]), watch(dialled[1])
		s0 := survivor(a, dialled[0], w0)
		s1 := survivor(b, dialled[1], w1)
		require.Equal(t, s0.ID(), s1.ID(), "round %d: both phones keep the same call", round)
		sw0, sw1 := w0, w1
		if s0 != dialled[0] {
			sw0 = watch(s0)
		}
		if s1 != dialled[1] {
			sw1 = watch(s1)
		}
		sw0.waitState(t, call.Connected, setupWait)
		sw1.waitState(t, call.Connected, setupWait)
		s0.Hangup()
		sw0.waitEnd(t, setupWait)
		sw1.waitEnd(t, setupWait)
		for _, c := range []*call.Call{dialled[0], dialled[1], s0, s1} {
			<-c.Done()
		}
	}
	t.Logf("crossings over 20 rounds: %v", kinds)
}

// A late cancel or hangup from an earlier call with the same peer names
// another call ID and cannot touch the current call.
func TestLateMessagesOfPreviousCallIgnored(t *testing.T) {
	lab := newLab(t, server.Config{})
	a := newPhone(t, lab, "alice", calltest.PhoneOptions{})
	b := newPhone(t, lab, "bob", calltest.PhoneOptions{})

	// Call 1: cancelled while ringing.
	first, err := a.Dial(t.Context(), "bob")
	require.NoError(t, err)
	fw := watch(first)
	fb := nextIncoming(t, b, setupWait)
	fw.waitState(t, call.Waiting, setupWait)
	first.Hangup()
	fw.waitEnd(t, setupWait)
	watch(fb).waitEnd(t, setupWait)

	// Call 2 connects.
	ac, bc, aw, bw := connect(t, a, b)

	// Replay late messages of call 1 in both directions.
	for _, typ := range []signaling.Type{signaling.TypeCancel, signaling.TypeHangup, signaling.TypeDecline} {
		m, err := signaling.NewMessage(typ, "bob", first.ID(), signaling.Hangup{Reason: "hangup"})
		require.NoError(t, err)
		require.NoError(t, a.Conn.Send(ctxT(t, time.Second), m))
		m.To = "alice"
		require.NoError(t, b.Conn.Send(ctxT(t, time.Second), m))
	}
	// Nothing may happen to the live call: watch it for a while.
	assert.Never(t, func() bool {
		return ac.State() != call.Connected || bc.State() != call.Connected
	}, 500*time.Millisecond, 10*time.Millisecond)
	// Still a working call: text goes through.
	require.NoError(t, ac.SendText(ctxT(t, time.Second), "still here?"))
	assert.Equal(t, "still here?", bw.waitFor(t, "text", setupWait, func(e call.Event) bool { return e.Kind == call.EventText }).Text)

	ac.Hangup()
	aw.waitEnd(t, setupWait)
	bw.waitEnd(t, setupWait)
}

func countEnds(w *watcher) int {
	n := 0
	for _, e := range w.snapshot() {
		if e.Kind == call.EventState && e.State == call.Ended {
			n++
		}
	}
	return n
}
