package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/dialtone-dev/dialtone/internal/cpuload"
	"github.com/dialtone-dev/dialtone/signaling/server"
)

// errHurt is run's error when a well-behaved user was disconnected or
// lost a round trip.
var errHurt = errors.New("a well-behaved user was disconnected or lost a round trip")

// result is one row of the table.
type result struct {
	attack      string
	unit        string
	p50, p99    time.Duration
	trips, lost int
	disconnects int64
	sent        int64         // by the attacker: messages, or connection attempts
	accepted    int64         // attackers' messages delivered, or their connections accepted
	nice        int           // the attacker's priority
	wall        time.Duration // from the attacker's start to its end
	// Cores used while the attacker ran, by this process (the server and
	// the pair), by the attacker, and by other processes.
	self, attacker, others float64
	// sched is the p99 of how long this process's goroutines waited to
	// run during the measurement: the server's own queueing.
	sched time.Duration
}

// run measures the quiet baseline and then each attack of o, prints the
// table to out, and returns the rows; the error is errHurt when a
// well-behaved user was hurt.
func run(o options, out io.Writer) ([]result, error) {
	fmt.Fprintf(out, "server and pair: GOMAXPROCS=%d; attackers: a child process at nice %d, GOMAXPROCS=1\n", runtime.GOMAXPROCS(0), lowestPriority)
	fmt.Fprintf(out, "the pair: %.0f round trips/s for %v per attack (after %v of attack); load average %s\n", o.rate, o.duration, o.warmup, loadavg())
	var rows []result
	for _, name := range append([]string{"quiet"}, o.attacks...) {
		r, err := measureAttack(o, name)
		if err != nil {
			return rows, fmt.Errorf("%s: %w", name, err)
		}
		rows = append(rows, r)
	}
	fmt.Fprintf(out, "load average after: %s\n\n", loadavg())
	printTable(out, rows)
	for _, r := range rows {
		if r.disconnects > 0 || r.lost > 0 {
			return rows, errHurt
		}
	}
	return rows, nil
}

// measureAttack serves a fresh server, connects the pair, runs the attack
// (none for "quiet") and measures the pair.
func measureAttack(o options, name string) (r result, err error) {
	r.attack = name
	r.nice = -1
	at, isAttack := findAttack(name)
	r.unit = at.unit

	// A real logger, discarding its output: its cost is the server's.
	srv := server.New(server.Config{DevMode: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return r, err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = hs.Serve(ln)
	}()
	defer func() {
		_ = srv.Close()
		_ = hs.Close()
		<-served
	}()
	url := "ws://" + ln.Addr().String() + "/"

	p, err := newPair(url)
	if err != nil {
		return r, err
	}
	defer p.close()
	before := srv.Stats()

	cpu0 := cpuload.Now()
	t0 := time.Now()
	var attackerCPU time.Duration
	stop := func() error { return nil }
	if isAttack {
		stopChild, err := startAttacker(o.exe, name, url, o.warmup+o.duration+time.Minute)
		if err != nil {
			return r, err
		}
		stop = sync.OnceValue(func() error {
			rep, err := stopChild()
			r.sent, r.nice, attackerCPU = rep.Sent, rep.Nice, rep.cpu
			return err
		})
		defer func() { // the attacker ends even when the measurement fails
			if serr := stop(); err == nil {
				err = serr
			}
		}()
		t := time.NewTimer(o.warmup)
		<-t.C
	}

	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile + "-" + name + ".pprof")
		if err != nil {
			return r, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return r, err
		}
	}
	sched0 := cpuload.SchedNow()
	rtts, lost := p.measure(max(1, int(o.duration.Seconds()*o.rate)), time.Duration(float64(time.Second)/o.rate))
	r.sched = cpuload.SchedNow().Since(sched0).Quantile(0.99)
	if o.cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	if err := stop(); err != nil {
		return r, err
	}
	wall := time.Since(t0)
	r.wall = wall
	self, others := cpuload.Now().Cores(cpu0, wall)
	r.self = self
	r.attacker = attackerCPU.Seconds() / wall.Seconds()
	r.others = max(0, others-r.attacker) // others counts the child too

	after := srv.Stats()
	if at.unit == "conns" {
		r.accepted = int64(after.Connects - before.Connects)
	} else {
		r.accepted = p.delivered.Load()
	}
	r.disconnects = p.disconnects.Load()
	r.trips, r.lost = len(rtts), lost
	slices.Sort(rtts)
	q := func(f float64) time.Duration {
		if len(rtts) == 0 {
			return 0
		}
		return rtts[min(len(rtts)-1, int(f*float64(len(rtts))))]
	}
	r.p50, r.p99 = q(0.5), q(0.99)
	return r, nil
}

// printTable writes the rows, the quiet one first.
func printTable(out io.Writer, rows []result) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "attack\tp50\tp99\tp99/quiet\tround trips\tlost\tdisconnects\tattacker sent\taccepted\t\tcores: server+pair\tattacker\tothers\tsched p99\t")
	quiet := rows[0].p99
	for _, r := range rows {
		ratio := "-"
		if quiet > 0 {
			ratio = fmt.Sprintf("%.1f×", float64(r.p99)/float64(quiet))
		}
		sent, accepted := "-", "-"
		if r.unit != "" {
			sent, accepted = fmt.Sprint(r.sent), fmt.Sprint(r.accepted)
		}
		attacker := "-"
		if r.unit != "" {
			attacker = fmt.Sprintf("%.2f", r.attacker)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%.2f\t%s\t%.2f\t%s\t\n",
			r.attack, ms(r.p50), ms(r.p99), ratio, r.trips, r.lost, r.disconnects, sent, accepted, r.unit, r.self, attacker, r.others, ms(r.sched))
	}
	_ = tw.Flush()
	for _, r := range rows {
		if r.unit != "" && r.nice != lowestPriority {
			fmt.Fprintf(out, "note: the %s attacker ran at nice %d, not %d\n", r.attack, r.nice, lowestPriority)
		}
	}
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// loadavg is the first three fields of /proc/loadavg ("?" elsewhere).
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
