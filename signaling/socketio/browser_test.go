package socketio_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/call"
	chromiumflags "github.com/dialtone-dev/dialtone/internal/chromium"
	"github.com/dialtone-dev/dialtone/internal/netns"
	"github.com/dialtone-dev/dialtone/internal/testenv"
	"github.com/dialtone-dev/dialtone/signaling/socketio"
)

// The browser test runs Chromium, the Node server and a Go phone in a
// network namespace that has nothing but loopback (internal/netns), as the
// web phone's browser test does (examples/server).
const (
	chromiumEnv = "DIALTONE_CHROMIUM" // path of the Chromium binary
	goTone      = 1000.0              // Hz, the Go phone's microphone
	pageTone    = 700.0               // Hz, the page's fake microphone
)

func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv(chromiumEnv)
	if p == "" {
		p = chromiumflags.DefaultPath
	}
	return testenv.Program(t, p)
}

// TestRoomBrowser: a page of a room-relay app (plain JS, the Socket.IO
// client, RTCPeerConnection, a fake microphone) in headless Chromium calls
// a Go phone that joined its room, and the Go phone calls it; audio is
// checked by content both ways, and each side hangs up once.
func TestRoomBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	if testing.Short() {
		t.Skip("starts a browser")
	}
	if os.Getenv(netns.Env) == "" {
		nodeModules(t) // here: the namespace has no registry
	}
	netns.Run(t, func(t *testing.T) { roomBrowserTest(t, chromium) }, npmDoneEnv+"=1")
}

func roomBrowserTest(t *testing.T, chromium string) {
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	base := startNode(t)

	page := newBrowser(ctx, t, chromium)
	require.NoError(t, chromedp.Do(page, chromedp.Navigate(base+"/?room=r1")))
	waitJS(t, page, `window.app && app.joined`, 10*time.Second)

	g := newTestPhone(t, joinRoom(t, base, socketio.RoomConfig{Room: "r1", User: "gophone"}), goTone)
	waitJS(t, page, `app.peerHere`, 5*time.Second)

	t.Run("BrowserCallsGo", func(t *testing.T) {
		_, err := chromedp.Run(page, chromedp.Evaluate[any](`app.call(), true`))
		require.NoError(t, err)
		c := incoming(t, g, 10*time.Second)
		assert.Equal(t, socketio.DefaultPeer, c.Peer())
		require.NoError(t, c.Accept(ctx))
		waitState(t, c, call.Connected, 15*time.Second)
		waitJS(t, page, `app.state === 'connected'`, 10*time.Second)

		g.hears(t, pageTone)
		pageHears(t, page, goTone)

		c.Hangup()
		assert.Equal(t, call.ReasonHangup, waitEnd(t, c, 10*time.Second))
		waitJS(t, page, `app.state === 'idle' && app.lastEnd === 'remote-hangup'`, 5*time.Second)
	})

	t.Run("GoCallsBrowser", func(t *testing.T) {
		c, err := g.Dial(ctx, socketio.DefaultPeer)
		require.NoError(t, err)
		waitState(t, c, call.Connected, 15*time.Second)
		waitJS(t, page, `app.state === 'connected'`, 10*time.Second)

		g.hears(t, pageTone)
		pageHears(t, page, goTone)

		_, err = chromedp.Run(page, chromedp.Evaluate[any](`app.hangup(), true`))
		require.NoError(t, err)
		assert.Equal(t, call.ReasonRemoteHangup, waitEnd(t, c, 10*time.Second))
	})

	if t.Failed() {
		events, _ := chromedp.Run(page, chromedp.Evaluate[[]string](`app.log`))
		t.Logf("page log:\n%s", strings.Join(events, "\n"))
	}
}

// pageHears checks that the page's analyser on the remote stream finds
// freq loud in what it receives.
func pageHears(t *testing.T, page context.Context, freq float64) {
	t.Helper()
	type level struct {
		DB     float64 `json:"db"`
		PeakHz float64 `json:"peakHz"`
	}
	lv, err := chromedp.Run(page, chromedp.Poll[level](
		fmt.Sprintf(`(() => { const l = app.level(); return l && l.db > -40 && Math.abs(l.peakHz - %g) < 30 ? l : null })()`, freq),
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second)))
	require.NoError(t, err, "the page hears %.0f Hz", freq)
	t.Logf("page analyser on the remote stream: %.1f dBFS, peak at %.0f Hz", lv.DB, lv.PeakHz)
}

// newBrowser starts Chromium whose fake microphone plays pageTone, and
// returns a chromedp context for its first tab; t.Cleanup ends it.
func newBrowser(ctx context.Context, t *testing.T, chromium string) context.Context {
	t.Helper()
	wav := filepath.Join(t.TempDir(), "tone.wav")
	require.NoError(t, os.WriteFile(wav, toneWAV(int(pageTone), 48000, 2*time.Second), 0o644))
	opts := append(chromiumflags.Options(chromium, t.TempDir(), t.TempDir()),
		chromedp.Flag("use-file-for-fake-audio-capture", wav))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	page, cancelPage := chromedp.NewContext(allocCtx)
	require.NoError(t, chromedp.Do(page)) // starts the browser
	t.Cleanup(func() {
		cancelPage()
		cancelAlloc()
	})
	return page
}

// toneWAV returns a mono 16-bit WAV file of a sine at freq, a whole number
// of periods long so that Chromium's looping of it stays seamless.
func toneWAV(freq, rate int, d time.Duration) []byte {
	g := freq
	for r := rate; r != 0; g, r = r, g%r {
	}
	n := int(d.Seconds() * float64(rate))
	n -= n % (rate / g)
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString("RIFF")
	_ = binary.Write(&b, le, uint32(36+2*n))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(rate), uint32(2 * rate), uint16(2), uint16(16)} {
		_ = binary.Write(&b, le, v) // fmt: PCM, mono, rate, byte rate, block align, bits
	}
	b.WriteString("data")
	_ = binary.Write(&b, le, uint32(2*n))
	for i := range n {
		_ = binary.Write(&b, le, int16(0.25*math.MaxInt16*math.Sin(2*math.Pi*float64(freq*i)/float64(rate))))
	}
	return b.Bytes()
}

func waitJS(t *testing.T, page context.Context, expr string, timeout time.Duration) {
	t.Helper()
	_, err := chromedp.Run(page, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		events, _ := chromedp.Run(page, chromedp.Evaluate[[]string](`window.app ? app.log : []`))
		t.Fatalf("waiting for %s: %v; page log:\n%s", expr, err, strings.Join(events, "\n"))
	}
}
