package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/media"
	"github.com/dialtone-dev/dialtone/signaling"
	"golang.org/x/term"
)

// isTerminal reports whether f is an *os.File open on a terminal. A
// character device is not enough: /dev/null is one too.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}

// onTerminal returns w, translating "\n" to "\r\n" when w is a terminal:
// while the keyboard holds the terminal in raw mode, the terminal no
// longer does that itself, and elsewhere the extra "\r" is harmless.
func onTerminal(w io.Writer) io.Writer {
	if isTerminal(w) {
		return crlf{w}
	}
	return w
}

type crlf struct{ w io.Writer }

func (c crlf) Write(p []byte) (int, error) {
	if _, err := c.w.Write(bytes.ReplaceAll(p, []byte("\n"), []byte("\r\n"))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// ctrlC is the byte a terminal in raw mode delivers for Ctrl-C instead of
// sending SIGINT.
const ctrlC = 0x03

// keyboard turns stdin into keys. On a terminal (raw) it puts the terminal
// in raw mode, so every key arrives at once without echo, and turns Ctrl-C
// into a call of interrupt (raw mode delivers it as a byte, not a signal);
// otherwise it reads lines and delivers their characters followed by '\n'.
// keys is closed at the end of input. The reading goroutine cannot be
// stopped (a read on stdin does not wake up); the end of input or the
// process's exit ends it.
type keyboard struct {
	keys  chan rune
	fd    int
	saved *term.State // the terminal's state before raw mode; nil when untouched
}

func newKeyboard(in io.Reader, raw bool, interrupt func()) *keyboard {
	k := &keyboard{keys: make(chan rune, 64)}
	if f, ok := in.(*os.File); raw && ok {
		k.fd = int(f.Fd())
		if saved, err := term.MakeRaw(k.fd); err == nil {
			k.saved = saved
		}
	}
	go k.read(in, k.saved != nil, interrupt)
	return k
}

func (k *keyboard) read(in io.Reader, raw bool, interrupt func()) {
	defer close(k.keys)
	r := bufio.NewReader(in)
	for {
		c, _, err := r.ReadRune()
		if err != nil {
			return
		}
		if raw && c == ctrlC {
			interrupt()
			continue
		}
		k.keys <- c
	}
}

// raw reports whether keys arrive one by one from a terminal.
func (k *keyboard) raw() bool { return k.saved != nil }

// restore gives the terminal its previous mode back.
func (k *keyboard) restore() {
	if k.saved != nil {
		_ = term.Restore(k.fd, k.saved)
		k.saved = nil
	}
}

// display prints messages and the call's status line: redrawn in place on
// a terminal, printed once a second (with each stats sample) otherwise.
type display struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	meter *meter

	c         *call.Call
	state     call.State
	sig       signaling.State // the signaling connection
	connected time.Time
	st        call.Stats
	haveStats bool
	typing    bool
	text      string
	drawn     bool // a status line is on screen (tty)
}

func newDisplay(w io.Writer, tty bool, m *meter) *display {
	return &display{w: w, tty: tty, meter: m, sig: signaling.StateUp}
}

// ticker paces redraws on a terminal; otherwise it never fires.
func (d *display) ticker() *time.Ticker {
	if d.tty {
		return time.NewTicker(100 * time.Millisecond)
	}
	t := time.NewTicker(time.Hour)
	t.Stop()
	return t
}

func (d *display) setCall(c *call.Call) {
	d.mu.Lock()
	d.c = c
	d.state = c.State()
	d.mu.Unlock()
}

// println prints a message line (above the status line on a terminal).
func (d *display) println(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.eraseLocked()
	fmt.Fprintf(d.w, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	d.drawLocked()
}

func (d *display) onState(ev call.Event) {
	d.mu.Lock()
	d.state = ev.State
	if ev.State == call.Connected && d.connected.IsZero() {
		d.connected = ev.Time
	}
	d.mu.Unlock()
	msg := ev.State.String()
	if ev.State == call.Ended {
		msg += " (" + string(ev.Reason) + ")"
	}
	d.println("call %s", msg)
}

// onSignaling follows the signaling connection: a call that is up goes on
// without it (media flows peer to peer), but hanging up, and anything else
// that needs the server, waits until it is back.
func (d *display) onSignaling(st signaling.Status) {
	d.mu.Lock()
	was := d.sig
	d.sig = st.State
	d.mu.Unlock()
	switch {
	case st.State == signaling.StateDown && was != signaling.StateDown:
		d.println("signaling lost (%v): reconnecting", st.Err)
	case st.State == signaling.StateUp && was == signaling.StateDown:
		d.println("signaling connected again")
	case st.State == signaling.StateClosed && st.Err != nil:
		d.println("signaling closed: %v", st.Err)
	}
}

func (d *display) onStats(st call.Stats) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.st, d.haveStats = st, true
	if !d.tty {
		fmt.Fprintln(d.w, d.lineLocked())
		return
	}
	d.drawLocked()
}

func (d *display) setTyping(text string, on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.typing, d.text = on, text
	d.drawLocked()
}

func (d *display) redraw() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.drawLocked()
}

// clear removes the status line for good.
func (d *display) clear() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.eraseLocked()
	d.c = nil
}

func (d *display) eraseLocked() {
	if d.tty && d.drawn {
		fmt.Fprint(d.w, "\r\x1b[K")
		d.drawn = false
	}
}

func (d *display) drawLocked() {
	if !d.tty || d.c == nil {
		return
	}
	fmt.Fprint(d.w, "\r\x1b[K"+d.lineLocked())
	d.drawn = true
}

// lineLocked is the status line: call state and time, signaling state,
// meters, network figures.
func (d *display) lineLocked() string {
	if d.typing {
		return "text> " + d.text
	}
	var b strings.Builder
	b.WriteString(d.state.String())
	if !d.connected.IsZero() {
		el := time.Since(d.connected).Truncate(time.Second)
		fmt.Fprintf(&b, " %02d:%02d", int(el.Minutes()), int(el.Seconds())%60)
	}
	b.WriteString("  signaling " + sigWords(d.sig))
	mic, spk := d.meter.levels()
	fmt.Fprintf(&b, "  mic %s  spk %s", bar(mic), bar(spk))
	if d.haveStats {
		fmt.Fprintf(&b, "  rtt %.0f ms  loss %.1f%%  MOS %.2f", float64(d.st.RTT)/float64(time.Millisecond), d.st.Loss, d.st.MOS)
	}
	if d.c != nil && d.c.Muted() {
		b.WriteString("  [muted]")
	}
	return b.String()
}

// sigWords names a signaling state for the status line.
func sigWords(s signaling.State) string {
	switch s {
	case signaling.StateUp:
		return "connected"
	case signaling.StateDown:
		return "reconnecting"
	}
	return "closed"
}

// bar draws a level meter from −60 dBov (empty) to 0 dBov (full).
func bar(dbov float64) string {
	const width = 10
	n := 0
	if dbov > media.SilenceDBov {
		n = int((dbov + 60) / 60 * width)
	}
	n = max(0, min(width, n))
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}
