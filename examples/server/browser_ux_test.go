package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/examples/server/internal/site"
)

// screenshotsEnv names a folder that keeps TestBrowserUX's screenshots;
// by default they go to the test's temporary folder.
const screenshotsEnv = "DIALTONE_SCREENSHOTS"

// TestBrowserUX uses the web phone in Chromium as a person would, against
// a Go phone, and checks what is on screen: the incoming banner's computed
// visibility when idle, ringing and in a call; the state line's sentence
// for each way a call ends; the meters moving, "Muted" on the microphone;
// the quality figures and graph; text in the chat area and not in the
// log; focus on Answer and Hang up, so that a call is answered and hung
// up from the keyboard; 44 px touch targets and no sideways scrolling at
// 390 px; the token field only where the server needs one; and the Call
// button disabled, with "Reconnecting…", while the server is down. It
// writes a screenshot of each main screen at 1200×900 and 390×844.
func TestBrowserUX(t *testing.T) {
	inNetns(t, browserUXTest)
}

func browserUXTest(t *testing.T, chromium string) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	t0 := time.Now()
	shots := os.Getenv(screenshotsEnv)
	if shots == "" {
		shots = t.TempDir()
	}
	require.NoError(t, os.MkdirAll(shots, 0o755))
	t.Logf("screenshots in %s", shots)

	secret := []byte("browser-ux-test-secret-0123456789")
	srv := startStoppableSite(t, "127.0.0.1:0", site.Config{Dev: true, Secret: secret})
	base := "http://" + srv.addr
	g := newGoPhone(ctx, t, base, "gophone", goTone)
	page := newBrowser(ctx, t, chromium)
	t.Cleanup(func() {
		if t.Failed() {
			events, _ := chromedp.Run(page, chromedp.Evaluate[[]string](`dialtone.phone.events`))
			t.Logf("page log:\n%s", strings.Join(events, "\n"))
		}
	})
	require.NoError(t, chromedp.Do(page, chromedp.EmulateViewport(390, 844)))

	// A server that hands out no tokens asks for one; a development
	// server does not.
	prod := startStoppableSite(t, "127.0.0.1:0", site.Config{Secret: secret})
	require.NoError(t, chromedp.Do(page, chromedp.Navigate("http://"+prod.addr+"/")))
	waitJS(t, page, visibleJS("#token-row"), 5*time.Second)
	require.NoError(t, chromedp.Do(page, chromedp.Navigate(base+"/")))
	waitJS(t, page, `document.readyState === 'complete'`, 5*time.Second)
	require.NoError(t, chromedp.Do(page, chromedp.WaitVisible("#login-user")))
	waitJS(t, page, `dialtone.phone.needsToken === false`, 5*time.Second)
	assert.False(t, isVisible(t, page, "#token-row"), "token field on a development server")
	screenshot(t, page, shots, "login")

	require.NoError(t, chromedp.Do(page,
		chromedp.SendKeys("#login-user", "browser"),
		chromedp.Click("#login-button"),
	))
	waitJS(t, page, `dialtone.phone.wsUp === true`, 10*time.Second)
	waitJS(t, page, `document.getElementById('conn').textContent === 'Online'`, 5*time.Second)
	assert.False(t, isVisible(t, page, "#incoming"), "incoming banner when idle")
	assert.False(t, isVisible(t, page, "#call"), "call panel when idle")
	assert.False(t, isVisible(t, page, "#log"), "the log is collapsed")
	assertUsableAtNarrowWidth(t, page)
	assertLabelled(t, page)
	callColour := style(t, page, "#dial-button", "backgroundColor")
	screenshot(t, page, shots, "idle")

	t.Run("SelfCall", func(t *testing.T) {
		dialFromPage(t, page, "browser")
		waitStateLine(t, page, "You can't call yourself")
		assert.Equal(t, "idle", pageState(t, page))
	})

	t.Run("Offline", func(t *testing.T) {
		dialFromPage(t, page, "carol")
		waitStateLine(t, page, "carol is not online")
	})

	t.Run("Declined", func(t *testing.T) {
		dialFromPage(t, page, "gophone")
		c := incoming(t, g)
		waitStateLine(t, page, "Ringing gophone…")
		assert.Equal(t, "Cancel", text(t, page, "#hangup"), "an unanswered call is cancelled, not hung up")
		assert.False(t, isVisible(t, page, "#incoming"), "incoming banner while our call rings out")
		assert.False(t, isVisible(t, page, "#quality"), "quality panel before a connection")
		screenshot(t, page, shots, "ringing-out")
		require.NoError(t, c.Decline(ctx))
		waitStateLine(t, page, "gophone declined the call")
		assert.False(t, isVisible(t, page, "#call"), "call panel after the call")
	})

	t.Run("Cancelled", func(t *testing.T) {
		dialFromPage(t, page, "gophone")
		c := incoming(t, g)
		waitStateLine(t, page, "Ringing gophone…")
		require.NoError(t, chromedp.Do(page, chromedp.Click("#hangup")))
		waitStateLine(t, page, "Call cancelled")
		reason, err := c.Wait(ctx)
		require.NoError(t, err)
		assert.Equal(t, call.ReasonCancelled, reason)
	})

	t.Run("IncomingDeclined", func(t *testing.T) {
		c, err := g.phone.Dial(ctx, "browser")
		require.NoError(t, err)
		waitJS(t, page, visibleJS("#incoming"), 10*time.Second)
		waitStateLine(t, page, "gophone is calling…")
		waitJS(t, page, `document.activeElement && document.activeElement.id === 'answer'`, 5*time.Second)
		assert.Equal(t, "gophone", text(t, page, "#incoming-from"))
		screenshot(t, page, shots, "incoming")
		require.NoError(t, chromedp.Do(page, chromedp.Click("#decline")))
		waitStateLine(t, page, "You declined gophone's call")
		assert.False(t, isVisible(t, page, "#incoming"), "incoming banner after declining")
		reason, err := c.Wait(ctx)
		require.NoError(t, err)
		assert.Equal(t, call.ReasonDeclined, reason)
	})

	t.Run("Missed", func(t *testing.T) {
		c, err := g.phone.Dial(ctx, "browser")
		require.NoError(t, err)
		waitJS(t, page, visibleJS("#incoming"), 10*time.Second)
		c.Hangup()
		waitStateLine(t, page, "Missed call from gophone")
		assert.False(t, isVisible(t, page, "#incoming"), "incoming banner after the caller gave up")
	})

	// Answered from the keyboard: focus is on Answer when the call comes
	// in and on Hang up once it is connected.
	t.Run("AnsweredRemoteHangup", func(t *testing.T) {
		c, err := g.phone.Dial(ctx, "browser")
		require.NoError(t, err)
		w := watch(c.Events())
		defer w.stop()
		waitJS(t, page, `document.activeElement && document.activeElement.id === 'answer'`, 10*time.Second)
		require.NoError(t, chromedp.Do(page, chromedp.KeyEvent("\r")))
		_, err = waitState(ctx, w, call.Connected, 15*time.Second)
		require.NoError(t, err, "Go side connected")
		waitStateLine(t, page, "In a call with gophone")
		waitJS(t, page, `document.activeElement && document.activeElement.id === 'hangup'`, 5*time.Second)
		assert.False(t, isVisible(t, page, "#incoming"), "incoming banner during a call")
		assert.True(t, isVisible(t, page, "#call"), "call panel during a call")
		assert.Equal(t, "connected", text(t, page, "#call-state"))

		// The meters move, with a figure in dB within the floor.
		waitJS(t, page, meterMovesJS("mic"), 10*time.Second)
		waitJS(t, page, meterMovesJS("remote"), 10*time.Second)
		waitJS(t, page, `/^-?\d+ dB$/.test(document.getElementById('remote-db').textContent) && document.getElementById('remote-meter').value > -40`, 10*time.Second)
		// Muted shows on the microphone meter, and goes again.
		require.NoError(t, chromedp.Do(page, chromedp.Click("#mute")))
		waitJS(t, page, `document.getElementById('mic-db').textContent === 'Muted' && document.getElementById('mic-meter').value === -60`, 5*time.Second)
		assert.Equal(t, "true", attr(t, page, "#mute", "aria-pressed"))
		require.NoError(t, chromedp.Do(page, chromedp.Click("#mute")))
		waitJS(t, page, `document.getElementById('mic-db').textContent !== 'Muted'`, 5*time.Second)

		// Text goes to the chat area, not to the log.
		require.NoError(t, c.SendText(ctx, "hello from Go"))
		waitJS(t, page, `document.getElementById('chat-log').textContent.includes('hello from Go')`, 10*time.Second)
		assert.True(t, isVisible(t, page, "#chat-log"), "chat area")
		assert.NotContains(t, text(t, page, "#log"), "hello from Go", "text in the log")

		// The quality panel: figures with units and a graph drawn.
		waitJS(t, page, `/^\d+ ms$/.test(document.getElementById('stat-rtt').textContent) && /^\d\.\d$/.test(document.getElementById('stat-mos').textContent) && /^\d+\.\d %$/.test(document.getElementById('stat-loss').textContent)`, 10*time.Second)
		waitJS(t, page, `dialtone.call().history.length >= 8`, 15*time.Second)
		assert.Greater(t, graphInk(t, page), 200, "pixels drawn on the quality graph")
		assertUsableAtNarrowWidth(t, page)
		assertLabelled(t, page)
		screenshot(t, page, shots, "in-call")

		c.Hangup()
		waitJS(t, page, `/^gophone hung up · 0:\d\d$/.test(document.getElementById('state-line').textContent)`, 10*time.Second)
		assert.False(t, isVisible(t, page, "#call"), "call panel after the call")
		assert.True(t, isVisible(t, page, "#chat-log"), "the chat stays readable after the call")
		screenshot(t, page, shots, "ended")
	})

	// Dialled and hung up from the keyboard.
	t.Run("AnsweredLocalHangup", func(t *testing.T) {
		_, err := chromedp.Run(page, chromedp.Evaluate[bool](`(() => { document.getElementById('dial-user').value = ''; return true })()`))
		require.NoError(t, err)
		require.NoError(t, chromedp.Do(page,
			chromedp.Focus("#dial-user"),
			chromedp.SendKeys("#dial-user", "gophone\r"),
		))
		c := incoming(t, g)
		w := watch(c.Events())
		defer w.stop()
		require.NoError(t, c.Accept(ctx))
		_, err = waitState(ctx, w, call.Connected, 15*time.Second)
		require.NoError(t, err, "Go side connected")
		waitStateLine(t, page, "In a call with gophone")
		waitJS(t, page, `document.activeElement && document.activeElement.id === 'hangup' && document.getElementById('hangup').textContent === 'Hang up'`, 5*time.Second)
		require.NoError(t, chromedp.Do(page, chromedp.KeyEvent("\r")))
		waitJS(t, page, `/^Call ended · 0:\d\d$/.test(document.getElementById('state-line').textContent)`, 10*time.Second)
		reason, err := c.Wait(ctx)
		require.NoError(t, err)
		assert.Equal(t, call.ReasonRemoteHangup, reason)
		waitJS(t, page, `document.activeElement && document.activeElement.id === 'dial-user'`, 5*time.Second)
	})

	// A Go phone in a room answers a call busy; the page then joins that
	// room.
	t.Run("BusyAndRoom", func(t *testing.T) {
		room, err := g.phone.Join(ctx, "lobby", call.RoomConfig{})
		require.NoError(t, err)
		wr := watch(room.Events())
		defer wr.stop()
		dialFromPage(t, page, "gophone")
		waitStateLine(t, page, "gophone is busy on another call")

		require.NoError(t, chromedp.Do(page,
			chromedp.SetValue("#room-name", "lobby"),
			chromedp.Click("#room-join"),
		))
		_, err = waitMember(ctx, wr, call.MemberConnected, "browser")
		require.NoError(t, err, "the Go member connected with the browser")
		waitStateLine(t, page, "In room lobby with 1 other")
		waitJS(t, page, `document.querySelector('#room-members li[data-user="gophone"]').textContent === 'gophone: connected'`, 10*time.Second)
		assert.True(t, isVisible(t, page, "#chat-log"), "chat area in a room")
		assert.False(t, isVisible(t, page, "#incoming"), "incoming banner in a room")
		waitJS(t, page, meterMovesJS("room"), 10*time.Second)
		assertUsableAtNarrowWidth(t, page)
		assert.Equal(t, "room-leave", pageFocus(t, page), "focus on Leave in a room")
		screenshot(t, page, shots, "room")
		require.NoError(t, chromedp.Do(page, chromedp.Click("#room-leave")))
		waitStateLine(t, page, "You left room lobby")
		require.NoError(t, room.Leave(ctx))
	})

	// The server goes away: the page says so and will not place a call;
	// it comes back, and so does the Call button.
	t.Run("ServerDown", func(t *testing.T) {
		srv.stop(t)
		waitJS(t, page, `document.getElementById('conn').textContent === 'Reconnecting…'`, 10*time.Second)
		assert.True(t, isVisible(t, page, "#conn"))
		waitJS(t, page, `document.getElementById('dial-button').disabled`, 5*time.Second)
		assert.NotEqual(t, callColour, style(t, page, "#dial-button", "backgroundColor"), "a disabled Call button looks it")
		assert.True(t, strings.HasPrefix(text(t, page, "#state-line"), "Reconnecting to the server…"), "state line: %q", text(t, page, "#state-line"))
		screenshot(t, page, shots, "reconnecting")
		srv.restart(t)
		waitJS(t, page, `document.getElementById('conn').textContent === 'Online' && !document.getElementById('dial-button').disabled`, 20*time.Second)
	})

	// The log opens from "Details" scrolled to its newest line.
	require.NoError(t, chromedp.Do(page, chromedp.Click("#details summary")))
	waitJS(t, page, visibleJS("#log"), 5*time.Second)
	waitJS(t, page, `(() => { const l = document.getElementById('log'); return l.scrollHeight > l.clientHeight && l.scrollTop + l.clientHeight >= l.scrollHeight - 1 })()`, 5*time.Second)
	screenshot(t, page, shots, "details")

	t.Logf("whole browser UX test: %v", since(t0))
}

// stoppableSite is the example server on a fixed address that the test
// can stop and start again.
type stoppableSite struct {
	owner *testing.T // the test whose end stops the site, restarted or not
	addr  string
	cfg   site.Config
	stop  func(t *testing.T)
}

func startStoppableSite(t *testing.T, addr string, cfg site.Config) *stoppableSite {
	t.Helper()
	s := &stoppableSite{owner: t, cfg: cfg}
	s.serve(t, addr)
	return s
}

func (s *stoppableSite) serve(t *testing.T, addr string) {
	t.Helper()
	st, err := site.New(context.Background(), s.cfg)
	require.NoError(t, err)
	var ln net.Listener
	// The address a stopped site freed may take a moment to be free.
	require.Eventually(t, func() bool {
		ln, err = net.Listen("tcp", addr)
		return err == nil
	}, 5*time.Second, 20*time.Millisecond, "listen on %s", addr)
	s.addr = ln.Addr().String()
	srvCtx, stopSrv := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- st.Serve(srvCtx, ln, nil) }()
	stopped := false
	s.stop = func(t *testing.T) {
		if stopped {
			return
		}
		stopped = true
		stopSrv()
		assert.NoError(t, <-served)
	}
	s.owner.Cleanup(func() { s.stop(s.owner) })
}

// restart serves a new site, with the same configuration, on the address.
func (s *stoppableSite) restart(t *testing.T) {
	t.Helper()
	s.serve(t, s.addr)
}

// dialFromPage types user into the call field and presses Call.
func dialFromPage(t *testing.T, page context.Context, user string) {
	t.Helper()
	require.NoError(t, chromedp.Do(page,
		chromedp.SetValue("#dial-user", user),
		chromedp.Click("#dial-button"),
	))
}

// incoming is the Go phone's next incoming call.
func incoming(t *testing.T, g *goPhone) *call.Call {
	t.Helper()
	select {
	case c := <-g.phone.Incoming():
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no incoming call on the Go phone")
		return nil
	}
}

// waitStateLine waits for the state line to read want.
func waitStateLine(t *testing.T, page context.Context, want string) {
	t.Helper()
	expr := `document.getElementById('state-line').textContent === ` + jsString(want)
	_, err := chromedp.Run(page, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second)))
	if err != nil {
		t.Fatalf("state line %q, want %q (%v)", text(t, page, "#state-line"), want, err)
	}
	assert.True(t, isVisible(t, page, "#state-line"), "state line visible")
}

func pageState(t *testing.T, page context.Context) string {
	t.Helper()
	s, err := chromedp.Run(page, chromedp.Evaluate[string](`dialtone.state()`))
	require.NoError(t, err)
	return s
}

// visibleJS is a JavaScript expression that is true when the element sel
// is on screen by its computed style: it and its ancestors displayed, not
// hidden, not inside a collapsed <details>.
func visibleJS(sel string) string {
	return fmt.Sprintf(`(() => { const e = document.querySelector(%s); return !!e && e.checkVisibility({ visibilityProperty: true, contentVisibilityAuto: true }) })()`, jsString(sel))
}

func isVisible(t *testing.T, page context.Context, sel string) bool {
	t.Helper()
	v, err := chromedp.Run(page, chromedp.Evaluate[bool](visibleJS(sel)))
	require.NoError(t, err)
	return v
}

func text(t *testing.T, page context.Context, sel string) string {
	t.Helper()
	v, err := chromedp.Run(page, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%s).textContent`, jsString(sel))))
	require.NoError(t, err)
	return v
}

// style is the computed style property prop of sel.
func style(t *testing.T, page context.Context, sel, prop string) string {
	t.Helper()
	v, err := chromedp.Run(page, chromedp.Evaluate[string](fmt.Sprintf(`getComputedStyle(document.querySelector(%s))[%s]`, jsString(sel), jsString(prop))))
	require.NoError(t, err)
	return v
}

// assertLabelled checks that every input and meter on screen has a label.
func assertLabelled(t *testing.T, page context.Context) {
	t.Helper()
	unlabelled, err := chromedp.Run(page, chromedp.Evaluate[[]string](`[...document.querySelectorAll('input, meter')]
		.filter((e) => e.checkVisibility() && !(e.labels && e.labels.length) && !e.getAttribute('aria-labelledby'))
		.map((e) => e.id)`))
	require.NoError(t, err)
	assert.Empty(t, unlabelled, "inputs and meters without a label")
}

// pageFocus is the id of the focused element.
func pageFocus(t *testing.T, page context.Context) string {
	t.Helper()
	id, err := chromedp.Run(page, chromedp.Evaluate[string](`document.activeElement ? document.activeElement.id : ''`))
	require.NoError(t, err)
	return id
}

func attr(t *testing.T, page context.Context, sel, name string) string {
	t.Helper()
	v, err := chromedp.Run(page, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%s).getAttribute(%s)`, jsString(sel), jsString(name))))
	require.NoError(t, err)
	return v
}

// meterMovesJS is true once the meter #which-meter has shown five
// different values since the first poll.
func meterMovesJS(which string) string {
	return fmt.Sprintf(`(() => {
		const k = '__seen_' + %[1]s;
		const s = (window[k] = window[k] || new Set());
		s.add(document.getElementById(%[1]s + '-meter').value);
		return s.size >= 5;
	})()`, jsString(which))
}

// graphInk counts the quality graph's drawn pixels.
func graphInk(t *testing.T, page context.Context) int {
	t.Helper()
	n, err := chromedp.Run(page, chromedp.Evaluate[int](`(() => {
		const cv = document.getElementById('quality-graph');
		const d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
		let n = 0;
		for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
		return n;
	})()`))
	require.NoError(t, err)
	return n
}

// assertUsableAtNarrowWidth checks, at the page's current (phone) width,
// that nothing scrolls sideways and every visible button, input and
// summary is a 44 px touch target.
func assertUsableAtNarrowWidth(t *testing.T, page context.Context) {
	t.Helper()
	var r struct {
		Width, ScrollWidth int
		Small              []string
	}
	raw, err := chromedp.Run(page, chromedp.Evaluate[[]byte](`(() => ({
		width: window.innerWidth,
		scrollWidth: document.documentElement.scrollWidth,
		small: [...document.querySelectorAll('button, input, summary')]
			.filter((e) => e.getClientRects().length > 0 && e.getBoundingClientRect().height < 44)
			.map((e) => (e.id || e.tagName) + ' ' + e.getBoundingClientRect().height.toFixed(1)),
	}))()`))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &r))
	require.Equal(t, 390, r.Width, "the test runs at a phone's width")
	assert.LessOrEqual(t, r.ScrollWidth, r.Width, "the page scrolls sideways at 390 px")
	assert.Empty(t, r.Small, "touch targets under 44 px at 390 px")
}

// screenshot writes the page at 1200×900 and at 390×844 (where the test
// runs) to dir as name-1200.png and name-390.png.
func screenshot(t *testing.T, page context.Context, dir, name string) {
	t.Helper()
	for _, size := range [][2]int64{{1200, 900}, {390, 844}} {
		require.NoError(t, chromedp.Do(page, chromedp.EmulateViewport(size[0], size[1])))
		// The graph redraws on resize; let a frame pass.
		_, err := chromedp.Run(page, chromedp.Evaluate[bool](`new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(() => ok(true))))`, chromedp.EvalAwaitPromise))
		require.NoError(t, err)
		png, err := chromedp.Run(page, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d.png", name, size[0])), png, 0o644))
	}
}

// jsString is s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}
