package call_test

import (
	"math"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/media/mediatest"
	"github.com/dialtone-dev/dialtone/media/pcm"
	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/dialtone-dev/dialtone/signaling/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	setupWait = 10 * time.Second
	sec       = 48000
)

// heard checks that the last two seconds of rec are the looped signal ref.
// It finds the delay once over the whole stretch (a long stretch makes the
// cross-correlation peak unambiguous), then follows it through 200 ms
// windows, each searched within ±50 ms of the previous one (a jitter
// buffer stretches or compresses now and then: that shifts the delay, it
// is not noise), and returns the medians of the windows' correlation and
// SNR after alignment.
func heard(t *testing.T, ref, rec []int16) (corr, snr float64) {
	t.Helper()
	require.GreaterOrEqual(t, len(rec), 2*sec, "too little audio recorded")
	tail := rec[len(rec)-2*sec:]
	loop := append(append([]int16{}, ref...), ref...) // every 2 s stretch of it is a rotation of ref: equal energy at every full-overlap lag
	lag, _ := mediatest.Delay(tail, loop)
	lag %= len(ref) // the loop repeats: stay in its first copy
	const win, slide = sec / 5, sec / 20
	var corrs, snrs []float64
	for w := 0; w+win <= len(tail); w += win {
		from := max(0, lag+w-slide)
		to := min(len(loop), lag+w+win+slide)
		if from >= to {
			// The delay wandered off the reference (no signal to follow):
			// a window that matches nothing.
			corrs, snrs = append(corrs, 0), append(snrs, math.Inf(-1))
			continue
		}
		d, c := mediatest.Delay(tail[w:w+win], loop[from:to])
		lag = from + d - w
		corrs = append(corrs, c)
		snrs = append(snrs, mediatest.SNR(tail[w:w+win], loop, from+d))
	}
	return mediatest.Median(corrs), mediatest.Median(snrs)
}

// bothWays lets a couple of seconds of audio flow between a and b, whose
// microphones loop sigA and sigB, and measures by content what each heard
// of the other (heard), logged under what.
func bothWays(t *testing.T, what string, a, b *calltest.Phone, sigA, sigB []int16) (corrAB, snrAB, corrBA, snrBA float64) {
	t.Helper()
	// Three seconds, of which heard measures the last two: the first
	// packets of a direction can take a few hundred ms more to arrive
	// (through a TURN relay, its permission for the peer), and a measured
	// stretch that starts before them misleads the delay search.
	require.NoError(t, b.Speaker.Wait(ctxT(t, 10*time.Second), b.Speaker.Len()+3*sec))
	require.NoError(t, a.Speaker.Wait(ctxT(t, 10*time.Second), a.Speaker.Len()+3*sec))
	corrAB, snrAB = heard(t, sigA, b.Speaker.Samples())
	corrBA, snrBA = heard(t, sigB, a.Speaker.Samples())
	t.Logf("%salice→bob corr %.3f SNR %.1f dB; bob→alice corr %.3f SNR %.1f dB", what, corrAB, snrAB, corrBA, snrBA)
	return corrAB, snrAB, corrBA, snrBA
}

// connect dials from a to b, accepts on b and waits until both are
// connected.
func connect(t *testing.T, a, b *calltest.Phone) (ac, bc *call.Call, aw, bw *watcher) {
	t.Helper()
	ac, bc, aw, bw = ring(t, a, b)
	require.NoError(t, bc.Accept(ctxT(t, setupWait)))
	aw.waitState(t, call.Connected, setupWait)
	bw.waitState(t, call.Connected, setupWait)
	return ac, bc, aw, bw
}

// ring dials from a to b and returns once the call rings at b, with
// both ends watched.
func ring(t *testing.T, a, b *calltest.Phone) (ac, bc *call.Call, aw, bw *watcher) {
	t.Helper()
	ac, err := a.Dial(t.Context(), b.User())
	require.NoError(t, err)
	aw = watch(ac)
	bc = nextIncoming(t, b, setupWait)
	bw = watch(bc)
	require.Equal(t, ac.ID(), bc.ID())
	return ac, bc, aw, bw
}

func TestHappyPathAudioBothWaysAndHangup(t *testing.T) {
	for _, tc := range []struct {
		name         string
		callerHangs  bool
		wantA, wantB call.Reason
	}{
		{"caller hangs up", true, call.ReasonHangup, call.ReasonRemoteHangup},
		{"callee hangs up", false, call.ReasonRemoteHangup, call.ReasonHangup},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lab := newLab(t, server.Config{})
			sigA, sigB := signalFor(1, 2), signalFor(2, 2)
			a := newPhone(t, lab, "alice", calltest.PhoneOptions{Mic: pcm.Loop(sigA)})
			b := newPhone(t, lab, "bob", calltest.PhoneOptions{Mic: pcm.Loop(sigB)})
			ac, bc, aw, bw := connect(t, a, b)

			corrAB, snrAB, corrBA, snrBA := bothWays(t, "", a, b, sigA, sigB)
			assert.Greater(t, corrAB, 0.9)
			assert.Greater(t, corrBA, 0.9)
			assert.Greater(t, snrAB, 8.0)
			assert.Greater(t, snrBA, 8.0)

			if tc.callerHangs {
				ac.Hangup()
			} else {
				bc.Hangup()
			}
			assert.Equal(t, tc.wantA, aw.waitEnd(t, setupWait))
			assert.Equal(t, tc.wantB, bw.waitEnd(t, setupWait))
			assert.Equal(t, []string{"idle", "dialing", "waiting", "connecting", "connected", "ended(" + string(tc.wantA) + ")"}, aw.states())
			assert.Equal(t, []string{"ringing", "connecting", "connected", "ended(" + string(tc.wantB) + ")"}, bw.states())
			<-ac.Done()
			<-bc.Done()
		})
	}
}

func TestBusyLeavesCurrentCallUntouched(t *testing.T) {
	lab := newLab(t, server.Config{})
	a := newPhone(t, lab, "alice", calltest.PhoneOptions{})
	b := newPhone(t, lab, "bob", calltest.PhoneOptions{})
	c := newPhone(t, lab, "carol", calltest.PhoneOptions{})
	ac, bc, aw, bw := connect(t, a, b)

	cc, err := c.Dial(t.Context(), "bob")
	require.NoError(t, err)
	cw := watch(cc)
	require.Equal(t, call.ReasonBusy, cw.waitEnd(t, setupWait))
	// A late decline for the failed call cannot overwrite its reason.
	m, err := signaling.NewMessage(signaling.TypeDecline, "carol", cc.ID(), signaling.Hangup{Reason: "declined"})
	require.NoError(t, err)
	require.NoError(t, b.Conn.Send(ctxT(t, time.Second), m))
	<-cc.Done()
	assert.Equal(t, call.ReasonBusy, cc.Reason())
	assert.Equal(t, 1, countEnds(cw))
	assert.Equal(t, call.Connected, ac.State())
	assert.Equal(t, call.Connected, bc.State())
	select {
	case extra := <-b.Incoming():
		t.Fatalf("busy phone still delivered incoming call %s", describe(extra))
	default:
	}
	ac.Hangup()
	aw.waitEnd(t, setupWait)
	bw.waitEnd(t, setupWait)
}

func TestEndReasons(t *testing.T) {
	t.Run("offline", func(t *testing.T) {
		lab := newLab(t, server.Config{})
		a := newPhone(t, lab, "alice", calltest.PhoneOptions{})
		ac, err := a.Dial(t.Context(), "nobody")
		require.NoError(t, err)
		assert.Equal(t, call.ReasonOffline, watch(ac).waitEnd(t, setupWait))
	})
	t.Run("declined", func(t *testing.T) {
		lab := newLab(t, server.Config{})
		a := newPhone(t, lab, "alice", calltest.PhoneOptions{})
		b := newPhone(t, lab, "bob", calltest.PhoneOptions{})
		ac, err := a.Dial(t.Context(), "bob")
		require.NoError(t, err)
		aw := watch(ac)
		bc := nextIncoming(t, b, setupWait)
		aw.waitState(t, call.Waiting, setupWait)
		require.NoError(t, bc.Decline(ctxT(t, time.Second)))
		assert.Equal(t, call.ReasonDeclined, aw.waitEnd(t, setupWait))
		assert.Equal(t, call.ReasonDeclined, bc.Reason())
	})
	t.Run("cancelled while ringing", func(t *testing.T) {
		lab := newLab(t, server.Config{})
		a := newPhone(t, lab, "alice", calltest.PhoneOptions{})
		b := newPhone(t, lab, "bob", calltest.PhoneOptions{})
		ac, bc, aw, bw := ring(t, a, b)
		aw.waitState(t, call.Waiting, setupWait)
		ac.Hangup()
		assert.Equal(t, call.ReasonCancelled, aw.waitEnd(t, setupWait))
		assert.Equal(t, call.ReasonCancelled, bw.waitEnd(t, setupWait))
		assert.ErrorIs(t, bc.Accept(ctxT(t, time.Second)), call.ErrEnded)
	})
	t.Run("no answer", func(t *testing.T) {
		lab := newLab(t, server.Config{})
		cfg := fast()
		cfg.RingTimeout = 400 * time.Millisecond
		a := newPhone(t, lab, "alice", calltest.PhoneOptions{Config: cfg})
		b := newPhone(t, lab, "bob", calltest.PhoneOptions{})
		start := time.Now()
		ac, err := a.Dial(t.Context(), "bob")
		require.NoError(t, err)
		aw := watch(ac)
		bw := watch(nextIncoming(t, b, setupWait))
		assert.Equal(t, call.ReasonNoAnswer, aw.waitEnd(t, setupWait))
		assert.Equal(t, call.ReasonNoAnswer, bw.waitEnd(t, setupWait), "the callee must stop ringing")
		assert.Less(t, time.Since(start), 3*time.Second)
	})
	t.Run("connect timeout", func(t *testing.T) {
		lab := newLab(t, server.Config{})
		cfg := fast()
		cfg.ConnectTimeout = 1500 * time.Millisecond
		// Bob gathers no candidates at all: ICE can never connect.
		dead := calltest.Loopback()
		dead.SetInterfaceFilter(func(string) bool { return false })
		dead.SetIncludeLoopbackCandidate(false)
		bcfg := cfg
		bcfg.SettingEngine = dead
		a := newPhone(t, lab, "alice", calltest.PhoneOptions{Config: cfg})
		b := newPhone(t, lab, "bob", calltest.PhoneOptions{Config: bcfg})
		_, bc, aw, bw := ring(t, a, b)
		require.NoError(t, bc.Accept(ctxT(t, time.Second)))
		assert.Equal(t, call.ReasonConnectTimeout, aw.waitEnd(t, setupWait))
		assert.Equal(t, call.ReasonConnectTimeout, bw.waitEnd(t, setupWait))
	})
}
