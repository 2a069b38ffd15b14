package call_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/signaling/server"
	"github.com/stretchr/testify/require"
)

// An answering loop that never reads Call.Events (the README's callee,
// `for in := range phone.Incoming() { in.Accept(ctx); in.Wait(ctx) }`)
// must run for ever in bounded memory: the events of a call nobody
// subscribed to go with the Call once it has ended and is forgotten, not
// when the Phone closes. Calls here are declined, which ends them before
// media set-up (an accepted call costs a PeerConnection, far too slow for
// thousands of them) and goes through the same end and release.
func TestUnreadEventsDoNotAccumulate(t *testing.T) {
	// Compare the heap after a warm-up with the heap at the end: a call
	// that kept a few KiB would add tens of MiB.
	const calls, mark = 10_000, 1_000
	lab := newLab(t, server.Config{RateLimit: 1e6, RateBurst: 1e6})
	cfg := fast()
	cfg.EndToneDuration = -1
	alice := newPhone(t, lab, "alice", calltest.PhoneOptions{Config: cfg})
	bob := newPhone(t, lab, "bob", calltest.PhoneOptions{Config: cfg})
	ctx := ctxT(t, 2*time.Minute)

	answered := make(chan struct{})
	go func() {
		defer close(answered)
		for in := range bob.Incoming() {
			_ = in.Decline(ctx)
			_, _ = in.Wait(ctx)
		}
	}()
	t.Cleanup(func() {
		_ = bob.Close()
		<-answered
	})

	type sample struct {
		heap       uint64
		goroutines int
	}
	measure := func() sample {
		runtime.GC()
		runtime.GC() // a second cycle frees what the first one's finalizers released
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return sample{heap: ms.HeapAlloc, goroutines: runtime.NumGoroutine()}
	}
	// Check every thousand calls after the warm-up, so a leak fails the
	// test early.
	var warm sample
	for i := 1; i <= calls; i++ {
		c, err := alice.Dial(ctx, "bob")
		require.NoError(t, err)
		_, err = c.Wait(ctx)
		require.NoError(t, err)
		switch {
		case i == mark:
			warm = measure()
		case i > mark && i%1000 == 0:
			now := measure()
			perCall := float64(int64(now.heap)-int64(warm.heap)) / float64(i-mark)
			t.Logf("heap after %d calls %d KiB, after %d calls %d KiB (%.0f B/call); goroutines %d → %d",
				mark, warm.heap>>10, i, now.heap>>10, perCall, warm.goroutines, now.goroutines)
			// An ended call's Call, logger and queued events weigh a few KiB.
			require.Less(t, perCall, 100.0, "heap grows with every call nobody read the events of")
			require.LessOrEqual(t, now.goroutines, warm.goroutines+2, "goroutines grow with the calls")
		}
	}
}
