package main

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/audio"
	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/examples/server/internal/site"
	"github.com/dialtone-dev/dialtone/internal/coturntest"
	"github.com/dialtone-dev/dialtone/internal/netns"
	"github.com/dialtone-dev/dialtone/internal/testenv"
	"github.com/dialtone-dev/dialtone/signaling/server"
)

// forceRelay makes every RTCPeerConnection the page creates relay-only
// (iceTransportPolicy "relay"), as an app that offers its users a
// relay-only mode would: the web phone itself has no such setting.
const forceRelay = `(() => {
  const Orig = window.RTCPeerConnection;
  const relay = (c) => Object.assign({}, c || {}, { iceTransportPolicy: 'relay' });
  function RelayOnly(c, ...rest) { return new Orig(relay(c), ...rest); }
  RelayOnly.prototype = Orig.prototype;
  Object.setPrototypeOf(RelayOnly, Orig);
  const set = Orig.prototype.setConfiguration;
  Orig.prototype.setConfiguration = function (c) { return set.call(this, relay(c)); };
  window.RTCPeerConnection = RelayOnly;
})();`

// TestBrowserRelayOnly calls between the web phone in Chromium and a Go
// phone, both relay-only, through a real coturn whose shared secret the
// example server holds: the browser's fake microphone is heard on the Go
// side by content, the page hears the Go phone's tone, and coturn's log
// shows the allocations and channel binds of both users. Like TestBrowser
// it runs in a loopback-only network namespace, coturn included.
func TestBrowserRelayOnly(t *testing.T) {
	chromium := chromiumPath(t)
	testenv.Program(t, "turnserver")
	if testing.Short() {
		t.Skip("starts a browser and coturn")
	}
	netns.Run(t, func(t *testing.T) { browserRelayTest(t, chromium) })
}

func browserRelayTest(t *testing.T, chromium string) {
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	turn := coturntest.Start(t, coturntest.Options{Verbose: true})

	st, err := site.New(ctx, site.Config{Dev: true, Signaling: server.Config{TURNURLs: turn.URLs(), TURNSecret: turn.Secret}})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	base := "http://" + ln.Addr().String()
	srvCtx, stopSrv := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- st.Serve(srvCtx, ln, nil) }()
	t.Cleanup(func() {
		stopSrv()
		assert.NoError(t, <-served)
	})

	g := dialGoPhone(ctx, t, base, "gophone", goTone, true)
	pg := newBrowser(ctx, t, chromium)
	_, err = chromedp.Call(pg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: forceRelay})
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(pg,
		chromedp.Navigate(base+"/"),
		chromedp.SendKeys("#login-user", "browser"),
		chromedp.Click("#login-button"),
	))
	waitJS(t, pg, `dialtone.phone.wsUp === true`, 10*time.Second)

	// Go calls the page; the page answers.
	c, err := g.phone.Dial(ctx, "browser", call.WithDisplayName("Go phone"))
	require.NoError(t, err)
	w := watch(c.Events())
	require.NoError(t, chromedp.Do(pg, chromedp.WaitVisible("#answer"), chromedp.Click("#answer")))
	answered := time.Now()
	_, err = waitState(ctx, w, call.Connected, 15*time.Second)
	require.NoError(t, err, "Go side connected")
	t.Logf("answer click → Go connected through coturn: %v", stateAt(w, call.Connected).Sub(answered).Round(time.Millisecond))
	waitJS(t, pg, `dialtone.state() === 'connected'`, 10*time.Second)

	// The page's selected pair is relay to relay.
	var pair []string
	pair, err = chromedp.Run(pg, chromedp.Poll[[]string](`(async () => {
	  const r = await dialtone.phone.call.pc.getStats();
	  let p = null;
	  r.forEach((s) => { if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') p = s; });
	  if (!p) return null;
	  return [r.get(p.localCandidateId).candidateType, r.get(p.remoteCandidateId).candidateType];
	})()`, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second)))
	require.NoError(t, err, "page's selected candidate pair")
	assert.Equal(t, []string{"relay", "relay"}, pair, "the page's selected pair (local, remote)")

	// Browser → Go: Chrome's fake microphone beeps, by content.
	mark := g.speaker.Len()
	need := mark + 3*audio.SampleRate
	require.NoError(t, waitRecorder(ctx, g.speaker, need, 10*time.Second))
	beeps := findBeeps(g.speaker.Samples()[mark:need])
	t.Logf("Go heard from Chrome's fake mic through coturn: %+v", beeps)
	assert.GreaterOrEqual(t, beeps.Bursts, 5, "periodic beeps")
	assert.InDelta(t, fakeBeepFreq, beeps.Freq, 15, "beep frequency")

	// Go → browser: the 1 kHz tone, on the page's analyser.
	type level struct {
		DB     float64 `json:"db"`
		PeakHz float64 `json:"peakHz"`
	}
	lv, err := chromedp.Run(pg, chromedp.Poll[level](
		`(() => { const r = dialtone.levels().remote; return r && r.db > -40 && Math.abs(r.peakHz - 1000) < 30 ? r : null })()`,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second)))
	require.NoError(t, err, "page analyser hears 1 kHz")
	t.Logf("page hears the Go phone through coturn: %.1f dBFS at %.0f Hz", lv.DB, lv.PeakHz)

	for _, user := range []string{"gophone", "browser"} {
		t.Log(turn.WaitLog(t, time.Second, ":"+user+">", "ALLOCATE processed, success"))
		t.Log(turn.WaitLog(t, time.Second, ":"+user+">", "CHANNEL_BIND processed, success"))
	}

	c.Hangup()
	reason, err := c.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, call.ReasonHangup, reason)
	waitJS(t, pg, `dialtone.state() === 'idle'`, 5*time.Second)
	w.stop()
}
