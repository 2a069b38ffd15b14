package main

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/audio"
	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/media/mediatest"
	"github.com/dialtone-dev/dialtone/media/pcm"
	"github.com/dialtone-dev/dialtone/signaling/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const sec = 48000

// output collects the bot's output and lets the test wait for a line.
type output struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.changed != nil {
		close(o.changed)
	}
	o.changed = make(chan struct{})
	return o.buf.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

func (o *output) waitFor(t *testing.T, s string, within time.Duration) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		o.mu.Lock()
		if o.changed == nil {
			o.changed = make(chan struct{})
		}
		found, ch := strings.Contains(o.buf.String(), s), o.changed
		o.mu.Unlock()
		if found {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("no %q within %v in:\n%s", s, within, o.String())
		}
	}
}

// TestEcho runs the bot against a WebSocket signaling server; a lab phone
// (in-memory signaling, loopback WebRTC) calls it with a probe tone and
// must hear that tone come back after the bot's delay plus the
// network, codec and jitter-buffer delay of both directions. A text
// message comes back too.
func TestEcho(t *testing.T) {
	const delay = 700 * time.Millisecond
	lab := calltest.NewLab(server.Config{})
	ts := httptest.NewServer(lab.Server)
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/"

	ctx, stop := context.WithCancel(context.Background())
	out := &output{}
	botErr := make(chan error, 1)
	go func() { botErr <- run(ctx, []string{"-server", url, "-delay", delay.String(), "-loopback"}, out) }()
	defer func() {
		stop()
		assert.NoError(t, <-botErr)
		lab.Close()
		ts.Close()
		t.Logf("bot output:\n%s", out)
	}()
	out.waitFor(t, "answering calls as echo", 15*time.Second)

	// Alice's microphone plays a probe tone over and over (a 5 s loop:
	// longer than any lag searched); every period her microphone captures
	// and her speaker plays is stamped with the time it passed.
	var mic, spk mediatest.Timeline
	sound := audio.NewVirtualBackend(audio.VirtualBackendConfig{Devices: []audio.VirtualDevice{
		{ID: "mic", Direction: audio.Capture, Default: true, Source: pcm.Loop(mediatest.ProbeTone(5*sec, 9))},
		{ID: "speaker", Direction: audio.Playback, Default: true},
	}})
	defer sound.Close()
	tapped := audio.Tap(sound, audio.Callbacks{Capture: mic.Add, Playback: spk.Add})
	alice, err := lab.NewPhone(ctx, "alice", calltest.PhoneOptions{Config: call.Config{Audio: call.AudioConfig{Backend: tapped}}})
	require.NoError(t, err)
	c, err := alice.Dial(ctx, "echo")
	require.NoError(t, err)
	texts := make(chan string, 1)
	connected := make(chan struct{})
	go func() {
		var once sync.Once
		for ev := range c.Events() {
			switch {
			case ev.Kind == call.EventState && ev.State == call.Connected:
				once.Do(func() { close(connected) })
			case ev.Kind == call.EventText:
				texts <- ev.Text
			}
		}
	}()
	select {
	case <-connected:
	case <-time.After(15 * time.Second):
		t.Fatalf("call to the bot did not connect: %s", c.Reason())
	}

	// The data channel opens a moment after Connected.
	require.Eventually(t, func() bool {
		err := c.SendText(ctx, "ping")
		return err == nil || !errors.Is(err, call.ErrState)
	}, 5*time.Second, 50*time.Millisecond)
	select {
	case got := <-texts:
		assert.Equal(t, "ping", got)
	case <-time.After(10 * time.Second):
		t.Error("no text echoed")
	}

	// Let the call settle for a second, then measure 4 s of signal: find
	// each window of it in the speaker output at least the bot's delay
	// later, once all of it could have come back. Everything here runs on
	// the real clock, so a CPU spike on a shared machine (another test
	// package linking) can disturb one stretch: measure up to three
	// stretches of the same call and require one clean one.
	from := time.Now().Add(time.Second)
	var m mediatest.Measurement
	for attempt := 1; attempt <= 3; attempt++ {
		until := from.Add(4 * time.Second)
		require.Eventually(t, func() bool { return spk.Since(until) > int((delay+1500*time.Millisecond).Seconds()*sec) },
			20*time.Second, 20*time.Millisecond)
		m = mediatest.MouthToEar(&mic, &spk, mediatest.MouthToEarConfig{
			From: from, Until: until,
			MinDelay: delay, MaxDelay: delay + time.Second, Slack: 50 * time.Millisecond,
		})
		t.Logf("stretch %d: echo heard %v after it was said (bot delay %v); %d/%d windows good, correlations %.3f",
			attempt, m.MouthToEar, delay, m.Good, m.All, m.Corrs)
		if clean(m) && m.MouthToEar < delay+300*time.Millisecond {
			break
		}
		from = until.Add(time.Second)
	}
	assert.True(t, clean(m), "most windows of a 4 s stretch come back recognisably: %d of %d did", m.Good, m.All)
	assert.GreaterOrEqual(t, m.MouthToEar, delay)
	assert.Less(t, m.MouthToEar, delay+300*time.Millisecond, "more than the bot's delay plus two loopback trips")

	c.Hangup()
	r, err := c.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, call.ReasonHangup, r)
	out.waitFor(t, "(remote-hangup)", 10*time.Second)
}

// clean reports a stretch measured in six windows or more (of the eight
// in 4 s), most of which came back recognisably.
func clean(m mediatest.Measurement) bool { return m.All >= 6 && m.Good*2 > m.All }

func TestFlags(t *testing.T) {
	var out bytes.Buffer
	for _, bad := range [][]string{{"-delay", "0s"}, {"-delay", "2m"}, {"x"}, {"-nope"}} {
		assert.Error(t, run(context.Background(), bad, &out), "%q", bad)
	}
	o, err := parseFlags([]string{"-delay", "250ms"}, &out)
	require.NoError(t, err)
	assert.Equal(t, 250*time.Millisecond, o.delay)
	assert.Equal(t, "echo", o.user)
}
