// Command echo is an echo bot: it signs in to a dialtone signaling server,
// answers every call, and plays back what the caller says after a delay,
// the way a carrier's echo test line does. Text messages are sent back too.
//
//	echo -server ws://127.0.0.1:8080/ws            # dev-mode server: signs in as "echo"
//	echo -token "$TOKEN" -delay 2s                 # a server with token auth
//
// Flags (with environment fallbacks):
//
//	-server URL   DIALTONE_SERVER (default ws://127.0.0.1:8080/ws)
//	-user NAME    user name for dev-mode servers (default echo)
//	-token TOKEN  DIALTONE_TOKEN
//	-delay D      echo delay (default 1s)
//	-max-call D   hang up calls longer than this (default 10m)
//	-loopback     keep media on 127.0.0.1 (server and callers on this machine)
//
// No sound card is involved: the bot's phone has a virtual speaker whose
// output goes into a delay line, and a virtual microphone that reads the
// delay line, both paced by the real clock. So the caller hears itself
// after -delay plus the network and jitter-buffer delay of both ways.
//
// The bot takes one call at a time (a caller who rings during a call hears
// busy) and runs until interrupted.
package main

import (
	"context"
	"errors"
	"flag"
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
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}

type options struct {
	server, user, token string
	delay, maxCall      time.Duration
	loopback, verbose   bool
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func parseFlags(args []string, out io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.server, "server", envOr("DIALTONE_SERVER", "ws://127.0.0.1:8080/ws"), "signaling server WebSocket URL ($DIALTONE_SERVER)")
	fs.StringVar(&o.user, "user", "echo", "user name to sign in as on a dev-mode server")
	fs.StringVar(&o.token, "token", os.Getenv("DIALTONE_TOKEN"), "sign-in token ($DIALTONE_TOKEN)")
	fs.DurationVar(&o.delay, "delay", time.Second, "how long after hearing it the bot plays it back")
	fs.DurationVar(&o.maxCall, "max-call", 10*time.Minute, "hang up calls that last longer (0: never)")
	fs.BoolVar(&o.loopback, "loopback", false, "keep media on the loopback interface")
	fs.BoolVar(&o.verbose, "v", false, "log debug output to stderr")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.delay < audio.DefaultPeriod || o.delay > time.Minute {
		return o, fmt.Errorf("-delay %v: want between %v and 1m", o.delay, audio.DefaultPeriod)
	}
	return o, nil
}

// run is the bot; it returns when ctx ends (nil) or on a fatal error.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	opts, err := parseFlags(args, stdout)
	if err != nil {
		return err
	}
	log := slog.New(slog.DiscardHandler)
	if opts.verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	out := &printer{w: stdout}

	line := audio.NewDelayLine(opts.delay)
	sound := audio.NewVirtualBackend(audio.VirtualBackendConfig{
		Devices: []audio.VirtualDevice{
			{ID: "echo-in", Name: "delay line output", Direction: audio.Capture, Default: true, Source: line},
			{ID: "echo-out", Name: "delay line input", Direction: audio.Playback, Default: true, Sink: line},
		},
		Logger: log,
	})
	defer sound.Close()

	phone, err := signIn(ctx, opts, sound, log)
	if err != nil {
		return err
	}
	defer phone.Close()
	out.printf("answering calls as %s, echo delay %v", phone.User(), opts.delay)

	for {
		select {
		case <-ctx.Done():
			out.printf("stopping")
			return nil
		case c, ok := <-phone.Incoming():
			if !ok {
				return errors.New("phone closed")
			}
			serve(ctx, c, line, opts, out)
		}
	}
}

func signIn(ctx context.Context, opts options, sound audio.Backend, log *slog.Logger) (*call.Phone, error) {
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	tr, err := signaling.Dial(dctx, opts.server, signaling.DialConfig{Token: opts.token, User: opts.user, Logger: log.With("part", "signaling")})
	if err != nil {
		return nil, fmt.Errorf("signaling server %s: %w", opts.server, err)
	}
	cfg := call.Config{
		DisplayName:     "Echo test",
		Audio:           call.AudioConfig{Backend: sound},
		EndToneDuration: -1, // nobody listens to the bot's speaker
		Logger:          log.With("part", "phone"),
	}
	if opts.loopback {
		cfg.SettingEngine = calltest.Loopback()
	}
	p, err := call.NewPhone(tr, cfg)
	if err != nil {
		_ = tr.Close()
		return nil, err
	}
	return p, nil
}

// serve answers one call and echoes it until it ends.
func serve(ctx context.Context, c *call.Call, line *audio.DelayLine, opts options, out *printer) {
	who := c.Peer()
	out.printf("call %s from %s: answering", c.ID(), who)
	line.Reset() // no leftovers from the previous caller
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := c.Accept(actx)
	cancel()
	if err != nil {
		out.printf("call %s: accept: %v", c.ID(), err)
		c.Hangup()
	}

	var limit <-chan time.Time
	if opts.maxCall > 0 {
		t := time.NewTimer(opts.maxCall)
		defer t.Stop()
		limit = t.C
	}
	var replies sync.WaitGroup
	defer replies.Wait()
	events, stop := c.Events(), ctx.Done()
	for events != nil {
		select {
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			switch ev.Kind {
			case call.EventState:
				s := ev.State.String()
				if ev.State == call.Ended {
					s += " (" + string(ev.Reason) + ")"
				}
				out.printf("call %s with %s: %s", c.ID(), who, s)
			case call.EventText:
				out.printf("call %s: text %q, sending it back", c.ID(), ev.Text)
				replies.Add(1)
				go func(text string) {
					defer replies.Done()
					sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					if err := c.SendText(sctx, text); err != nil {
						out.printf("call %s: text reply: %v", c.ID(), err)
					}
				}(ev.Text)
			case call.EventDTMF:
				out.printf("call %s: DTMF %c", c.ID(), ev.Digit)
			}
		case <-limit:
			out.printf("call %s: longer than %v, hanging up", c.ID(), opts.maxCall)
			c.Hangup()
			limit = nil
		case <-stop:
			c.Hangup()
			stop = nil
		}
	}
	<-c.Done()
}

// printer writes timestamped lines from several goroutines.
type printer struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *printer) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}
