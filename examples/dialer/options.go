package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/dialtone-dev/dialtone/call"
)

// Exit statuses; the package doc lists them for users.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitBusy        = 3
	exitDeclined    = 4
	exitNoAnswer    = 5
	exitOffline     = 6
	exitFailed      = 7
	exitInterrupted = 130
)

// exitCode maps how a call ended to the exit status.
func exitCode(r call.Reason) int {
	switch r {
	case call.ReasonHangup, call.ReasonRemoteHangup:
		return exitOK
	case call.ReasonBusy:
		return exitBusy
	case call.ReasonDeclined:
		return exitDeclined
	case call.ReasonNoAnswer, call.ReasonCancelled:
		return exitNoAnswer
	case call.ReasonOffline, call.ReasonPushFailed:
		return exitOffline
	default:
		return exitFailed
	}
}

const defaultServer = "ws://127.0.0.1:8080/ws"

var errHelp = errors.New("help requested")

// options are the parsed command line.
type options struct {
	command string // call, listen, devices
	peer    string // call: whom

	server, user, token, name string

	audio audioOptions

	autoAnswer bool
	duration   time.Duration
	bitrate    int // Opus bit/s; 0: the library's default
	complexity int // Opus 1–10; 0: the library's default
	loopback   bool
	relayOnly  bool
	verbose    bool
}

// audioOptions say where the microphone and speaker audio come from and go.
type audioOptions struct {
	kind              string  // sound system for real devices
	capture, playback string  // system device IDs or names
	in, out           string  // WAV files
	loop              bool    // repeat -in
	tone              float64 // Hz; 0 off
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

const usage = `usage:
  dialer call USER [flags]     call USER
  dialer listen [flags]        wait for one call and answer it
  dialer devices [flags]       list audio devices
Run "dialer call -h" for the flags.
`

// parseArgs reads the command, its argument and its flags (flags may come
// before or after the argument).
func parseArgs(args []string, stderr io.Writer) (options, error) {
	var o options
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return o, errors.New("no command")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, usage)
		return o, errHelp
	case "call", "listen", "devices":
		o.command = args[0]
	default:
		fmt.Fprint(stderr, usage)
		return o, fmt.Errorf("unknown command %q", args[0])
	}

	fs := flag.NewFlagSet("dialer "+o.command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.audio.kind, "audio", "", "sound system for real devices: auto (default), malgo, null, virtual")
	if o.command != "devices" {
		fs.StringVar(&o.server, "server", envOr("DIALTONE_SERVER", defaultServer), "signaling server WebSocket URL ($DIALTONE_SERVER)")
		fs.StringVar(&o.user, "user", os.Getenv("DIALTONE_USER"), "user name to sign in as ($DIALTONE_USER)")
		fs.StringVar(&o.token, "token", os.Getenv("DIALTONE_TOKEN"), "sign-in token ($DIALTONE_TOKEN); without one the user name is sent for dev-mode servers")
		fs.StringVar(&o.name, "name", "", "display name shown to the callee")
		fs.StringVar(&o.audio.capture, "capture", "", "microphone device ID or name (default: the system default)")
		fs.StringVar(&o.audio.playback, "playback", "", "speaker device ID or name (default: the system default)")
		fs.StringVar(&o.audio.in, "in", "", "send this WAV file instead of the microphone")
		fs.BoolVar(&o.audio.loop, "loop", false, "repeat the -in file")
		fs.Float64Var(&o.audio.tone, "tone", 0, "send a sine tone of this frequency (Hz) instead of the microphone")
		fs.StringVar(&o.audio.out, "out", "", "write what the far end says to this WAV file instead of the speaker")
		fs.IntVar(&o.bitrate, "bitrate", 0, "Opus bit rate in bit/s (default: the library's, 32000)")
		fs.IntVar(&o.complexity, "complexity", 0, "Opus encoder complexity 1–10 (default: the library's, tuned for speech)")
		fs.DurationVar(&o.duration, "duration", 0, "hang up this long after the call connected (0: never)")
		fs.BoolVar(&o.loopback, "loopback", false, "keep media on the loopback interface (a server and peers on this machine)")
		fs.BoolVar(&o.relayOnly, "relay-only", false, "send all media through the server's TURN relay: the peer never learns this machine's addresses")
		fs.BoolVar(&o.verbose, "v", false, "log debug output to stderr")
	}
	if o.command == "listen" {
		fs.BoolVar(&o.autoAnswer, "auto-answer", false, "answer the call without asking")
	}
	rest := args[1:]
	var positional []string
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return o, errHelp
			}
			return o, err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}

	switch o.command {
	case "call":
		if len(positional) != 1 {
			return o, errors.New("call needs exactly one user to call")
		}
		o.peer = positional[0]
	default:
		if len(positional) != 0 {
			return o, fmt.Errorf("%s takes no arguments, got %q", o.command, positional)
		}
	}
	if o.command != "devices" && o.user == "" && o.token == "" {
		return o, errors.New("who are you? set -user (or DIALTONE_USER) or -token (DIALTONE_TOKEN)")
	}
	if o.audio.in != "" && o.audio.tone != 0 {
		return o, errors.New("-in and -tone both choose the microphone: pick one")
	}
	if o.audio.tone < 0 || o.audio.tone >= 24000 {
		return o, fmt.Errorf("-tone %g Hz is outside 0–24000 Hz", o.audio.tone)
	}
	if o.complexity < 0 || o.complexity > 10 {
		return o, fmt.Errorf("-complexity %d: want 1–10", o.complexity)
	}
	if o.bitrate < 0 {
		return o, errors.New("-bitrate must not be negative")
	}
	if o.duration < 0 {
		return o, errors.New("-duration must not be negative")
	}
	return o, nil
}
