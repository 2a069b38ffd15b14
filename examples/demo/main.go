// Command demo places one real call on this machine and measures it: the
// README's main job.
//
//	go run ./examples/demo            # virtual audio, no sound card needed
//	go run ./examples/demo -real      # alice on your default microphone and speaker
//	go run ./examples/demo -wav x.wav # alice's microphone plays x.wav
//
// One process starts the signaling server on 127.0.0.1 (an http.Server
// serving server.New with token authentication under a random secret), and
// two phones, alice and bob, connect to it over real WebSockets with
// signaling.Dial. Each phone has virtual audio devices: alice's microphone
// plays a speech-like prompt, bob's another one; their speakers are
// recorded. Alice dials bob, bob answers, they talk for -talk (3 s), and
// alice hangs up. Every state change of both calls is printed with its
// time, and a stats line per call per second (RTT, jitter, loss, bit
// rates, MOS).
//
// Then the demo measures each direction the way a listener would: every
// period that passes through a microphone or speaker callback is stamped
// with the wall-clock time, the speaker output is cross-correlated with the
// other phone's microphone input in 0.5 s windows (mediatest), and
// mouth-to-ear delay is the median over the windows of (time the speaker
// played the sample − time the microphone captured it). The SNR is measured
// after alignment with least-squares gain, so it counts codec and
// concealment damage, not level. Device buffers below the callbacks (a real
// sound card's) are not included.
//
// WebRTC stays on the loopback interface. The exit status is 0 when the
// call connected, both sides heard each other, and both ends saw a normal
// hang-up; 1 otherwise.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/dialtone-dev/dialtone/audio"
	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/media"
	"github.com/dialtone-dev/dialtone/media/mediatest"
	"github.com/dialtone-dev/dialtone/media/pcm"
	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/dialtone-dev/dialtone/signaling/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// options are the demo's flags.
type options struct {
	wav     string
	talk    time.Duration
	real    bool
	verbose bool
	setup   time.Duration
}

func parseFlags(args []string, out io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.wav, "wav", "", "play this WAV file into alice's microphone (looped) instead of the speech-like prompt")
	fs.DurationVar(&o.talk, "talk", 3*time.Second, "how long alice and bob talk once connected")
	fs.BoolVar(&o.real, "real", false, "put alice on the system's default microphone and speaker (bob stays virtual)")
	fs.BoolVar(&o.verbose, "v", false, "log the library's debug output to stderr")
	fs.DurationVar(&o.setup, "setup-timeout", 20*time.Second, "give up if the call is not connected within this time")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return o, nil
}

// party is one phone of the demo and its audio.
type party struct {
	name    string
	phone   *call.Phone
	backend audio.Backend
	mic     *mediatest.Timeline // every period alice's or bob's microphone captured
	speaker *mediatest.Timeline // and their speaker played, stamped
}

func (p *party) close() {
	if p.phone != nil {
		_ = p.phone.Close()
	}
	if p.backend != nil {
		_ = p.backend.Close()
	}
}

// run is the whole demo; main only maps its error to an exit status.
func run(ctx context.Context, args []string, stdout io.Writer) (err error) {
	opts, err := parseFlags(args, stdout)
	if err != nil {
		return err
	}
	log := slog.New(slog.DiscardHandler)
	if opts.verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	out := &printer{w: stdout, start: time.Now()}

	// The signaling server, on a real socket, with token auth.
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	sig := server.New(server.Config{Authenticator: server.TokenAuth{Secret: secret}, Logger: log.With("part", "server")})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		sig.Close()
		return err
	}
	hs := &http.Server{Handler: sig, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	defer func() {
		_ = sig.Close() // ends the hijacked WebSocket connections
		_ = hs.Close()
		<-served
	}()
	url := "ws://" + ln.Addr().String() + "/"
	out.printf(time.Now(), "server", "signaling server on %s (token auth)", url)

	// The two phones.
	alicePrompt, err := alicePrompt(opts.wav)
	if err != nil {
		return err
	}
	alice := &party{name: "alice", mic: &mediatest.Timeline{}, speaker: &mediatest.Timeline{}}
	bob := &party{name: "bob", mic: &mediatest.Timeline{}, speaker: &mediatest.Timeline{}}
	var wg sync.WaitGroup // the goroutines below; they end when the phones close
	defer func() {
		alice.close()
		bob.close()
		wg.Wait()
	}()
	if opts.real {
		b, err := audio.NewBackend(ctx, audio.KindAuto, log.With("part", "audio"))
		if err != nil {
			return fmt.Errorf("system audio: %w", err)
		}
		alice.backend = b
		out.printf(time.Now(), "alice", "audio: %s backend (system default devices)", b.Name())
	} else {
		alice.backend = virtualAudio("alice", alicePrompt)
	}
	bob.backend = virtualAudio("bob", pcm.Loop(mediatest.SpeechLike(20*mediatest.SampleRate, 2)))
	for _, p := range []*party{alice, bob} {
		if err := connect(ctx, p, url, secret, log); err != nil {
			return err
		}
		out.printf(time.Now(), p.name, "connected to signaling as %q over WebSocket", p.phone.User())
	}

	// Bob answers whatever rings.
	bobCalls := make(chan *call.Call, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for c := range bob.phone.Incoming() {
			select {
			case bobCalls <- c:
			default: // not ours: the demo makes one call
				c.Hangup()
			}
		}
	}()

	// Alice calls bob.
	ac, err := alice.phone.Dial(ctx, "bob", call.WithDisplayName("Alice"))
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	aw := watch(out, "alice", ac, &wg)
	setup, cancelSetup := context.WithTimeout(ctx, opts.setup)
	defer cancelSetup()
	var bc *call.Call
	select {
	case bc = <-bobCalls:
	case <-aw.ended:
		return fmt.Errorf("call ended before ringing bob: %s", ac.Reason())
	case <-setup.Done():
		ac.Hangup()
		return fmt.Errorf("bob's phone never rang: %w", setup.Err())
	}
	bw := watch(out, "bob", bc, &wg)
	out.printf(time.Now(), "bob", "incoming call from %s (%q), answering", bc.Peer(), bc.DisplayName())
	if err := bc.Accept(setup); err != nil {
		ac.Hangup()
		return fmt.Errorf("accept: %w", err)
	}
	for _, w := range []*watcher{aw, bw} {
		select {
		case <-w.connected:
		case <-w.ended:
			ac.Hangup()
			return fmt.Errorf("%s's call ended before connecting: %s", w.name, w.call.Reason())
		case <-setup.Done():
			ac.Hangup()
			return fmt.Errorf("%s's call did not connect: %w", w.name, setup.Err())
		}
	}
	cancelSetup()

	// Talk.
	talk := time.NewTimer(opts.talk)
	select {
	case <-talk.C:
	case <-aw.ended:
	case <-bw.ended:
	case <-ctx.Done():
		talk.Stop()
	}
	talked := time.Now()
	stats := [2]call.Stats{ac.Stats(), bc.Stats()}

	out.printf(time.Now(), "alice", "hanging up")
	ac.Hangup()
	done, cancelDone := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelDone()
	ra, errA := ac.Wait(done)
	rb, errB := bc.Wait(done)
	if err := errors.Join(errA, errB); err != nil {
		return fmt.Errorf("calls did not end: %w", err)
	}
	out.printf(time.Now(), "demo", "both calls done: alice %s, bob %s", ra, rb)

	// Measure what was said until the hang-up.
	ab := mediatest.MouthToEar(alice.mic, bob.speaker, mediatest.MouthToEarConfig{Until: talked})
	ba := mediatest.MouthToEar(bob.mic, alice.speaker, mediatest.MouthToEarConfig{Until: talked})
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, "measured (mouth-to-ear = microphone callback → far speaker callback, wall clock):")
	report(stdout, "alice", "bob", ab, stats[1])
	report(stdout, "bob", "alice", ba, stats[0])

	var problems []error
	if ra != call.ReasonHangup || rb != call.ReasonRemoteHangup {
		problems = append(problems, fmt.Errorf("unexpected end reasons: alice %s, bob %s", ra, rb))
	}
	if ctx.Err() != nil {
		problems = append(problems, ctx.Err())
	}
	if !ba.Found() {
		problems = append(problems, errors.New("bob's audio did not arrive at alice"))
	}
	if !ab.Found() {
		if opts.real {
			fmt.Fprintln(stdout, "(alice→bob not found: with -real, alice's microphone is whatever you said)")
		} else {
			problems = append(problems, errors.New("alice's audio did not arrive at bob"))
		}
	}
	return errors.Join(problems...)
}

// alicePrompt is what alice's virtual microphone plays.
func alicePrompt(wav string) (pcm.Reader, error) {
	if wav == "" {
		return pcm.Loop(mediatest.SpeechLike(20*mediatest.SampleRate, 1)), nil
	}
	w, err := media.OpenWAV(wav)
	if err != nil {
		return nil, fmt.Errorf("-wav: %w", err)
	}
	return pcm.Loop(w.Samples), nil
}

// virtualAudio is a sound system with one microphone playing mic and one
// speaker.
func virtualAudio(user string, mic pcm.Reader) audio.Backend {
	return audio.NewVirtualBackend(audio.VirtualBackendConfig{Devices: []audio.VirtualDevice{
		{ID: "mic", Name: user + "'s microphone", Direction: audio.Capture, Default: true, Source: mic},
		{ID: "speaker", Name: user + "'s speaker", Direction: audio.Playback, Default: true},
	}})
}

// connect signs p in over a WebSocket and makes its phone.
func connect(ctx context.Context, p *party, url string, secret []byte, log *slog.Logger) error {
	tok, err := server.NewToken(secret, p.name, time.Hour)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tr, err := signaling.Dial(dctx, url, signaling.DialConfig{Token: tok, Logger: log.With("part", "ws", "user", p.name)})
	if err != nil {
		return fmt.Errorf("%s: signaling: %w", p.name, err)
	}
	p.phone, err = call.NewPhone(tr, call.Config{
		DisplayName:   p.name,
		SettingEngine: calltest.Loopback(), // both phones are here: keep media on 127.0.0.1
		Audio:         call.AudioConfig{Backend: audio.Tap(p.backend, audio.Callbacks{Capture: p.mic.Add, Playback: p.speaker.Add})},
		Logger:        log.With("part", "phone", "user", p.name),
	})
	if err != nil {
		_ = tr.Close()
		return fmt.Errorf("%s: phone: %w", p.name, err)
	}
	return nil
}

// watcher prints one call's events and signals its milestones.
type watcher struct {
	name      string
	call      *call.Call
	connected chan struct{} // closed on the first Connected
	ended     chan struct{} // closed when the call ended
}

func watch(out *printer, name string, c *call.Call, wg *sync.WaitGroup) *watcher {
	w := &watcher{name: name, call: c, connected: make(chan struct{}), ended: make(chan struct{})}
	wg.Add(1)
	go func() {
		defer wg.Done()
		var connected, ended bool
		for ev := range c.Events() {
			switch ev.Kind {
			case call.EventState:
				s := ev.State.String()
				if ev.State == call.Ended {
					s += " (" + string(ev.Reason) + ")"
					if ev.Err != nil {
						s += ": " + ev.Err.Error()
					}
				}
				out.printf(ev.Time, name, "call %s → %s", short(c.ID()), s)
				if ev.State == call.Connected && !connected {
					connected = true
					close(w.connected)
				}
				if ev.State == call.Ended && !ended {
					ended = true
					close(w.ended)
				}
			case call.EventStats:
				st := ev.Stats
				out.printf(ev.Time, name, "stats rtt %5.1f ms  jitter %4.1f ms  loss %4.1f%%  send %5.1f kbit/s  recv %5.1f kbit/s  MOS %.2f  (%s)",
					ms(st.RTT), ms(st.Jitter), st.Loss, st.SendBitrate/1000, st.RecvBitrate/1000, st.MOS, st.Codec)
			case call.EventText:
				out.printf(ev.Time, name, "text: %q", ev.Text)
			case call.EventDTMF:
				out.printf(ev.Time, name, "DTMF %c", ev.Digit)
			}
		}
		if !ended {
			close(w.ended)
		}
	}()
	return w
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// report prints one direction's measurement. The line format is read by
// the test: keep "mouth-to-ear N ms" and "SNR N dB".
func report(w io.Writer, from, to string, m mediatest.Measurement, st call.Stats) {
	if !m.Found() {
		fmt.Fprintf(w, "  %-5s → %-5s  signal not found (%d/%d windows)\n", from, to, m.Good, m.All)
		return
	}
	fmt.Fprintf(w, "  %-5s → %-5s  mouth-to-ear %6.1f ms  SNR %5.1f dB  corr %.3f  (%d/%d windows; jitter buffer %.0f ms, MOS %.2f)\n",
		from, to, ms(m.MouthToEar), m.SNR, m.Corr, m.Good, m.All, ms(st.BufferDelay), call.MOS(ms(m.MouthToEar), st.Loss))
}

// printer writes timestamped lines from several goroutines.
type printer struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func (p *printer) printf(at time.Time, who, format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%s +%6.3fs  %-6s %s\n", at.Format("15:04:05.000"), at.Sub(p.start).Seconds(), who, fmt.Sprintf(format, args...))
}
