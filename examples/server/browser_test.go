package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/audio"
	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/examples/server/internal/site"
	chromiumflags "github.com/dialtone-dev/dialtone/internal/chromium"
	"github.com/dialtone-dev/dialtone/internal/netns"
	"github.com/dialtone-dev/dialtone/internal/testenv"
	"github.com/dialtone-dev/dialtone/internal/testlog"
	"github.com/dialtone-dev/dialtone/media"
	"github.com/dialtone-dev/dialtone/media/mediatest"
	"github.com/dialtone-dev/dialtone/media/pcm"
	"github.com/dialtone-dev/dialtone/signaling"
)

// The browser test runs Chromium, the example server and a Go phone in a
// network namespace that has nothing but loopback, so neither the browser
// nor anything else in the test can reach beyond 127.0.0.1. The test binary
// re-executes itself under `unshare -n` for that (internal/netns).
const (
	chromiumEnv    = "DIALTONE_CHROMIUM" // path of the Chromium binary
	defaultBrowser = chromiumflags.DefaultPath
	goTone         = 1000.0 // Hz, what the Go phone's microphone plays
)

// chromiumPath returns the browser to test with ($DIALTONE_CHROMIUM, or
// Debian's chromium). Without one the test fails in CI and is skipped
// elsewhere (testenv).
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv(chromiumEnv)
	if p == "" {
		p = defaultBrowser
	}
	return testenv.Program(t, p)
}

// TestBrowser calls between a real Chromium running the web phone and a Go
// call.Phone, both ways, through the example server, and checks the audio
// by content in both directions.
func TestBrowser(t *testing.T) {
	inNetns(t, browserTest)
}

// inNetns runs test (a top-level test's body) with Chromium's path, in a
// loopback-only network namespace (runInNetns).
func inNetns(t *testing.T, test func(t *testing.T, chromium string)) {
	chromium := chromiumPath(t)
	runInNetns(t, func(t *testing.T) { test(t, chromium) })
}

// runInNetns runs test (a top-level test's body that starts browsers) in
// a loopback-only network namespace (internal/netns).
func runInNetns(t *testing.T, test func(t *testing.T)) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	netns.Run(t, test)
}

// browserTest is the test proper; it runs inside the namespace.
func browserTest(t *testing.T, chromium string) {
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	t0 := time.Now()

	base := startSite(ctx, t)

	// The Go phone: a WebSocket client with a token from /token, WebRTC on
	// loopback, a virtual microphone playing 1 kHz and a recording speaker.
	g := newGoPhone(ctx, t, base, "gophone", goTone)

	// Chromium with fake media devices, in a fresh profile and TMPDIR.
	page := newBrowser(ctx, t, chromium)
	tLoad := time.Now()
	logIn(t, page, base, "browser")
	t.Logf("page loaded and logged in: %v (since test start %v)", since(tLoad), since(t0))

	t.Run("GoCallsBrowser", func(t *testing.T) {
		start := time.Now()
		c, err := g.phone.Dial(ctx, "browser", call.WithDisplayName("Go phone"))
		require.NoError(t, err)
		w := watch(c.Events())
		require.NoError(t, chromedp.Do(page, chromedp.WaitVisible("#answer")))
		ringing := since(start)
		require.NoError(t, chromedp.Do(page, chromedp.Click("#answer")))
		answered := time.Now()
		_, err = waitState(ctx, w, call.Connected, 15*time.Second)
		require.NoError(t, err, "Go side connected")
		waitJS(t, page, `dialtone.state() === 'connected'`, 10*time.Second)
		t.Logf("dial → page ringing %v; answer click → Go connected %v", ringing, stateAt(w, call.Connected).Sub(answered).Round(time.Millisecond))

		// Browser → Go: Chrome's fake microphone beeps; find the beeps in
		// what the Go phone played.
		heard := assertHearsBeeps(ctx, t, g)
		assert.Less(t, mediatest.ToneShare(heard, goTone), 0.05, "our own 1 kHz tone does not come back")

		// Go → browser: the 1 kHz tone arrives (getStats energy and an
		// AnalyserNode on the remote stream).
		lv, err := chromedp.Run(page, chromedp.Poll[level](
			`(() => { const r = dialtone.levels().remote; return r && r.db > -40 && Math.abs(r.peakHz - 1000) < 30 ? r : null })()`,
			chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second)))
		require.NoError(t, err, "page analyser hears 1 kHz")
		t.Logf("page analyser on the remote stream: %.1f dBFS, peak at %.0f Hz", lv.DB, lv.PeakHz)
		stats := waitStats(t, page, `s.totalAudioEnergy > 0.01 && s.audioLevel > 0.05 && s.packetsReceived > 50`)
		t.Logf("page getStats: %s", stats)

		// The page renegotiates (an ICE restart: Chrome offers actpass).
		// The Go phone made the first offer and Chrome answered active, so
		// Go is the DTLS server and its answer must say passive, which
		// pion on its own does not: Chrome would refuse the answer ("Failed
		// to set SSL role for the transport") and stay in have-local-offer.
		answers := `dialtone.phone.events.filter((e) => e.endsWith(' received answer')).length`
		before, err := chromedp.Run(page, chromedp.Evaluate[int](answers))
		require.NoError(t, err)
		_, err = chromedp.Run(page, chromedp.Evaluate[bool](`(() => { dialtone.phone.call.pc.restartIce(); return true })()`))
		require.NoError(t, err)
		waitJS(t, page, fmt.Sprintf(`%s > %d && dialtone.phone.call.pc.signalingState === 'stable'`, answers, before), 10*time.Second)
		refused, err := chromedp.Run(page, chromedp.Evaluate[[]string](`dialtone.phone.events.filter((e) => e.includes('not applied'))`))
		require.NoError(t, err)
		assert.Empty(t, refused, "the page applied every description")
		// Pion drops what arrives on the old candidate pair while it
		// restarts ICE, and SCTP resends it only after its timeout (1 s,
		// then doubling), so the browser's text below could miss its 5 s
		// if sent mid-restart: wait for the new pair.
		waitStats(t, page, `s.pairChanges >= 2`)

		// Text both ways over the pre-negotiated data channel.
		require.NoError(t, c.SendText(ctx, "hello from Go"))
		waitJS(t, page, `dialtone.texts().includes('hello from Go')`, 5*time.Second)
		waitJS(t, page, `dialtone.sendText('hello from the browser')`, 5*time.Second)
		_, err = w.wait(ctx, 5*time.Second, func(e call.Event) bool {
			return e.Kind == call.EventText && e.Text == "hello from the browser"
		})
		require.NoError(t, err, "Go got the browser's text")

		// Hang up in the page: Go sees remote-hangup.
		require.NoError(t, chromedp.Do(page, chromedp.Click("#hangup")))
		reason, err := c.Wait(ctx)
		require.NoError(t, err)
		assert.Equal(t, call.ReasonRemoteHangup, reason)
		waitJS(t, page, `dialtone.state() === 'idle' && dialtone.lastCall().reason === 'hangup'`, 5*time.Second)
		w.stop()
	})

	t.Run("BrowserCallsGo", func(t *testing.T) {
		start := time.Now()
		require.NoError(t, chromedp.Do(page,
			chromedp.SetValue("#dial-user", "gophone"),
			chromedp.Click("#dial-button"),
		))
		var c *call.Call
		select {
		case c = <-g.phone.Incoming():
		case <-time.After(10 * time.Second):
			t.Fatal("no incoming call on the Go phone")
		}
		ringing := since(start)
		assert.Equal(t, "browser", c.Peer())
		assert.Equal(t, "browser", c.DisplayName())
		w := watch(c.Events())
		accepted := time.Now()
		require.NoError(t, c.Accept(ctx))
		_, err := waitState(ctx, w, call.Connected, 15*time.Second)
		require.NoError(t, err, "Go side connected")
		waitJS(t, page, `dialtone.state() === 'connected'`, 10*time.Second)
		t.Logf("click → Go ringing %v; accept → Go connected %v", ringing, stateAt(w, call.Connected).Sub(accepted).Round(time.Millisecond))

		assertHearsBeeps(ctx, t, g)
		stats := waitStats(t, page, `s.totalAudioEnergy > 0.01 && s.packetsReceived > 50`)
		t.Logf("page getStats: %s", stats)

		// Hang up from Go: the page ends remote-hangup.
		c.Hangup()
		reason, err := c.Wait(ctx)
		require.NoError(t, err)
		assert.Equal(t, call.ReasonHangup, reason)
		waitJS(t, page, `dialtone.state() === 'idle' && dialtone.lastCall().reason === 'remote-hangup'`, 5*time.Second)
		w.stop()
	})

	if t.Failed() {
		events, _ := chromedp.Run(page, chromedp.Evaluate[[]string](`dialtone.phone.events`))
		t.Logf("page log:\n%s", strings.Join(events, "\n"))
	}
	t.Logf("whole browser test: %v", since(t0))
}

// Chrome's fake microphone (--use-fake-device-for-media-stream) plays a
// short beep (a 400 Hz square-ish wave, ~20 ms) every 500 ms. Measured
// here through the whole path (Chrome's audio processing, Opus both ways):
// bursts of 30–50 ms, 400 ± 5 Hz holding 30–55 % of a burst's energy,
// onsets usually 500 ± 20 ms apart. The spacing is measured on the Go
// phone's playout timeline, which stretches when the jitter buffer conceals
// a late packet (under -race on a busy machine a gap can stretch by
// hundreds of ms), hence the wide period tolerance; the frequency is the
// sharp check.
const (
	fakeBeepFreq     = 400.0
	fakeBeepPeriod   = 500 * time.Millisecond
	beepPeriodMargin = 80 * time.Millisecond
)

// assertHearsBeeps checks that the next 3 s the Go phone plays are
// Chrome's fake microphone, and returns them. 3 s: five or six beeps, so
// that the median spacing holds when Chrome's fake microphone, on a loaded
// machine, shifts one beep.
func assertHearsBeeps(ctx context.Context, t *testing.T, g *goPhone) []int16 {
	t.Helper()
	heard := nextSamples(ctx, t, g, 3*audio.SampleRate)
	beeps := findBeeps(heard)
	t.Logf("%s heard from Chrome's fake mic: %+v", g.phone.User(), beeps)
	assert.GreaterOrEqual(t, beeps.Bursts, 5, "periodic beeps")
	assert.InDelta(t, fakeBeepPeriod.Seconds(), beeps.Period.Seconds(), beepPeriodMargin.Seconds(), "beep period")
	assert.InDelta(t, fakeBeepFreq, beeps.Freq, 15, "beep frequency")
	assert.Greater(t, beeps.Purity, 0.2, "beep energy at its frequency")
	return heard
}

// nextSamples returns the next n samples the Go phone plays.
func nextSamples(ctx context.Context, t *testing.T, g *goPhone, n int) []int16 {
	t.Helper()
	mark := g.speaker.Len()
	require.NoError(t, waitRecorder(ctx, g.speaker, mark+n, 10*time.Second))
	return g.speaker.Samples()[mark : mark+n]
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }

// startSite serves the example server, in development mode, on 127.0.0.1
// until the test ends, and returns its base URL.
func startSite(ctx context.Context, t *testing.T) string {
	t.Helper()
	st, err := site.New(ctx, site.Config{Dev: true})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srvCtx, stopSrv := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- st.Serve(srvCtx, ln, nil) }()
	t.Cleanup(func() {
		stopSrv()
		assert.NoError(t, <-served)
	})
	return "http://" + ln.Addr().String()
}

// logIn opens the web phone in page and logs in as user.
func logIn(t *testing.T, page context.Context, base, user string) {
	t.Helper()
	require.NoError(t, chromedp.Do(page,
		chromedp.Navigate(base+"/"),
		chromedp.SendKeys("#login-user", user),
		chromedp.Click("#login-button"),
	))
	waitJS(t, page, `dialtone.phone.wsUp === true`, 10*time.Second)
}

// goPhone is the Go side of the test.
type goPhone struct {
	phone   *call.Phone
	speaker *pcm.Recorder
}

// newGoPhone makes a Go phone for user whose microphone plays a tone of
// toneHz.
func newGoPhone(ctx context.Context, t *testing.T, base, user string, toneHz float64) *goPhone {
	t.Helper()
	return dialGoPhone(ctx, t, base, user, toneHz, false)
}

// dialGoPhone signs user in to the example server with a token from
// /token: a Go phone whose virtual microphone plays a tone of toneHz and
// whose speaker records, sending all media through the relay if
// relayOnly.
func dialGoPhone(ctx context.Context, t *testing.T, base, user string, toneHz float64, relayOnly bool) *goPhone {
	t.Helper()
	resp, err := http.Get(base + "/token?user=" + url.QueryEscape(user))
	require.NoError(t, err)
	var tok struct {
		Token string `json:"token"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tok))
	require.NoError(t, resp.Body.Close())

	tr, err := signaling.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws", signaling.DialConfig{Token: tok.Token})
	require.NoError(t, err)
	g := &goPhone{speaker: &pcm.Recorder{}}
	backend := audio.NewVirtualBackend(audio.VirtualBackendConfig{Devices: []audio.VirtualDevice{
		{ID: "mic", Direction: audio.Capture, Default: true,
			Source: media.NewTone(media.ToneSpec{Frequencies: []float64{toneHz}, Level: -12})},
		{ID: "speaker", Direction: audio.Playback, Default: true, Sink: g.speaker},
	}})
	g.phone, err = call.NewPhone(tr, call.Config{
		DisplayName:     user,
		SettingEngine:   calltest.Loopback(),
		RelayOnly:       relayOnly,
		Audio:           call.AudioConfig{Backend: backend},
		EndToneDuration: -1,
		Logger:          testlog.Logger(t),
	})
	if err != nil {
		_ = tr.Close()
		_ = backend.Close()
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		assert.NoError(t, g.phone.Close())
		assert.NoError(t, backend.Close())
	})
	return g
}

// newBrowser starts Chromium and returns a chromedp context for its first
// tab. Everything is torn down by t.Cleanup.
func newBrowser(ctx context.Context, t *testing.T, chromium string) context.Context {
	t.Helper()
	tmp := t.TempDir()
	profile := t.TempDir()
	opts := chromiumflags.Options(chromium, profile, tmp)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	page, cancelPage := chromedp.NewContext(allocCtx)
	start := time.Now()
	require.NoError(t, chromedp.Do(page)) // starts the browser
	t.Logf("Chromium started in %v", since(start))
	t.Cleanup(func() {
		cancelPage()
		cancelAlloc()
	})
	return page
}

// waitJS polls a JavaScript expression in the page until it is truthy.
func waitJS(t *testing.T, page context.Context, expr string, timeout time.Duration) {
	t.Helper()
	_, err := chromedp.Run(page, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	require.NoError(t, err, "waiting for %s", expr)
}

// waitStats waits until the page's latest getStats sample s satisfies cond
// and returns it as JSON.
func waitStats(t *testing.T, page context.Context, cond string) string {
	t.Helper()
	raw, err := chromedp.Run(page, chromedp.Poll[[]byte](`(() => { const s = dialtone.stats(); return (`+cond+`) ? s : null })()`,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second)))
	require.NoError(t, err, "page stats: %s", cond)
	return string(raw)
}

func waitRecorder(ctx context.Context, r *pcm.Recorder, n int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return r.Wait(ctx, n)
}

// watcher keeps every event of a call (call.Event) or a room
// (call.RoomEvent) and lets the test wait for one.
type watcher[E any] struct {
	mu      sync.Mutex
	events  []E
	changed chan struct{}
	done    chan struct{}
}

// watch reads events until the channel closes (the call or room released
// its resources).
func watch[E any](events <-chan E) *watcher[E] {
	w := &watcher[E]{changed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for e := range events {
			w.mu.Lock()
			w.events = append(w.events, e)
			close(w.changed)
			w.changed = make(chan struct{})
			w.mu.Unlock()
		}
	}()
	return w
}

// wait returns the first event (past or future) that matches.
func (w *watcher[E]) wait(ctx context.Context, timeout time.Duration, match func(E) bool) (E, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	seen := 0
	for {
		w.mu.Lock()
		evs, changed := w.events[seen:], w.changed
		seen = len(w.events)
		w.mu.Unlock()
		for _, e := range evs {
			if match(e) {
				return e, nil
			}
		}
		select {
		case <-changed:
		case <-w.done:
			// The call is over: one last look at what arrived.
			w.mu.Lock()
			evs = w.events[seen:]
			w.mu.Unlock()
			for _, e := range evs {
				if match(e) {
					return e, nil
				}
			}
			var none E
			return none, errors.New("the events ended before the awaited one")
		case <-ctx.Done():
			var none E
			return none, ctx.Err()
		}
	}
}

// waitState waits for a call to enter state s.
func waitState(ctx context.Context, w *watcher[call.Event], s call.State, timeout time.Duration) (call.Event, error) {
	e, err := w.wait(ctx, timeout, func(e call.Event) bool {
		return e.Kind == call.EventState && (e.State == s || e.State == call.Ended)
	})
	if err == nil && e.State != s {
		return e, fmt.Errorf("call ended (%s, %v) before %s", e.Reason, e.Err, s)
	}
	return e, err
}

// stateAt is when the call entered state s (zero if it did not).
func stateAt(w *watcher[call.Event], s call.State) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.events {
		if e.Kind == call.EventState && e.State == s {
			return e.Time
		}
	}
	return time.Time{}
}

// stop waits for the event stream to close (the call or room released its
// resources), so no goroutine outlives the subtest.
func (w *watcher[E]) stop() {
	select {
	case <-w.done:
	case <-time.After(10 * time.Second):
	}
}
