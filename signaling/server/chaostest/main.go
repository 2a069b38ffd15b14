// Command chaostest injects faults into a signaling cluster and checks
// that calls survive them: two signaling nodes, each its own process (this
// program run with -node), share a redis-server; phones (call.Phone with
// virtual audio, PCMU, media on loopback) connect over WebSockets with
// both nodes' addresses, callers to one node and callees to the other.
//
//	go run ./signaling/server/chaostest -pairs 8
//
// Scenarios, each printing the calls checked, the calls lost (not ended as
// they should have, or one side still ringing) and the clients'
// reconnection times:
//
//   - kill node, calls connected: SIGKILL of a node while calls are
//     connected. Media must keep flowing; the callers reconnect to the
//     other node; hang-ups sent by either side during the outage arrive.
//   - kill node, calls ringing: SIGKILL of a node while calls ring, half of
//     them answered during the outage: each ends connected, or ended with
//     a reason, on both sides within the ring timeout.
//   - rolling restart: graceful restart of one node, then the other, with
//     calls placed throughout.
//   - redis restart: Redis killed and started again empty, with calls
//     placed throughout.
//
// It needs redis-server (-redis-server). It exits 1 when a call was lost.
//
// With -soak it places calls instead, through one signaling server over
// WebSockets, media on a simulated network (calltest.Network), -parallel
// pairs at once, at most -rate a second: answered, talked and hung up by
// either side, declined, cancelled, busy, unanswered, cut off the network
// and cut off signaling, each end checked for the reason it must report.
// It prints the goroutines, open file descriptors and heap sampled with
// every phone idle after warm-up, half-way and at the end, and exits 1
// when a call ended with a wrong reason.
//
//	go run ./signaling/server/chaostest -soak -calls 10000 -rate 8 -parallel 16
//
// With -long it holds one call (speech-like audio both ways, PCMU) for
// that long, printing every -every the heap and both ends' packets,
// jitter-buffer delay and concealment; it exits 1 when a stats sample
// went missing, the heap grew, the jitter buffers' median delay moved by
// more than 100 ms between the first and the last tenth of the call, or
// packets were lost.
//
//	go run ./signaling/server/chaostest -long 1h
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

// run runs the program with args and returns its exit code.
func run(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("chaostest", flag.ContinueOnError)
	var (
		node        = fs.Bool("node", false, "run one signaling node (used by the program itself)")
		addr        = fs.String("addr", "127.0.0.1:0", "-node: listen address")
		redisAddr   = fs.String("redis", "", "-node: Redis address")
		nodeID      = fs.String("node-id", "", "-node: node ID")
		presenceTTL = fs.Duration("presence-ttl", 30*time.Second, "the nodes' presence TTL (redisbroker.Config.PresenceTTL)")
		redisBin    = fs.String("redis-server", "redis-server", "redis-server binary")
		pairs       = fs.Int("pairs", 8, "calls per scenario (pairs of phones)")
		ringTimeout = fs.Duration("ring-timeout", 10*time.Second, "the phones' ring timeout")
		traffic     = fs.Duration("traffic", 9*time.Second, "how long calls are placed around a restart")
		soak        = fs.Bool("soak", false, "run the soak instead of the chaos scenarios")
		calls       = fs.Int("calls", 1000, "-soak: calls to place (0: until -duration)")
		duration    = fs.Duration("duration", 0, "-soak: how long to place calls (0: until -calls)")
		rate        = fs.Float64("rate", 5, "-soak: calls started per second, at most")
		parallel    = fs.Int("parallel", 4, "-soak: calls at once (pairs of phones)")
		talk        = fs.Duration("talk", 500*time.Millisecond, "-soak: how long answered calls talk")
		long        = fs.Duration("long", 0, "hold one call this long instead (e.g. 1h), printing its figures every -every")
		every       = fs.Duration("every", time.Minute, "-long: how often to print")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *node {
		if err := runNode(ctx, *addr, *redisAddr, *nodeID, *presenceTTL); err != nil {
			fmt.Fprintln(os.Stderr, "node:", err)
			return 1
		}
		return 0
	}
	if *long > 0 {
		if err := runLong(ctx, *long, *every, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "chaostest:", err)
			return 1
		}
		return 0
	}
	if *soak {
		if (*calls <= 0 && *duration <= 0) || *rate <= 0 || *parallel < 1 {
			fmt.Fprintln(os.Stderr, "chaostest: -soak needs -calls or -duration, and a positive -rate and -parallel")
			return 2
		}
		cfg := soakConfig{calls: *calls, duration: *duration, rate: *rate, parallel: *parallel, talk: *talk}
		if err := runSoak(ctx, cfg, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "chaostest:", err)
			return 1
		}
		return 0
	}
	bin, err := exec.LookPath(*redisBin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaostest:", err)
		return 2
	}
	cfg := chaosConfig{redisBin: bin, pairs: *pairs, presenceTTL: *presenceTTL, ringTimeout: *ringTimeout, traffic: *traffic}
	if err := runChaos(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "chaostest:", err)
		return 1
	}
	return 0
}
