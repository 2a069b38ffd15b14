// Command dialer is a command-line softphone: it signs in to a dialtone
// signaling server, places or answers one call, and shows it live.
//
//	dialer call bob                       # call bob on the default microphone and speaker
//	dialer call bob -in hello.wav -duration 10s
//	dialer call bob -tone 440 -out heard.wav
//	dialer listen                         # wait for one call, ask y/n
//	dialer listen -auto-answer -out heard.wav
//	dialer devices                        # list capture and playback devices
//
// Flags may come before or after the user name. The server and the
// credentials come from flags or the environment:
//
//	-server URL   DIALTONE_SERVER  (default ws://127.0.0.1:8080/ws)
//	-user NAME    DIALTONE_USER
//	-token TOKEN  DIALTONE_TOKEN   (without a token the user name is sent as
//	                               ?user=NAME, which a server in dev mode accepts)
//
// Audio: the microphone is the default capture device, or a WAV file (-in,
// -loop to repeat it), or a sine tone (-tone HZ); the speaker is the default
// playback device, or a WAV file (-out). Files and tones use virtual devices
// on the real clock, so no sound card is needed; -capture and -playback
// pick system devices by ID or name (see `dialer devices`), -audio picks
// the sound system (auto, malgo, null, virtual).
//
// Keys during a call (single keys on a terminal; on a pipe, lines whose
// characters are read as keys once the call is connected):
//
//	m        mute / unmute the microphone
//	h        hang up (Ctrl-C too)
//	d        switch to the next input device
//	t        type a text message, Enter sends it ("t hello" on a pipe)
//	0-9 * #  send a DTMF digit
//
// While the call is up, one status line shows the state, the call time,
// the signaling connection (connected, or reconnecting after the server
// was lost: media goes on meanwhile), microphone and speaker level meters,
// RTT, loss and MOS; on a terminal it is redrawn in place, otherwise it is
// printed once a second. Losing and regaining signaling is also printed.
//
// -relay-only sends all media through the TURN relay the server hands out
// credentials for (the server needs one: -turn-url and -turn-secret, or
// -turn-addr); the peer then never learns this machine's addresses.
//
// -duration hangs up that long after the call connected. `listen` handles
// one call and exits; -auto-answer accepts it without asking.
//
// Exit status, by how the call ended:
//
//	0    hangup or remote-hangup (a normal end)
//	1    error outside a call: server unreachable, sign-in refused, audio device
//	2    usage error
//	3    busy: the callee already had a call
//	4    declined (by either side)
//	5    not answered: no-answer, or cancelled before an answer
//	6    offline: the callee was not connected (offline, push-failed)
//	7    the call failed: connect-timeout, ice-failed, relay-failed, signaling-lost, unauthorized, error
//	130  interrupted before a call
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/dialtone-dev/dialtone/audio"
	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/signaling"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program; it returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	tty := isTerminal(stdout)
	stdout, stderr = onTerminal(stdout), onTerminal(stderr)
	opts, err := parseArgs(args, stderr)
	if err != nil {
		if !errors.Is(err, errHelp) {
			fmt.Fprintln(stderr, "dialer:", err)
		}
		return exitUsage
	}
	log := slog.New(slog.DiscardHandler)
	if opts.verbose {
		log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	switch opts.command {
	case "devices":
		return listDevices(ctx, opts, stdout, stderr, log)
	case "call", "listen":
		return phoneCommand(ctx, opts, stdin, stdout, stderr, tty, log)
	}
	return exitUsage
}

// phoneCommand runs call and listen; tty says whether stdout is a
// terminal (the status line is redrawn in place).
func phoneCommand(ctx context.Context, opts options, stdin io.Reader, stdout, stderr io.Writer, tty bool, log *slog.Logger) int {
	sound, err := openAudio(ctx, opts.audio, log)
	if err != nil {
		fmt.Fprintln(stderr, "dialer: audio:", err)
		return exitError
	}
	defer func() {
		if err := sound.Close(); err != nil {
			fmt.Fprintln(stderr, "dialer: closing audio:", err)
		}
	}()

	ui := newDisplay(stdout, tty, sound.meter)
	phone, err := signIn(ctx, opts, sound, ui.onSignaling, log)
	if err != nil {
		fmt.Fprintln(stderr, "dialer:", err)
		if ctx.Err() != nil {
			return exitInterrupted
		}
		return exitError
	}
	defer phone.Close()

	// On a terminal the keyboard's raw mode turns Ctrl-C into a key: it
	// cancels ctx as SIGINT would.
	ctx, interrupt := context.WithCancel(ctx)
	defer interrupt()
	keys := newKeyboard(stdin, tty && isTerminal(stdin), interrupt)
	defer keys.restore()

	var c *call.Call
	if opts.command == "call" {
		c, err = phone.Dial(ctx, opts.peer)
		if err != nil {
			fmt.Fprintln(stderr, "dialer: dial:", err)
			return exitError
		}
		ui.println("calling %s as %s", opts.peer, phone.User())
	} else {
		ui.println("listening as %s", phone.User())
		c, err = answer(ctx, phone, opts.autoAnswer, keys, ui)
		if err != nil {
			fmt.Fprintln(stderr, "dialer:", err)
			if ctx.Err() != nil {
				return exitInterrupted
			}
			return exitError
		}
	}
	reason := converse(ctx, c, opts, keys, ui, sound)
	if err := c.Err(); err != nil {
		ui.println("error: %v", err)
	}
	return exitCode(reason)
}

// signIn connects to the signaling server and makes the phone;
// onSignaling follows the connection's changes.
func signIn(ctx context.Context, opts options, sound *sound, onSignaling func(signaling.Status), log *slog.Logger) (*call.Phone, error) {
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	tr, err := signaling.Dial(dctx, opts.server, signaling.DialConfig{Token: opts.token, User: opts.user, Logger: log.With("part", "signaling")})
	if err != nil {
		return nil, fmt.Errorf("signaling server %s: %w", opts.server, err)
	}
	cfg := call.Config{
		DisplayName: opts.name,
		Audio: call.AudioConfig{
			Backend:  sound.backend,
			Capture:  opts.audio.capture,
			Playback: opts.audio.playback,
		},
		Codec:  call.CodecConfig{Bitrate: opts.bitrate, Complexity: opts.complexity},
		Logger: log.With("part", "phone"),
	}
	if opts.loopback {
		cfg.SettingEngine = calltest.Loopback()
	}
	cfg.RelayOnly = opts.relayOnly
	wt := watchTransport(tr, onSignaling)
	p, err := call.NewPhone(wt, cfg)
	if err != nil {
		_ = wt.Close()
		return nil, err
	}
	return p, nil
}

// answer waits for one incoming call and accepts it, at once or when the
// user says y.
func answer(ctx context.Context, phone *call.Phone, auto bool, keys *keyboard, ui *display) (*call.Call, error) {
	var c *call.Call
	select {
	case c = <-phone.Incoming():
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if c == nil {
		return nil, errors.New("phone closed")
	}
	who := c.Peer()
	if n := c.DisplayName(); n != "" && n != who {
		who = fmt.Sprintf("%s (%s)", n, c.Peer())
	}
	if auto {
		ui.println("incoming call from %s, answering", who)
		return c, accept(ctx, c)
	}
	ui.println("incoming call from %s: answer? [y/n]", who)
	for {
		select {
		case k, ok := <-keys.keys:
			if !ok {
				ui.println("no input to answer with (use -auto-answer): declining")
				_ = c.Decline(ctx)
				return c, nil
			}
			switch k {
			case 'y', 'Y':
				return c, accept(ctx, c)
			case 'n', 'N':
				_ = c.Decline(ctx)
				return c, nil
			}
		case <-c.Done():
			return c, nil // the caller gave up; converse reports it
		case <-ctx.Done():
			_ = c.Decline(context.Background())
			return c, nil
		}
	}
}

func accept(ctx context.Context, c *call.Call) error {
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.Accept(actx); err != nil && !errors.Is(err, call.ErrEnded) {
		c.Hangup()
		return fmt.Errorf("accept: %w", err)
	}
	return nil
}

// converse runs the call until it is done: it prints its events, keeps the
// status line up to date, and acts on keys. It returns the end reason.
func converse(ctx context.Context, c *call.Call, opts options, keys *keyboard, ui *display, sound *sound) call.Reason {
	events := c.Events()
	// Keys typed on a terminal act at once (h cancels a ringing call); keys
	// from a pipe are a script for the conversation and wait for it.
	var keyCh <-chan rune
	if keys.raw() {
		keyCh = keys.keys
	}
	interrupted := ctx.Done()
	var hangupAt <-chan time.Time
	redraw := ui.ticker()
	defer redraw.Stop()
	var text []rune
	typing, connected, muted := false, false, c.Muted()
	var sends sync.WaitGroup
	defer sends.Wait()
	ui.setCall(c)
	defer ui.clear()

	for events != nil {
		select {
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			switch ev.Kind {
			case call.EventState:
				ui.onState(ev)
				if ev.State == call.Connected && !connected {
					connected = true
					keyCh = keys.keys
					if opts.duration > 0 {
						hangupAt = time.After(opts.duration)
					}
				}
			case call.EventStats:
				ui.onStats(ev.Stats)
			case call.EventText:
				ui.println("%s says: %s", c.Peer(), ev.Text)
			case call.EventDTMF:
				ui.println("%s sent DTMF %c", c.Peer(), ev.Digit)
			}
		case k, ok := <-keyCh:
			if !ok {
				keyCh = nil // stdin closed: the call goes on
				continue
			}
			if typing {
				switch k {
				case '\n', '\r':
					typing = false
					msg := trimSpace(string(text))
					text = text[:0]
					ui.setTyping("", false)
					if msg != "" {
						sends.Add(1)
						go func() {
							defer sends.Done()
							if report(ui, "text", sendText(ctx, c, msg)) {
								ui.println("sent: %s", msg)
							}
						}()
					}
				case 0x1b: // Esc
					typing = false
					text = text[:0]
					ui.setTyping("", false)
				case 0x7f, '\b':
					if len(text) > 0 {
						text = text[:len(text)-1]
					}
					ui.setTyping(string(text), true)
				default:
					text = append(text, k)
					ui.setTyping(string(text), true)
				}
				continue
			}
			switch {
			case k == 'm' || k == 'M':
				muted = !muted // Muted() may lag: Mute is handled by the call's actor
				c.Mute(muted)
				ui.println("microphone %s", map[bool]string{true: "muted", false: "on"}[muted])
			case k == 'h' || k == 'H':
				ui.println("hanging up")
				c.Hangup()
			case k == 'd' || k == 'D':
				next, err := sound.nextInput(ctx)
				if err == nil {
					err = withTimeout(ctx, func(ctx context.Context) error { return c.SetInput(ctx, next.ID) })
				}
				if report(ui, "input device", err) {
					ui.println("input: %s", next.Name)
				}
			case k == 't' || k == 'T':
				typing = true
				ui.setTyping("", true)
			case isDTMF(k):
				if report(ui, "DTMF", withTimeout(ctx, func(ctx context.Context) error { return c.SendDTMF(ctx, string(k)) })) {
					ui.println("sent DTMF %c", k)
				}
			}
		case <-hangupAt:
			ui.println("%v passed: hanging up", opts.duration)
			c.Hangup()
			hangupAt = nil
		case <-interrupted:
			ui.println("interrupted: hanging up")
			c.Hangup()
			interrupted = nil
		case <-redraw.C:
			ui.redraw()
		}
	}
	<-c.Done()
	return c.Reason()
}

// sendText sends a text message. The data channel opens a moment after
// the call connects, so a message typed (or piped) right away is retried
// for a while instead of failing.
func sendText(ctx context.Context, c *call.Call, msg string) error {
	deadline := time.Now().Add(5 * time.Second)
	retry := time.NewTicker(100 * time.Millisecond)
	defer retry.Stop()
	for {
		err := withTimeout(ctx, func(ctx context.Context) error { return c.SendText(ctx, msg) })
		if !errors.Is(err, call.ErrState) || c.State() != call.Connected || time.Now().After(deadline) {
			return err
		}
		select {
		case <-retry.C:
		case <-c.Done():
			return err
		}
	}
}

func withTimeout(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return f(ctx)
}

// report prints a failed action; it returns whether the action succeeded.
func report(ui *display, what string, err error) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, call.ErrNoDTMF):
		ui.println("%s: the other side does not take DTMF events (%v)", what, err)
	default:
		ui.println("%s: %v", what, err)
	}
	return false
}

func isDTMF(k rune) bool {
	return (k >= '0' && k <= '9') || k == '*' || k == '#'
}

func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// listDevices prints the capture and playback devices of the sound system.
func listDevices(ctx context.Context, opts options, stdout, stderr io.Writer, log *slog.Logger) int {
	b, err := audio.NewBackend(ctx, audio.Kind(opts.audio.kind), log)
	if err != nil {
		fmt.Fprintln(stderr, "dialer: audio:", err)
		return exitError
	}
	defer b.Close()
	list, err := b.Devices(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "dialer: devices:", err)
		return exitError
	}
	fmt.Fprintf(stdout, "sound system: %s\n", b.Name())
	for _, dir := range []audio.Direction{audio.Capture, audio.Playback} {
		fmt.Fprintf(stdout, "%s devices:\n", dir)
		n := 0
		for _, d := range list {
			if d.Direction&dir == 0 {
				continue
			}
			n++
			mark := " "
			if d.Default {
				mark = "*"
			}
			fmt.Fprintf(stdout, "  %s %-40s id %s\n", mark, d.Name, d.ID)
		}
		if n == 0 {
			fmt.Fprintln(stdout, "    (none)")
		}
	}
	return exitOK
}
