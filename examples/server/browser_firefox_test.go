package main

import (
	"bytes"
	"context"
	"fmt"
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
	"github.com/dialtone-dev/dialtone/internal/firefox"
	"github.com/dialtone-dev/dialtone/internal/pulsetest"
	"github.com/dialtone-dev/dialtone/internal/testenv"
	"github.com/dialtone-dev/dialtone/media/mediatest"
)

// The Firefox tests run Firefox ESR headless (internal/firefox, driven
// over Marionette) in the same loopback-only network namespace as the
// Chromium tests. Firefox's fake microphone plays a steady 1 kHz tone, so
// the Go phones here play another tone. Firefox's AudioContext runs only
// once an audio output is open (without one it stays suspended and the
// page's analysers read nothing), so each test starts a PulseAudio server
// with a null sink for it.
const (
	firefoxEnv = "DIALTONE_FIREFOX" // path of the Firefox binary
	foxMicTone = 1000.0             // Hz, Firefox's fake microphone
	foxGoTone  = 1500.0             // Hz, the Go phone's microphone in these tests
)

// firefoxPath returns the Firefox to test with ($DIALTONE_FIREFOX, or
// Debian's firefox-esr). Without one the test fails in CI and is skipped
// elsewhere (testenv).
func firefoxPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv(firefoxEnv)
	if p == "" {
		p = firefox.DefaultPath
	}
	return testenv.Program(t, p)
}

// inNetnsFirefox runs test in the loopback-only network namespace
// (runInNetns) with Firefox's path.
func inNetnsFirefox(t *testing.T, test func(t *testing.T, firefox string)) {
	ff := firefoxPath(t)
	testenv.Program(t, "pulseaudio")
	runInNetns(t, func(t *testing.T) { test(t, ff) })
}

// TestBrowserFirefox calls between the web phone in a real Firefox and a
// Go call.Phone, both ways, through the example server: the audio is
// checked by content in both directions, also after the page restarts ICE
// on the call Go dialed; text goes both ways, and each side hangs up
// once.
func TestBrowserFirefox(t *testing.T) {
	inNetnsFirefox(t, browserFirefoxTest)
}

func browserFirefoxTest(t *testing.T, ffPath string) {
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	t0 := time.Now()
	base := startSite(ctx, t)
	g := newGoPhone(ctx, t, base, "gophone", foxGoTone)
	fox := newFirefox(ctx, t, ffPath, startPulse(t), nil)
	foxLogIn(ctx, t, fox, base, "fox")
	t.Logf("Firefox logged in: %v since test start", since(t0))
	t.Cleanup(func() {
		if t.Failed() {
			logFoxPage(t, fox)
		}
	})

	t.Run("GoCallsFirefox", func(t *testing.T) {
		start := time.Now()
		c, err := g.phone.Dial(ctx, "fox", call.WithDisplayName("Go phone"))
		require.NoError(t, err)
		w := watch(c.Events())
		foxWait(ctx, t, fox, `dialtone.state() === 'ringing'`, 10*time.Second)
		ringing := since(start)
		require.NoError(t, fox.Click(ctx, "#answer"))
		answered := time.Now()
		_, err = waitState(ctx, w, call.Connected, 15*time.Second)
		require.NoError(t, err, "Go side connected")
		foxWait(ctx, t, fox, `dialtone.state() === 'connected'`, 10*time.Second)
		t.Logf("dial → page ringing %v; answer click → Go connected %v", ringing, stateAt(w, call.Connected).Sub(answered).Round(time.Millisecond))

		assertHearsFirefox(ctx, t, g)
		foxHears(ctx, t, fox, `dialtone.levels().remote`, foxGoTone)

		// The page restarts ICE: Firefox offers new credentials and
		// trickles new candidates, and Go, which dialed and so is the
		// controlling ICE agent, answers and nominates the pair. Once
		// Firefox's transport has connected on the new credentials, the
		// audio flows both ways again.
		foxRestartICE(ctx, t, fox)
		assertHearsFirefox(ctx, t, g)
		foxHears(ctx, t, fox, `dialtone.levels().remote`, foxGoTone)

		// Text both ways over the pre-negotiated data channel.
		require.NoError(t, c.SendText(ctx, "hello from Go"))
		foxWait(ctx, t, fox, `dialtone.texts().includes('hello from Go')`, 5*time.Second)
		foxWait(ctx, t, fox, `dialtone.sendText('hello from Firefox')`, 5*time.Second)
		_, err = w.wait(ctx, 5*time.Second, func(e call.Event) bool {
			return e.Kind == call.EventText && e.Text == "hello from Firefox"
		})
		require.NoError(t, err, "Go got Firefox's text")

		// Hang up in the page: Go sees remote-hangup.
		require.NoError(t, fox.Click(ctx, "#hangup"))
		reason, err := c.Wait(ctx)
		require.NoError(t, err)
		assert.Equal(t, call.ReasonRemoteHangup, reason)
		foxWait(ctx, t, fox, `dialtone.state() === 'idle' && dialtone.lastCall().reason === 'hangup'`, 5*time.Second)
		w.stop()
	})

	t.Run("FirefoxCallsGo", func(t *testing.T) {
		start := time.Now()
		require.NoError(t, fox.SendKeys(ctx, "#dial-user", "gophone"))
		require.NoError(t, fox.Click(ctx, "#dial-button"))
		var c *call.Call
		select {
		case c = <-g.phone.Incoming():
		case <-time.After(10 * time.Second):
			t.Fatal("no incoming call on the Go phone")
		}
		ringing := since(start)
		assert.Equal(t, "fox", c.Peer())
		w := watch(c.Events())
		accepted := time.Now()
		require.NoError(t, c.Accept(ctx))
		_, err := waitState(ctx, w, call.Connected, 15*time.Second)
		require.NoError(t, err, "Go side connected")
		foxWait(ctx, t, fox, `dialtone.state() === 'connected'`, 10*time.Second)
		t.Logf("click → Go ringing %v; accept → Go connected %v", ringing, stateAt(w, call.Connected).Sub(accepted).Round(time.Millisecond))

		assertHearsFirefox(ctx, t, g)
		foxHears(ctx, t, fox, `dialtone.levels().remote`, foxGoTone)

		// Hang up from Go: the page ends remote-hangup.
		c.Hangup()
		reason, err := c.Wait(ctx)
		require.NoError(t, err)
		assert.Equal(t, call.ReasonHangup, reason)
		foxWait(ctx, t, fox, `dialtone.state() === 'idle' && dialtone.lastCall().reason === 'remote-hangup'`, 5*time.Second)
		w.stop()
	})
	assertNoRefusals(ctx, t, fox)
	t.Logf("whole Firefox test: %v", since(t0))
}

// TestBrowserFirefoxMeters checks the web phone's audio in a Firefox with
// its shipped autoplay setting (audible media blocked: an AudioContext
// runs only once resumed from the user's input): once the user has logged
// in by typing and clicking, the page's AudioContext runs, so an incoming
// call rings aloud (the ringer plays only then) and, once answered, both
// level meters show the audio (the microphone's tone and the Go phone's)
// instead of minus infinity.
func TestBrowserFirefoxMeters(t *testing.T) {
	inNetnsFirefox(t, browserFirefoxMetersTest)
}

func browserFirefoxMetersTest(t *testing.T, ffPath string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := startSite(ctx, t)
	g := newGoPhone(ctx, t, base, "gophone", foxGoTone)
	fox := newFirefox(ctx, t, ffPath, startPulse(t), map[string]any{"media.autoplay.default": 1}) // Firefox's default: block audible
	foxLogIn(ctx, t, fox, base, "fox")

	c, err := g.phone.Dial(ctx, "fox")
	require.NoError(t, err)
	w := watch(c.Events())
	foxWait(ctx, t, fox, `dialtone.state() === 'ringing'`, 10*time.Second)
	// The context starts asynchronously (an audio stream opens): wait.
	if err := fox.Poll(ctx, `dialtone.phone.audioCtx && dialtone.phone.audioCtx.state === 'running'`, 50*time.Millisecond, 5*time.Second, nil); err != nil {
		var state string
		_ = fox.Eval(ctx, `dialtone.phone.audioCtx ? dialtone.phone.audioCtx.state : 'none'`, &state)
		t.Errorf("the page's AudioContext is %s as the call rings (the ringer needs it running): %v", state, err)
	}
	require.NoError(t, fox.Click(ctx, "#answer"))
	_, err = waitState(ctx, w, call.Connected, 15*time.Second)
	require.NoError(t, err, "Go side connected")

	// What the user sees: each meter's bar above its floor (-60) and a
	// level in dB beside it.
	var shown struct {
		Mic    float64 `json:"mic"`
		Remote float64 `json:"remote"`
		MicDB  string  `json:"micDB"`
		RemDB  string  `json:"remoteDB"`
	}
	err = fox.Poll(ctx, `(() => {
		const v = (id) => document.getElementById(id);
		const s = {mic: v('mic-meter').value, remote: v('remote-meter').value, micDB: v('mic-db').textContent, remoteDB: v('remote-db').textContent};
		return s.mic > -40 && s.remote > -40 && s.micDB.endsWith(' dB') && s.remoteDB.endsWith(' dB') ? s : null;
	})()`, 50*time.Millisecond, 10*time.Second, &shown)
	if err != nil {
		var now any
		_ = fox.Eval(ctx, `[dialtone.phone.audioCtx.state, document.getElementById('mic-db').textContent, document.getElementById('remote-db').textContent]`, &now)
		t.Fatalf("the meters do not move: %v; AudioContext state, microphone and remote levels shown: %v", err, now)
	}
	t.Logf("meters: microphone %.1f dB (%s), remote %.1f dB (%s)", shown.Mic, shown.MicDB, shown.Remote, shown.RemDB)
	foxHears(ctx, t, fox, `dialtone.levels().mic`, foxMicTone)
	foxHears(ctx, t, fox, `dialtone.levels().remote`, foxGoTone)
	c.Hangup()
	_, err = c.Wait(ctx)
	require.NoError(t, err)
	w.stop()
}

// TestBrowserChromiumFirefox calls between the web phone in Chromium and
// the web phone in Firefox through the example server, both ways, and
// checks in each page that it hears the other browser's fake microphone
// (Chromium's 400 Hz beeps, Firefox's 1 kHz tone).
func TestBrowserChromiumFirefox(t *testing.T) {
	chromium := chromiumPath(t)
	inNetnsFirefox(t, func(t *testing.T, ffPath string) { browserChromiumFirefoxTest(t, chromium, ffPath) })
}

func browserChromiumFirefoxTest(t *testing.T, chromium, ffPath string) {
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	t0 := time.Now()
	base := startSite(ctx, t)
	fox := newFirefox(ctx, t, ffPath, startPulse(t), nil)
	chrome := newBrowser(ctx, t, chromium)
	logIn(t, chrome, base, "chrome")
	foxLogIn(ctx, t, fox, base, "fox")
	t.Cleanup(func() {
		if t.Failed() {
			logPages(t, chrome, fox)
		}
	})

	t.Run("ChromiumCallsFirefox", func(t *testing.T) {
		start := time.Now()
		require.NoError(t, chromedp.Do(chrome,
			chromedp.SetValue("#dial-user", "fox"),
			chromedp.Click("#dial-button"),
		))
		foxWait(ctx, t, fox, `dialtone.state() === 'ringing'`, 10*time.Second)
		require.NoError(t, fox.Click(ctx, "#answer"))
		foxWait(ctx, t, fox, `dialtone.state() === 'connected'`, 15*time.Second)
		waitJS(t, chrome, `dialtone.state() === 'connected'`, 10*time.Second)
		t.Logf("dial click → both pages connected: %v", since(start))
		chromeHears(t, chrome, `dialtone.levels().remote`, foxMicTone)
		foxHearsBeeps(ctx, t, fox, `dialtone.levels().remote`)

		require.NoError(t, fox.Click(ctx, "#hangup"))
		waitJS(t, chrome, `dialtone.state() === 'idle' && dialtone.lastCall().reason === 'remote-hangup'`, 5*time.Second)
		foxWait(ctx, t, fox, `dialtone.state() === 'idle' && dialtone.lastCall().reason === 'hangup'`, 5*time.Second)
	})

	t.Run("FirefoxCallsChromium", func(t *testing.T) {
		start := time.Now()
		require.NoError(t, fox.SendKeys(ctx, "#dial-user", "chrome"))
		require.NoError(t, fox.Click(ctx, "#dial-button"))
		require.NoError(t, chromedp.Do(chrome, chromedp.WaitVisible("#answer"), chromedp.Click("#answer")))
		waitJS(t, chrome, `dialtone.state() === 'connected'`, 15*time.Second)
		foxWait(ctx, t, fox, `dialtone.state() === 'connected'`, 10*time.Second)
		t.Logf("dial click → both pages connected: %v", since(start))
		chromeHears(t, chrome, `dialtone.levels().remote`, foxMicTone)
		foxHearsBeeps(ctx, t, fox, `dialtone.levels().remote`)

		require.NoError(t, chromedp.Do(chrome, chromedp.Click("#hangup")))
		foxWait(ctx, t, fox, `dialtone.state() === 'idle' && dialtone.lastCall().reason === 'remote-hangup'`, 5*time.Second)
		waitJS(t, chrome, `dialtone.state() === 'idle' && dialtone.lastCall().reason === 'hangup'`, 5*time.Second)
	})
	assertNoRefusals(ctx, t, fox)
	t.Logf("whole Chromium–Firefox test: %v", since(t0))
}

// TestBrowserFirefoxRoom puts Chromium, Firefox and a Go phone in one
// mesh room through the example server, and checks by content that every
// member hears each other member.
func TestBrowserFirefoxRoom(t *testing.T) {
	chromium := chromiumPath(t)
	inNetnsFirefox(t, func(t *testing.T, ffPath string) { browserFirefoxRoomTest(t, chromium, ffPath) })
}

func browserFirefoxRoomTest(t *testing.T, chromium, ffPath string) {
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	t0 := time.Now()
	base := startSite(ctx, t)
	g := newGoPhone(ctx, t, base, "go-a", foxGoTone)
	fox := newFirefox(ctx, t, ffPath, startPulse(t), nil)
	chrome := newBrowser(ctx, t, chromium)
	logIn(t, chrome, base, "chrome")
	foxLogIn(ctx, t, fox, base, "fox")
	t.Cleanup(func() {
		if t.Failed() {
			logPages(t, chrome, fox)
		}
	})

	// go-a joins, then Chromium, then Firefox: Firefox offers to both.
	r, err := g.phone.Join(ctx, roomName, call.RoomConfig{})
	require.NoError(t, err)
	w := watch(r.Events())
	start := time.Now()
	require.NoError(t, chromedp.Do(chrome,
		chromedp.SetValue("#room-name", roomName),
		chromedp.Click("#room-join"),
	))
	waitJS(t, chrome, `dialtone.room() && dialtone.room().state === 'joined'`, 10*time.Second)
	require.NoError(t, fox.SendKeys(ctx, "#room-name", roomName))
	require.NoError(t, fox.Click(ctx, "#room-join"))
	for _, user := range []string{"chrome", "fox"} {
		_, err := waitMember(ctx, w, call.MemberConnected, user)
		require.NoError(t, err, "go-a connected with %s", user)
	}
	members := `dialtone.room() && dialtone.room().members.map((m) => m.user + ':' + m.state).join()`
	waitJS(t, chrome, members+` === 'go-a:connected,fox:connected'`, 15*time.Second)
	foxWait(ctx, t, fox, members+` === 'go-a:connected,chrome:connected'`, 15*time.Second)
	t.Logf("every link of the room connected: %v after Chromium's join click", since(start))

	// Go hears each browser alone, the other mixed at volume 0.
	r.SetVolume("chrome", 0)
	assertHearsFirefox(ctx, t, g)
	r.SetVolume("chrome", 1)
	r.SetVolume("fox", 0)
	heard := assertHearsBeeps(ctx, t, g)
	assert.Less(t, mediatest.ToneShare(heard, foxMicTone), 0.05, "Firefox's tone is muted in go-a's mix")
	r.SetVolume("fox", 1)

	// Each page hears each other member, on that member's analyser.
	chromeHears(t, chrome, `dialtone.levels().members['go-a']`, foxGoTone)
	chromeHears(t, chrome, `dialtone.levels().members['fox']`, foxMicTone)
	foxHears(ctx, t, fox, `dialtone.levels().members['go-a']`, foxGoTone)
	foxHearsBeeps(ctx, t, fox, `dialtone.levels().members['chrome']`)

	// Firefox leaves: the others see it go.
	require.NoError(t, fox.Click(ctx, "#room-leave"))
	e, err := waitMember(ctx, w, call.MemberLeft, "fox")
	require.NoError(t, err)
	assert.Equal(t, call.ReasonLeft, e.Reason)
	waitJS(t, chrome, `dialtone.room().members.map((m) => m.user).join() === 'go-a'`, 5*time.Second)
	foxWait(ctx, t, fox, `dialtone.room() === null && dialtone.lastRoom().reason === 'left'`, 5*time.Second)
	require.NoError(t, r.Leave(ctx))
	w.stop()
	assertNoRefusals(ctx, t, fox)
	t.Logf("whole Chromium–Firefox–Go room test: %v", since(t0))
}

// newFirefox starts Firefox with a fresh profile, its own HOME and TMPDIR,
// audio out to the PulseAudio server at pulse, and prefs on top of
// firefox.Prefs(); t.Cleanup closes it.
func newFirefox(ctx context.Context, t *testing.T, path, pulse string, prefs map[string]any) *firefox.Browser {
	t.Helper()
	home := t.TempDir()
	out := &syncBuffer{}
	start := time.Now()
	fox, err := firefox.Start(ctx, firefox.Config{
		Path:    path,
		Profile: t.TempDir(),
		Prefs:   prefs,
		Env:     []string{"HOME=" + home, "TMPDIR=" + home, "PULSE_SERVER=" + pulse},
		Output:  out,
	})
	require.NoError(t, err, "Firefox's output:\n%s", out)
	t.Logf("Firefox started in %v", since(start))
	t.Cleanup(func() {
		assert.NoError(t, fox.Close())
		if t.Failed() {
			t.Logf("Firefox's output:\n%s", out)
		}
	})
	return fox
}

// startPulse runs a private PulseAudio server (internal/pulsetest) until
// the test ends and returns its address for Firefox's PULSE_SERVER:
// Firefox runs a page's AudioContext only with an audio output. Only
// Firefox gets it: with PULSE_SERVER set for Chromium too, Firefox no
// longer heard Chromium's fake microphone.
func startPulse(t *testing.T) string {
	t.Helper()
	addr := pulsetest.Start(t).Address
	require.NoError(t, os.Unsetenv("PULSE_SERVER")) // t.Setenv's cleanup restores it
	return addr
}

// foxLogIn opens the web phone in Firefox and logs in as user, by keys and
// a click as a user does.
func foxLogIn(ctx context.Context, t *testing.T, fox *firefox.Browser, base, user string) {
	t.Helper()
	require.NoError(t, fox.Navigate(ctx, base+"/"))
	require.NoError(t, fox.SendKeys(ctx, "#login-user", user))
	require.NoError(t, fox.Click(ctx, "#login-button"))
	foxWait(ctx, t, fox, `dialtone.phone.wsUp === true`, 10*time.Second)
}

// foxWait polls a JavaScript expression in Firefox's page until it is
// truthy.
func foxWait(ctx context.Context, t *testing.T, fox *firefox.Browser, expr string, timeout time.Duration) {
	t.Helper()
	require.NoError(t, fox.Poll(ctx, expr, 50*time.Millisecond, timeout, nil), "waiting for %s", expr)
}

// foxHears waits until Firefox's analyser expr (a dialtone.levels()
// expression) finds a tone of hz, well above silence.
func foxHears(ctx context.Context, t *testing.T, fox *firefox.Browser, expr string, hz float64) {
	t.Helper()
	var lv level
	err := fox.Poll(ctx, fmt.Sprintf(`(() => { const l = %s; return l && l.db > -40 && Math.abs(l.peakHz - %v) < 30 ? l : null })()`, expr, hz),
		100*time.Millisecond, 10*time.Second, &lv)
	require.NoError(t, err, "Firefox's analyser %s hears %v Hz", expr, hz)
	t.Logf("Firefox's analyser %s: %.1f dBFS, peak at %.0f Hz", expr, lv.DB, lv.PeakHz)
}

// Chromium's fake microphone beeps (fakeBeepFreq) for a few tens of ms
// every half second; an analyser reading (85 ms of audio every 100 ms)
// catches one now and then. Its level over a whole reading is lower than
// the beep's.
const beepReadingDB = -50.0

// foxLinkDiag reports, for a failed check, what a page's link with the
// member arguments[0] receives: its inbound RTP, the member's meter and
// <audio>, and the audio context's state.
const foxLinkDiag = `const done = arguments[arguments.length - 1];
const mb = dialtone.phone.room && dialtone.phone.room.members.get(arguments[0]);
if (!mb || !mb.link || !mb.link.pc) { done('no link'); return; }
mb.link.pc.getStats().then((st) => {
  const in_ = [];
  st.forEach((r) => { if (r.type === 'inbound-rtp') in_.push({ packets: r.packetsReceived, level: r.audioLevel, energy: r.totalAudioEnergy }); });
  done(JSON.stringify({ inbound: in_, meter: dialtone.levels().members[arguments[0]], audio: mb.audio && { paused: mb.audio.paused, muted: mb.audio.muted, volume: mb.audio.volume }, ctx: dialtone.phone.audioCtx && dialtone.phone.audioCtx.state }));
}, (e) => done(String(e)));`

// foxHearsBeeps waits until Firefox's analyser expr (a dialtone.levels()
// expression) catches one of Chromium's beeps.
func foxHearsBeeps(ctx context.Context, t *testing.T, fox *firefox.Browser, expr string) {
	t.Helper()
	var lv level
	err := fox.Poll(ctx, fmt.Sprintf(`(() => { const l = %s; return l && l.db > %v && Math.abs(l.peakHz - %v) < 30 ? l : null })()`, expr, beepReadingDB, fakeBeepFreq),
		20*time.Millisecond, 10*time.Second, &lv)
	if err != nil {
		var diag string
		derr := fox.ExecuteAsync(ctx, foxLinkDiag, []any{"chrome"}, &diag)
		t.Logf("Firefox's link with chrome: %s %v", diag, derr)
	}
	require.NoError(t, err, "Firefox's analyser %s hears Chromium's beeps", expr)
	t.Logf("Firefox's analyser %s: a beep at %.1f dBFS, peak at %.0f Hz", expr, lv.DB, lv.PeakHz)
}

// chromeHears waits until Chromium's analyser expr (a dialtone.levels()
// expression) finds a tone of hz, well above silence.
func chromeHears(t *testing.T, page context.Context, expr string, hz float64) {
	t.Helper()
	lv, err := chromedp.Run(page, chromedp.Poll[level](
		fmt.Sprintf(`(() => { const l = %s; return l && l.db > -40 && Math.abs(l.peakHz - %v) < 30 ? l : null })()`, expr, hz),
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second)))
	require.NoError(t, err, "Chromium's analyser %s hears %v Hz", expr, hz)
	t.Logf("Chromium's analyser %s: %.1f dBFS, peak at %.0f Hz", expr, lv.DB, lv.PeakHz)
}

// assertHearsFirefox checks that the next second the Go phone plays is
// Firefox's fake microphone: a steady 1 kHz tone, and not the Go phone's
// own tone coming back.
func assertHearsFirefox(ctx context.Context, t *testing.T, g *goPhone) {
	t.Helper()
	// Firefox's microphone starts some hundreds of ms after the click
	// that opened it, and its level settles within about half a second
	// (Firefox's audio processing): wait for the first loud 100 ms, then
	// half a second.
	deadline := time.Now().Add(10 * time.Second)
	for dbov(nextSamples(ctx, t, g, audio.SampleRate/10)) < -40 {
		require.True(t, time.Now().Before(deadline), "%s hears nothing from Firefox", g.phone.User())
	}
	nextSamples(ctx, t, g, audio.SampleRate/2)
	heard := nextSamples(ctx, t, g, audio.SampleRate)
	share, own := mediatest.BlockToneShare(heard, foxMicTone), mediatest.BlockToneShare(heard, foxGoTone)
	level := dbov(heard)
	quiet := 0 // 10 ms blocks well below the tone: gaps
	for i := 0; i+blockSamples <= len(heard); i += blockSamples {
		if dbov(heard[i:i+blockSamples]) < level-20 {
			quiet++
		}
	}
	t.Logf("%s heard from Firefox's fake mic: %.1f dBov, %.0f%% at %v Hz, %.1f%% at its own %v Hz (medians of 100 ms blocks), %d quiet 10 ms blocks",
		g.phone.User(), level, 100*share, foxMicTone, 100*own, foxGoTone, quiet)
	assert.Greater(t, level, -40.0, "Firefox's tone is loud enough")
	assert.Greater(t, share, 0.8, "the Go phone hears Firefox's 1 kHz tone")
	assert.Less(t, own, 0.05, "the Go phone's own tone does not come back")
	assert.LessOrEqual(t, quiet, 5, "the tone is steady")
}

// assertNoRefusals checks that Firefox's page applied every description
// and signal.
func assertNoRefusals(ctx context.Context, t *testing.T, fox *firefox.Browser) {
	t.Helper()
	var refused []string
	require.NoError(t, fox.Eval(ctx, `dialtone.phone.events.filter((e) => e.includes('not applied') || e.includes('failed'))`, &refused))
	assert.Empty(t, refused, "Firefox's page applied every signal")
}

// logPages logs both pages' logs.
func logPages(t *testing.T, chrome context.Context, fox *firefox.Browser) {
	events, _ := chromedp.Run(chrome, chromedp.Evaluate[[]string](`dialtone.phone.events`))
	t.Logf("Chromium's page log:\n%s", strings.Join(events, "\n"))
	logFoxPage(t, fox)
}

// logFoxPage logs Firefox's page log.
func logFoxPage(t *testing.T, fox *firefox.Browser) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var events []string
	if err := fox.Eval(ctx, `dialtone.phone.events`, &events); err != nil {
		t.Logf("Firefox's page log: %v", err)
	}
	t.Logf("Firefox's page log:\n%s", strings.Join(events, "\n"))
}

// syncBuffer is a bytes.Buffer that a process's output copier and the test
// may use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// foxRestartICE restarts ICE in Firefox's call (pc.restartIce(), as the
// page does when the connection fails) and waits until Firefox has
// applied Go's answer and its ICE transport is connected on the new
// credentials: Firefox keeps sending on the old connection until then.
func foxRestartICE(ctx context.Context, t *testing.T, fox *firefox.Browser) {
	t.Helper()
	answers := `dialtone.phone.events.filter((e) => e.endsWith(' received answer')).length`
	var before int
	require.NoError(t, fox.Eval(ctx, answers, &before))
	start := time.Now()
	require.NoError(t, fox.Eval(ctx, `(() => { dialtone.phone.call.pc.restartIce(); return true })()`, nil))
	foxWait(ctx, t, fox, fmt.Sprintf(`%s > %d && dialtone.phone.call.pc.signalingState === 'stable'`, answers, before), 10*time.Second)
	applied := since(start)
	// The transport's state, from getStats, polled in the page.
	var transport struct {
		State string `json:"iceState"`
		Ufrag string `json:"iceLocalUsernameFragment"`
		Want  string `json:"want"`
	}
	err := fox.ExecuteAsync(ctx, `const done = arguments[arguments.length - 1];
const pc = dialtone.phone.call.pc;
const want = pc.localDescription.sdp.match(/a=ice-ufrag:(\S+)/)[1];
const until = performance.now() + 10000;
const check = async () => {
  let t = {};
  (await pc.getStats()).forEach((r) => { if (r.type === 'transport') t = r; });
  if ((t.iceState === 'connected' && t.iceLocalUsernameFragment === want) || performance.now() > until) {
    done({iceState: t.iceState, iceLocalUsernameFragment: t.iceLocalUsernameFragment, want});
    return;
  }
  setTimeout(check, 50);
};
check();`, nil, &transport)
	require.NoError(t, err)
	assert.Equal(t, "connected", transport.State, "Firefox's ICE transport after the restart (local ufrag %s, the restart's %s)", transport.Ufrag, transport.Want)
	assert.Equal(t, transport.Want, transport.Ufrag, "Firefox's ICE transport runs on the restart's credentials")
	t.Logf("ICE restart: answer applied %v, Firefox's transport connected on the new credentials %v after restartIce()", applied, since(start))
}
