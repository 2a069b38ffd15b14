package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/audio"
	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/media/mediatest"
)

// The Go members' microphones: a distinct tone each, so that the page's
// analysers tell the members apart.
const (
	roomToneA = 1000.0 // Hz, go-a
	roomToneB = 1500.0 // Hz, go-b
	roomName  = "standup"
)

// TestBrowserRoom puts the web phone, in a real Chromium, in a room with
// two Go phones (call.Phone.Join) through the example server, and checks
// by content that each Go member hears the browser and the browser hears
// each Go member; that mute works both ways; that a member who leaves
// drops from the page's member list and its audio stops; and that the
// page in a room answers a 1:1 call busy.
func TestBrowserRoom(t *testing.T) {
	inNetns(t, browserRoomTest)
}

// browserRoomTest is the test proper; it runs inside the namespace.
func browserRoomTest(t *testing.T, chromium string) {
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	t0 := time.Now()
	base := startSite(ctx, t)
	a := newGoPhone(ctx, t, base, "go-a", roomToneA)
	b := newGoPhone(ctx, t, base, "go-b", roomToneB)
	page := newBrowser(ctx, t, chromium)
	logIn(t, page, base, "browser")
	t.Cleanup(func() {
		if t.Failed() {
			events, _ := chromedp.Run(page, chromedp.Evaluate[[]string](`dialtone.phone.events`))
			t.Logf("page log:\n%s", strings.Join(events, "\n"))
		}
	})

	// go-a joins, then the browser, then go-b: the later joiner offers,
	// so the browser makes the offer to go-a and answers go-b's.
	ra, err := a.phone.Join(ctx, roomName, call.RoomConfig{})
	require.NoError(t, err)
	wa := watch(ra.Events())
	start := time.Now()
	require.NoError(t, chromedp.Do(page,
		chromedp.SetValue("#room-name", roomName),
		chromedp.Click("#room-join"),
	))
	waitJS(t, page, `dialtone.room() && dialtone.room().state === 'joined'`, 10*time.Second)
	rb, err := b.phone.Join(ctx, roomName, call.RoomConfig{})
	require.NoError(t, err)
	wb := watch(rb.Events())
	for _, w := range []*watcher[call.RoomEvent]{wa, wb} {
		_, err := waitMember(ctx, w, call.MemberConnected, "browser")
		require.NoError(t, err, "a Go member connected with the browser")
	}
	waitJS(t, page, `dialtone.room().members.map((m) => m.user + ':' + m.state).join() === 'go-a:connected,go-b:connected'`, 15*time.Second)
	assert.Equal(t, []string{"go-a", "go-b"}, pageMembers(t, page), "the page's member list")
	t.Logf("join click → every link connected: %v", since(start))

	// Browser → Go: each Go member hears Chrome's fake microphone. Each
	// mixes the other Go member at volume 0, so it plays the browser alone.
	ra.SetVolume("go-b", 0)
	rb.SetVolume("go-a", 0)
	for _, g := range []*goPhone{a, b} {
		heard := assertHearsBeeps(ctx, t, g)
		own := roomToneA
		if g == b {
			own = roomToneB
		}
		assert.Less(t, mediatest.ToneShare(heard, own), 0.05, "%s's own tone does not come back", g.phone.User())
	}

	// Go → browser: the page's analyser on each member's stream finds
	// that member's tone, and shows it talking.
	for user, hz := range map[string]float64{"go-a": roomToneA, "go-b": roomToneB} {
		lv, err := chromedp.Run(page, chromedp.Poll[level](
			fmt.Sprintf(`(() => { const l = dialtone.levels().members[%q]; return l && l.db > -40 && Math.abs(l.peakHz - %v) < 30 ? l : null })()`, user, hz),
			chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second)))
		require.NoError(t, err, "the page hears %s's %v Hz", user, hz)
		t.Logf("page analyser on %s: %.1f dBFS, peak at %.0f Hz", user, lv.DB, lv.PeakHz)
		waitJS(t, page, fmt.Sprintf(`dialtone.room().members.find((m) => m.user === %q).talking`, user), 5*time.Second)
	}
	// The page restarts ICE with each member: with go-a it made the first
	// offer, with go-b it answered go-b's (the DTLS roles differ). Each
	// restart offer is answered and applied, and the member's tone comes
	// back.
	for user, hz := range map[string]float64{"go-a": roomToneA, "go-b": roomToneB} {
		answers := fmt.Sprintf(`dialtone.phone.events.filter((e) => e.endsWith(' %s: received answer')).length`, user)
		before, err := chromedp.Run(page, chromedp.Evaluate[int](answers))
		require.NoError(t, err)
		_, err = chromedp.Run(page, chromedp.Evaluate[bool](fmt.Sprintf(`(() => { dialtone.phone.room.members.get(%q).link.pc.restartIce(); return true })()`, user)))
		require.NoError(t, err)
		waitJS(t, page, fmt.Sprintf(`%s > %d && dialtone.phone.room.members.get(%q).link.pc.signalingState === 'stable'`, answers, before, user), 10*time.Second)
		waitJS(t, page, fmt.Sprintf(`(() => { const l = dialtone.levels().members[%q]; return l && l.db > -40 && Math.abs(l.peakHz - %v) < 30 })()`, user, hz), 10*time.Second)
	}

	// The page gives up on its link with go-a, as when ICE restarts do not
	// bring it back. It offers to go-a, so a second later it starts the
	// pair over with a new link (attempt 1); go-a, whose peer connection
	// still worked, replaces it (reconnecting, reconnected), and each
	// hears the other again.
	failAt := time.Now()
	failed, err := chromedp.Run(page, chromedp.Evaluate[bool](`dialtone.failLink('go-a')`))
	require.NoError(t, err)
	require.True(t, failed, "the page had a link with go-a to give up")
	for _, k := range []call.RoomEventKind{call.MemberReconnecting, call.MemberReconnected} {
		_, err := wa.wait(ctx, 15*time.Second, func(e call.RoomEvent) bool {
			return e.Kind == k && e.Member.User == "browser" && e.Time.After(failAt)
		})
		require.NoError(t, err, "go-a: %s browser, after the page started the pair over", k)
	}
	waitJS(t, page, `dialtone.phone.events.some((e) => e.endsWith('go-a: new link (attempt 1)'))`, time.Second)
	waitJS(t, page, `dialtone.room().members.find((m) => m.user === 'go-a').state === 'connected'`, 10*time.Second)
	waitJS(t, page, fmt.Sprintf(`(() => { const l = dialtone.levels().members['go-a']; return l && l.db > -40 && Math.abs(l.peakHz - %v) < 30 })()`, roomToneA), 10*time.Second)
	assertHearsBeeps(ctx, t, a)
	t.Logf("the page's new link with go-a carried audio both ways %v after it gave up the old one", since(failAt))

	// The room's mix holds both tones.
	mixB := roomMixAt(t, page, roomToneB)
	assert.Greater(t, roomMixAt(t, page, roomToneA), -60.0, "go-a's tone in the room's mix")
	assert.Greater(t, mixB, -60.0, "go-b's tone in the room's mix")

	// The page's mute applies to the room: the members are told and hear
	// silence.
	require.NoError(t, chromedp.Do(page, chromedp.Click("#room-mute")))
	for _, w := range []*watcher[call.RoomEvent]{wa, wb} {
		_, err := waitMember(ctx, w, call.MemberMuted, "browser")
		require.NoError(t, err, "a Go member sees the browser muted")
	}
	nextSamples(ctx, t, a, audio.SampleRate/2) // what was on its way
	muted := findBeeps(nextSamples(ctx, t, a, audio.SampleRate))
	t.Logf("go-a hears the muted browser at %.1f dBov (loudest 10 ms)", muted.PeakDBov)
	assert.Less(t, muted.PeakDBov, -50.0, "go-a hears silence from the muted browser")
	require.NoError(t, chromedp.Do(page, chromedp.Click("#room-mute")))
	_, err = waitMember(ctx, wa, call.MemberUnmuted, "browser")
	require.NoError(t, err, "go-a sees the browser unmuted")
	// A Go member's mute shows in the page's member list.
	rb.Mute(true)
	waitJS(t, page, `document.querySelector('#room-members li[data-user="go-b"]').textContent.includes('muted')`, 5*time.Second)
	rb.Mute(false)
	waitJS(t, page, `!document.querySelector('#room-members li[data-user="go-b"]').textContent.includes('muted')`, 5*time.Second)

	// go-b leaves: it drops from the page's member list, its <audio>
	// element goes and its tone leaves the room's mix; go-a's stays.
	require.NoError(t, rb.Leave(ctx))
	wb.stop()
	e, err := waitMember(ctx, wa, call.MemberLeft, "go-b")
	require.NoError(t, err)
	assert.Equal(t, call.ReasonLeft, e.Reason)
	waitJS(t, page, `dialtone.room().members.map((m) => m.user).join() === 'go-a'`, 5*time.Second)
	assert.Equal(t, []string{"go-a"}, pageMembers(t, page), "the page's member list")
	waitJS(t, page, `document.querySelectorAll('#room-audio audio').length === 1 && !document.querySelector('#room-audio audio[data-user="go-b"]')`, 5*time.Second)
	// A tone at the mix's bin stands 80 dB or more above the floor there
	// (Opus's noise around go-a's 1 kHz): 50 dB down is gone.
	waitJS(t, page, fmt.Sprintf(`dialtone.levelAt('room', %v) < %v`, roomToneB, mixB-50), 5*time.Second)
	t.Logf("room mix at %v Hz: %.1f dB with go-b, %.1f dB after it left", roomToneB, mixB, roomMixAt(t, page, roomToneB))
	assert.Greater(t, roomMixAt(t, page, roomToneA), -60.0, "go-a's tone is still in the room's mix")

	// In a room, the page answers a 1:1 call busy.
	c, err := b.phone.Dial(ctx, "browser")
	require.NoError(t, err)
	reason, err := c.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, call.ReasonBusy, reason, "the page in a room answers busy")

	// The page leaves: go-a is told, the page shows why.
	require.NoError(t, chromedp.Do(page, chromedp.Click("#room-leave")))
	e, err = waitMember(ctx, wa, call.MemberLeft, "browser")
	require.NoError(t, err)
	assert.Equal(t, call.ReasonLeft, e.Reason)
	waitJS(t, page, `dialtone.room() === null && dialtone.lastRoom().reason === 'left' && document.querySelectorAll('#room-audio audio').length === 0`, 5*time.Second)
	require.NoError(t, ra.Leave(ctx))
	wa.stop()
	refused, err := chromedp.Run(page, chromedp.Evaluate[[]string](`dialtone.phone.events.filter((e) => (e.includes('not applied') || e.includes('failed')) && !e.includes('given up by hand'))`))
	require.NoError(t, err)
	assert.Empty(t, refused, "the page applied every signal")
	if testing.Verbose() {
		events, _ := chromedp.Run(page, chromedp.Evaluate[[]string](`dialtone.phone.events`))
		t.Logf("page log:\n%s", strings.Join(events, "\n"))
	}
	t.Logf("whole browser room test: %v", since(t0))
}

// level is a page analyser's reading (dialtone.levels()).
type level struct {
	DB     float64 `json:"db"`
	PeakHz float64 `json:"peakHz"`
}

// waitMember waits for a room event of kind about user.
func waitMember(ctx context.Context, w *watcher[call.RoomEvent], kind call.RoomEventKind, user string) (call.RoomEvent, error) {
	return w.wait(ctx, 15*time.Second, func(e call.RoomEvent) bool {
		return e.Kind == kind && e.Member.User == user
	})
}

// pageMembers is the member list the page shows, in order.
func pageMembers(t *testing.T, page context.Context) []string {
	t.Helper()
	users, err := chromedp.Run(page, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#room-members li')].map((li) => li.dataset.user)`))
	require.NoError(t, err)
	return users
}

// roomMixAt is the level of the page's room mix at hz, in dB.
func roomMixAt(t *testing.T, page context.Context, hz float64) float64 {
	t.Helper()
	v, err := chromedp.Run(page, chromedp.Evaluate[float64](fmt.Sprintf(`dialtone.levelAt('room', %v)`, hz)))
	require.NoError(t, err)
	return v
}
