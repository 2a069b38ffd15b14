package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// attackerFlag, as the first argument, runs the program as the attackers'
// child process (see attackerMain).
const attackerFlag = "-attacker"

// attack is one of the floods of issues 24 and 21.
type attack struct {
	name  string
	about string
	unit  string // what sent and accepted count: "msgs" or "conns"
	run   func(ctx context.Context, a *attacker)
}

// attacks lists the attacks in the order they run.
func attacks() []attack {
	return []attack{
		{"invite-flood-reconnect", "invites to bob as fast as the socket takes them, never reading, reconnecting whenever cut off", "msgs",
			func(ctx context.Context, a *attacker) { a.flood(ctx, "bob", 0) }},
		{"big-invite-flood", "the same with 4 KB of display name in each invite", "msgs",
			func(ctx context.Context, a *attacker) { a.flood(ctx, "bob", 4<<10) }},
		{"reflection-via-bot", "three callers each send the bot 45 invites a second (under their own rate) for it to answer busy", "msgs",
			func(ctx context.Context, a *attacker) { a.reflect(ctx) }},
		{"connection-flood", "WebSocket connections from the pair's address as fast as they open, holding up to 2,000", "conns",
			func(ctx context.Context, a *attacker) { a.connFlood(ctx, 2000) }},
		{"malformed-flood", "messages to bob with invalid UTF-8 in data and broken JSON, reconnecting whenever closed as abusive", "msgs",
			func(ctx context.Context, a *attacker) { a.malformed(ctx) }},
		{"nested-json-flood", "messages to bob whose data nests arrays 30,000 deep (60 KB), reconnecting whenever cut off", "msgs",
			func(ctx context.Context, a *attacker) {
				deep := `{"type":"signal","to":"bob","call":"c","data":` + strings.Repeat("[", 30000) + strings.Repeat("]", 30000) + `}`
				a.spam(ctx, func(int) []byte { return []byte(deep) })
			}},
		{"huge-sdp-flood", "offers to bob with 60 KB of SDP each, reconnecting whenever cut off", "msgs",
			func(ctx context.Context, a *attacker) {
				sdp := `v=0\r\n` + strings.Repeat(`a=candidate:1 1 udp 2130706431 192.0.2.1 9 typ host\r\n`, 60<<10/56) // JSON-escaped line ends
				offer := `{"type":"signal","to":"bob","call":"c","data":{"description":{"type":"offer","sdp":"` + sdp + `"}}}`
				a.spam(ctx, func(int) []byte { return []byte(offer) })
			}},
		{"candidate-flood", "trickled ICE candidates to bob, thousands a second, reconnecting whenever cut off", "msgs",
			func(ctx context.Context, a *attacker) {
				a.spam(ctx, func(k int) []byte {
					return []byte(`{"type":"signal","to":"bob","call":"c","data":{"candidate":{"candidate":"candidate:` + strconv.Itoa(k) +
						` 1 udp 2130706431 192.0.2.1 ` + strconv.Itoa(1024+k%60000) + ` typ host","sdpMid":"0"}}}`)
				})
			}},
		{"join-leave-flood", "room join and leave, alternately, as fast as the socket takes them", "msgs",
			func(ctx context.Context, a *attacker) {
				a.spam(ctx, func(k int) []byte {
					if k%2 == 0 {
						return []byte(`{"type":"join","call":"room` + strconv.Itoa(k/2%8) + `","data":{}}`)
					}
					return []byte(`{"type":"leave","call":"room` + strconv.Itoa(k/2%8) + `"}`)
				})
			}},
	}
}

func findAttack(name string) (attack, bool) {
	for _, a := range attacks() {
		if a.name == name {
			return a, true
		}
	}
	return attack{}, false
}

// attackerReport is what the child process writes on stdout when it ends.
type attackerReport struct {
	Sent int64 `json:"sent"` // messages written, or connection attempts
	Nice int   `json:"nice"` // the lowest nice value among the child's threads (-1: unknown)

	cpu time.Duration // the child's CPU time, user and system (set by the parent)
}

// attackerMain is the child process: it lowers its own priority to the
// lowest, runs one attack against the server at -url until its stdin
// closes (or -for passes), and reports its counts as one JSON line on
// stdout. It announces "ready" on stdout once its priority is lowered.
// The parent starts it with GOMAXPROCS=1 in the environment; it sets it
// again in case it is run by hand.
func attackerMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("abusetest attacker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "attack to run")
	url := fs.String("url", "", "the server's WebSocket URL")
	bound := fs.Duration("for", time.Minute, "longest run, whatever stdin does")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	at, ok := findAttack(*name)
	if !ok || *url == "" {
		fmt.Fprintf(stderr, "abusetest attacker: unknown attack %q or no -url\n", *name)
		return 2
	}
	runtime.GOMAXPROCS(1)
	nice, err := lowerPriority()
	if err != nil {
		fmt.Fprintln(stderr, "abusetest attacker: lowering the priority:", err)
	}
	fmt.Fprintln(stdout, "ready")

	ctx, cancel := context.WithTimeout(context.Background(), *bound)
	defer cancel()
	go func() { // the parent closes stdin to stop the attack
		_, _ = io.Copy(io.Discard, stdin)
		cancel()
	}()
	a := &attacker{url: *url, dialer: websocket.Dialer{HandshakeTimeout: 5 * time.Second}}
	at.run(ctx, a)
	rep := attackerReport{Sent: a.sent.Load(), Nice: nice}
	if err := json.NewEncoder(stdout).Encode(rep); err != nil {
		return 1
	}
	return 0
}

// startAttacker runs attack name against url in a child process (exe
// re-executed with attackerFlag) and returns once the child is ready; stop
// ends the attack and returns the child's report.
func startAttacker(exe, name, url string, bound time.Duration) (stop func() (attackerReport, error), err error) {
	cmd := exec.Command(exe, attackerFlag, "-name", name, "-url", url, "-for", bound.String())
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := bufio.NewReader(out)
	line, err := r.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("attacker %s did not start (%q, %v)", name, line, err)
	}
	return func() (attackerReport, error) {
		_ = stdin.Close()
		var rep attackerReport
		err := json.NewDecoder(r).Decode(&rep)
		if werr := cmd.Wait(); err == nil && werr != nil {
			err = werr
		}
		if cmd.ProcessState != nil {
			rep.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		}
		if err != nil {
			return rep, fmt.Errorf("attacker %s: %w", name, err)
		}
		return rep, nil
	}, nil
}

// attacker holds the child's connection settings and its count.
type attacker struct {
	url    string
	dialer websocket.Dialer
	sent   atomic.Int64
}

// dial connects user without the client's manners; nil when refused or
// when ctx ended.
func (a *attacker) dial(ctx context.Context, user string) *websocket.Conn {
	ws, resp, err := a.dialer.DialContext(ctx, a.url+"?user="+user, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return nil
	}
	return ws
}

// pause waits d; false when ctx ended first.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// flood sends invites (with pad bytes of display name) to victim as fast
// as the socket takes them, never reading, reconnecting whenever cut off.
func (a *attacker) flood(ctx context.Context, victim string, pad int) {
	data := `{}`
	if pad > 0 {
		data = `{"displayName":"` + strings.Repeat("x", pad) + `"}`
	}
	for i := 0; ctx.Err() == nil; i++ {
		ws := a.dial(ctx, "mallory")
		if ws == nil {
			pause(ctx, 10*time.Millisecond)
			continue
		}
		stop := context.AfterFunc(ctx, func() { _ = ws.Close() })
		for k := 0; ; k++ {
			frame := []byte(`{"type":"invite","to":"` + victim + `","call":"m` + strconv.Itoa(i) + `-` + strconv.Itoa(k) + `","data":` + data + `}`)
			_ = ws.SetWriteDeadline(time.Now().Add(time.Second))
			if ws.WriteMessage(websocket.TextMessage, frame) != nil {
				break
			}
			a.sent.Add(1)
		}
		stop()
		_ = ws.Close()
	}
}

// reflect has three callers each send the bot 45 invites a second (under
// their own rate) for it to answer busy; the callers read the answers.
func (a *attacker) reflect(ctx context.Context) {
	var wg sync.WaitGroup
	for u := range 3 {
		wg.Go(func() {
			user := "caller" + strconv.Itoa(u)
			tick := time.NewTicker(time.Second / 45)
			defer tick.Stop()
			for k := 0; ctx.Err() == nil; {
				ws := a.dial(ctx, user)
				if ws == nil {
					pause(ctx, 100*time.Millisecond)
					continue
				}
				stop := context.AfterFunc(ctx, func() { _ = ws.Close() })
				drained := drain(ws)
				for ; ; k++ {
					select {
					case <-ctx.Done():
					case <-tick.C:
					}
					frame := []byte(`{"type":"invite","to":"bot","call":"r` + strconv.Itoa(k) + `"}`)
					if ctx.Err() != nil || ws.WriteMessage(websocket.TextMessage, frame) != nil {
						break
					}
					a.sent.Add(1)
				}
				stop()
				_ = ws.Close()
				<-drained
			}
		})
	}
	wg.Wait()
}

// drain reads ws until it fails, so that its user is not cut off as a
// slow consumer; the channel closes when it stops.
func drain(ws *websocket.Conn) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	return done
}

// connFlood opens connections, each as a different user, one after the
// other as fast as they open, holding up to hold of them open (never
// reading) and closing the oldest past that.
func (a *attacker) connFlood(ctx context.Context, hold int) {
	var open []*websocket.Conn
	defer func() {
		for _, ws := range open {
			_ = ws.Close()
		}
	}()
	for i := 0; ctx.Err() == nil; i++ {
		a.sent.Add(1)
		ws := a.dial(ctx, "c"+strconv.Itoa(i))
		if ws == nil {
			continue
		}
		open = append(open, ws)
		if len(open) > hold {
			_ = open[0].Close()
			open = open[1:]
		}
	}
}

// spam sends frame(k), k = 0, 1, ..., as fast as the socket takes them,
// reading the answers, and reconnects whenever cut off.
func (a *attacker) spam(ctx context.Context, frame func(k int) []byte) {
	for k := 0; ctx.Err() == nil; {
		ws := a.dial(ctx, "mallory")
		if ws == nil {
			pause(ctx, 10*time.Millisecond)
			continue
		}
		stop := context.AfterFunc(ctx, func() { _ = ws.Close() })
		drained := drain(ws)
		for ; ; k++ {
			_ = ws.SetWriteDeadline(time.Now().Add(time.Second))
			if ws.WriteMessage(websocket.TextMessage, frame(k)) != nil {
				break
			}
			a.sent.Add(1)
		}
		stop()
		_ = ws.Close()
		<-drained
	}
}

// malformed sends bob frames of invalid UTF-8 and broken JSON, reading the
// errors, and reconnects when closed as abusive.
func (a *attacker) malformed(ctx context.Context) {
	bad := [][]byte{
		[]byte(`{"type":"signal","to":"bob","call":"c","data":{"x":"` + "\xff" + `"}}`),
		[]byte(`{"type":"signal","to":"bob"`),
	}
	for ctx.Err() == nil {
		ws := a.dial(ctx, "mallory")
		if ws == nil {
			pause(ctx, 10*time.Millisecond)
			continue
		}
		stop := context.AfterFunc(ctx, func() { _ = ws.Close() })
		drained := drain(ws)
		for k := 0; ; k++ {
			_ = ws.SetWriteDeadline(time.Now().Add(time.Second))
			if ws.WriteMessage(websocket.TextMessage, bad[k%2]) != nil {
				break
			}
			a.sent.Add(1)
		}
		stop()
		_ = ws.Close()
		<-drained
	}
}
