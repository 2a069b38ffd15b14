// Command abusetest measures what the attacks of issues 24 and 21 cost the
// other users of a signaling server. For each attack it serves a server with
// its default limits (development-mode authentication) on 127.0.0.1,
// connects a well-behaved pair, alice and bob (signaling.Client), who
// trade a `signal` round trip (alice → bob → alice) -rate times a second,
// and a bot that answers every invite `busy`; then it runs the attack
// for -duration and prints the pair's round-trip time (p50, p99, and the
// p99 over the quiet run's), how many round trips were lost, how often a
// well-behaved user lost its connection, and what the attacker sent and
// the server let through. It exits non-zero if a well-behaved user was
// disconnected or a round trip lost.
//
//	go run ./signaling/server/abusetest
//	go run ./signaling/server/abusetest -attack connection-flood -duration 20s
//
// The attackers run in a child process (this program re-executed) at the
// lowest CPU priority and GOMAXPROCS=1, as a model of attackers on other
// machines: the server still does all the work their traffic causes, but
// their own CPU work yields to the server's instead of competing with it
// as equals. Everyone connects from 127.0.0.1, the well-behaved users
// first, so the attackers meet the per-address limits (connection rate
// and cap) with the pair already inside them.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

type options struct {
	attacks    []string      // run after the quiet baseline, in order
	duration   time.Duration // the pair's measurement per attack
	warmup     time.Duration // the attack's run before the measurement
	rate       float64       // the pair's round trips per second
	cpuprofile string        // prefix of a CPU profile per attack ("" none)
	exe        string        // the program re-executed as the attackers
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == attackerFlag {
		os.Exit(attackerMain(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		os.Exit(2)
	}
	if _, err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "abusetest:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("abusetest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		o    options
		list string
	)
	var names []string
	for _, a := range attacks() {
		names = append(names, a.name)
	}
	fs.StringVar(&list, "attack", "all", "all, or a comma-separated list of: "+strings.Join(names, ", "))
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "how long the pair is measured during each attack")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "how long each attack runs before the measurement")
	fs.Float64Var(&o.rate, "rate", 40, "the pair's round trips per second (each costs both users a message; the default budget is 50/s)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the server process during each measurement to PREFIX-ATTACK.pprof")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: abusetest [flags]\n\nattacks:")
		for _, a := range attacks() {
			fmt.Fprintf(stderr, "  %-24s %s\n", a.name, a.about)
		}
		fmt.Fprintln(stderr, "\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if list == "all" {
		o.attacks = names
	} else {
		for _, n := range strings.Split(list, ",") {
			if !slices.Contains(names, n) {
				err := fmt.Errorf("-attack %q: want all or some of %s", n, strings.Join(names, ", "))
				fmt.Fprintln(stderr, err)
				return o, err
			}
			o.attacks = append(o.attacks, n)
		}
	}
	if o.duration <= 0 || o.warmup < 0 || o.rate <= 0 {
		err := errors.New("-duration and -rate must be positive, -warmup not negative")
		fmt.Fprintln(stderr, err)
		return o, err
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return o, err
	}
	o.exe = exe
	return o, nil
}
