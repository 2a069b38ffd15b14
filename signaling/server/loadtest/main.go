// Command loadtest measures the signaling server under load, in one
// process on 127.0.0.1: it serves the real handler with net/http, connects
// WebSocket clients, pairs them, and has every client answer each `signal`
// from its peer with one of its own (one message in flight per client),
// for a while. It prints relayed messages per second, one-way latency
// (p50/p99, client send → peer receive through the server), the read and
// write system calls per relayed message (Linux), how long goroutines
// waited to run (with the CPU saturated, most of the latency is that
// queueing) and the process RSS. With -idle N a child process opens N idle authenticated
// connections and the server's RSS growth per connection is printed.
//
//	go run ./signaling/server/loadtest -clients 200 -duration 10s -size 2048
//	go run ./signaling/server/loadtest -clients 0 -idle 10000
//
// -client real drives the library's signaling.Client instead of the lean
// gorilla loop.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/dialtone-dev/dialtone/internal/cpuload"
	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/dialtone-dev/dialtone/signaling/server"
)

func main() {
	var (
		clients  = flag.Int("clients", 200, "active clients (paired; rounded down to even)")
		duration = flag.Duration("duration", 10*time.Second, "how long the active clients run")
		size     = flag.Int("size", 2048, "approximate size of one signal message, bytes")
		idle     = flag.Int("idle", 0, "idle authenticated connections to open and measure")
		mode     = flag.String("client", "lean", "client implementation: lean (gorilla loop) or real (signaling.Client)")
		cpuprof  = flag.String("cpuprofile", "", "write a CPU profile of the active phase to this file")
		memprof  = flag.String("memprofile", "", "write a heap profile after the idle phase to this file")
		dialTo   = flag.String("idle-dial", "", "internal: run as the idle clients' process, connecting to this address")
	)
	flag.Parse()
	if *dialTo != "" {
		if err := idleClients(*dialTo, *idle); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest: idle clients:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*clients, *duration, *size, *idle, *mode, *cpuprof, *memprof); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func run(clients int, duration time.Duration, size, idle int, mode, cpuprof, memprof string) error {
	raiseFileLimit(idle + 2*clients + 1024)
	// Every client connects from 127.0.0.1: lift the per-address limits
	// along with the rate.
	srv := server.New(server.Config{DevMode: true, RateLimit: rate.Inf, RateBurst: 1 << 20,
		MaxConnsPerAddr: 1 << 20, ConnRate: rate.Inf})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = hs.Shutdown(ctx)
	}()
	url := "ws://" + ln.Addr().String() + "/"
	fmt.Printf("server on %s, GOMAXPROCS=%d, client=%s\n", ln.Addr(), runtime.GOMAXPROCS(0), mode)

	if clients >= 2 {
		if err := active(url, clients/2*2, duration, size, mode, cpuprof); err != nil {
			return err
		}
	}
	if idle > 0 {
		if err := idleConns(ln.Addr().String(), idle, srv, memprof); err != nil {
			return err
		}
	}
	return nil
}

// raiseFileLimit lifts RLIMIT_NOFILE to cover every socket (both ends live
// in this process).
func raiseFileLimit(conns int) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	want := uint64(conns + 256)
	if lim.Cur >= want {
		return
	}
	// Raising the hard limit too needs privileges; fall back to the hard limit.
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: want, Max: max(want, lim.Max)}); err == nil {
		return
	}
	lim.Cur = min(want, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < want {
		fmt.Fprintf(os.Stderr, "loadtest: file limit %d, %d wanted (%v)\n", lim.Cur, want, err)
	}
}

// readIO reads the counters of /proc/self/io (nil where there is none).
func readIO() map[string]int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return nil
	}
	m := make(map[string]int64)
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			m[k] = n
		}
	}
	return m
}

// rssKB reads VmRSS from /proc/self/status.
func rssKB() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.Atoi(f[0])
				return n
			}
		}
	}
	return -1
}

// payload builds the data of a signal: a timestamp to patch in place and
// padding up to about size bytes in all.
func payload(size int) []byte {
	pad := max(size-120, 0)
	return []byte(`{"t":0000000000000000000,"pad":"` + strings.Repeat("x", pad) + `"}`)
}

// patchTime writes now's UnixNano over the 19 digits after `"t":` in b.
func patchTime(b []byte, at int) {
	n := time.Now().UnixNano()
	for i := at + 18; i >= at; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
}

var tKey = []byte(`"t":`)

// sentAt finds the timestamp in a received frame.
func sentAt(b []byte) (int64, bool) {
	i := bytes.Index(b, tKey)
	if i < 0 || i+4+19 > len(b) {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b[i+4:i+4+19]), 10, 64)
	return n, err == nil
}

type peerStats struct {
	recv    int64
	samples []int32 // latency, µs
}

func active(url string, n int, duration time.Duration, size int, mode, cpuprof string) error {
	fmt.Printf("connecting %d clients...\n", n)
	stats := make([]*peerStats, n)
	for i := range stats {
		stats[i] = &peerStats{samples: make([]int32, 0, 1<<14)}
	}
	var (
		running atomic.Bool
		wg      sync.WaitGroup
	)
	start := make(chan struct{})
	errs := make(chan error, n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var closers []func()
	for i := 0; i < n; i++ {
		me, peer := "u"+strconv.Itoa(i), "u"+strconv.Itoa(i^1)
		st := stats[i]
		var loop func()
		switch mode {
		case "lean":
			ws, _, err := websocket.DefaultDialer.Dial(url+"?user="+me, nil)
			if err != nil {
				return fmt.Errorf("dial %s: %w", me, err)
			}
			if _, _, err := ws.ReadMessage(); err != nil { // ready
				return err
			}
			closers = append(closers, func() { _ = ws.Close() })
			loop = func() { errs <- leanLoop(ws, peer, size, st, &running, start) }
		case "real":
			c, err := signaling.Dial(ctx, url+"?user="+me, signaling.DialConfig{NoReconnect: true, IncomingBuffer: 16})
			if err != nil {
				return fmt.Errorf("dial %s: %w", me, err)
			}
			<-c.Incoming() // ready
			closers = append(closers, func() { _ = c.Close() })
			loop = func() { errs <- realLoop(ctx, c, peer, size, st, &running, start) }
		default:
			return fmt.Errorf("unknown -client %q", mode)
		}
		wg.Add(1)
		go func() { defer wg.Done(); loop() }()
	}
	fmt.Printf("connected, RSS %d KB; running %v with %d-byte messages\n", rssKB(), duration, size)

	if cpuprof != "" {
		f, err := os.Create(cpuprof)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	sched0 := cpuload.SchedNow()
	io0 := readIO()
	cpu0 := cpuload.Now()
	running.Store(true)
	t0 := time.Now()
	close(start)
	timer := time.NewTimer(duration)
	var firstErr error
	select {
	case <-timer.C:
	case firstErr = <-errs:
	}
	running.Store(false)
	elapsed := time.Since(t0)
	sched := cpuload.SchedNow().Since(sched0)
	io1 := readIO()
	cpu1 := cpuload.Now()
	rss := rssKB()
	for _, c := range closers {
		c()
	}
	cancel()
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}

	var total int64
	var lat []int32
	for _, st := range stats {
		total += st.recv
		lat = append(lat, st.samples...)
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return time.Duration(lat[min(len(lat)-1, int(p*float64(len(lat))))]) * time.Microsecond
	}
	fmt.Printf("relayed %d messages in %v: %.0f msg/s\n", total, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds())
	fmt.Printf("latency p50 %v  p99 %v  p99.9 %v  max %v\n", pct(0.50), pct(0.99), pct(0.999), pct(1))
	if total > 0 && io0 != nil && io1 != nil {
		fmt.Printf("syscalls per relayed message: %.2f read, %.2f write\n",
			float64(io1["syscr"]-io0["syscr"])/float64(total), float64(io1["syscw"]-io0["syscw"])/float64(total))
	}
	fmt.Printf("scheduler latency (runnable → running) p50 %v  p99 %v\n", sched.Quantile(0.5), sched.Quantile(0.99))
	if self, others := cpu1.Cores(cpu0, elapsed); self+others > 0 {
		// Another program's load skews the numbers: say so.
		fmt.Printf("CPU used by other processes during the run: %.0f%%\n", 100*others/(self+others))
	}
	fmt.Printf("RSS %d KB (server and %d clients in one process)\n", rss, n)
	return nil
}

// record counts a received message and its latency.
func record(st *peerStats, b []byte) {
	st.recv++
	if at, ok := sentAt(b); ok {
		d := (time.Now().UnixNano() - at) / 1e3
		st.samples = append(st.samples, int32(min(d, 1<<31-1)))
	}
}

// leanLoop: send one signal, then for every signal received send one.
func leanLoop(ws *websocket.Conn, peer string, size int, st *peerStats, running *atomic.Bool, start <-chan struct{}) error {
	head := []byte(`{"type":"signal","to":"` + peer + `","call":"load","data":`)
	frame := append(append(head, payload(size)...), '}')
	at := len(head) + len(`{"t":`)
	var buf bytes.Buffer // this client's: what it read stays valid until its next read
	<-start
	for running.Load() {
		patchTime(frame, at)
		if err := ws.WriteMessage(websocket.TextMessage, frame); err != nil {
			return nil // closed at the end
		}
		for {
			_, r, err := ws.NextReader()
			if err != nil {
				return nil
			}
			buf.Reset()
			_, err = buf.ReadFrom(r)
			b := buf.Bytes()
			if err != nil {
				return nil
			}
			if !running.Load() {
				return nil
			}
			if bytes.Contains(b[:min(len(b), 40)], []byte(`"signal"`)) {
				record(st, b)
				break
			}
			return fmt.Errorf("unexpected message: %.200s", b)
		}
	}
	return nil
}

// realLoop is leanLoop through signaling.Client.
func realLoop(ctx context.Context, c *signaling.Client, peer string, size int, st *peerStats, running *atomic.Bool, start <-chan struct{}) error {
	data := payload(size)
	at := len(`{"t":`)
	<-start
	for running.Load() {
		patchTime(data, at)
		m := signaling.Message{Type: signaling.TypeSignal, To: peer, Call: "load", Data: data}
		if err := c.Send(ctx, m); err != nil {
			return nil
		}
		select {
		case in, ok := <-c.Incoming():
			if !ok || !running.Load() {
				return nil
			}
			if in.Type != signaling.TypeSignal {
				return fmt.Errorf("unexpected message: %+v", in)
			}
			record(st, in.Data)
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// idleConns has a child process (this program again, -idle-dial) open n
// connections that authenticate, receive `ready` and then stay silent, and
// reports the RSS they add to this process, which is only the server now:
// with both ends in one process 10k connections would need 20k file
// descriptors, more than a container usually allows.
func idleConns(addr string, n int, srv *server.Server, memprof string) error {
	runtime.GC()
	debug.FreeOSMemory()
	before := rssKB()
	fmt.Printf("opening %d idle connections from a child process (RSS before %d KB)...\n", n, before)
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, "-idle-dial", addr, "-idle", strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = stdin.Close() // the child exits when its stdin closes
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		return fmt.Errorf("idle clients failed (%q, %v)", line, err)
	}
	fmt.Printf("opened in %v; server reports %d connects\n", time.Since(t0).Round(time.Millisecond), srv.Stats().Connects)
	runtime.GC()
	debug.FreeOSMemory()
	after := rssKB()
	fmt.Printf("RSS after %d KB: +%d KB, %.1f KB per idle connection\n", after, after-before, float64(after-before)/float64(n))
	if memprof != "" {
		f, err := os.Create(memprof)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.WriteHeapProfile(f); err != nil {
			return err
		}
	}
	return nil
}

// idleClients is the child process of idleConns: n idle connections, each
// only a socket (a hand-made handshake, no buffers, no goroutine); "ready"
// on stdout once all are up; exit when stdin closes.
func idleClients(addr string, n int) error {
	raiseFileLimit(n + 256)
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, err := idleDial(addr, "idle"+strconv.Itoa(i))
		if err != nil {
			return fmt.Errorf("idle conn %d: %w", i, err)
		}
		conns = append(conns, c)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		_ = c.Close()
	}
	return nil
}

// idleDial does the WebSocket handshake by hand and waits for `ready`.
func idleDial(addr, user string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	key := base64.StdEncoding.EncodeToString([]byte(user + "-0123456789abcdef")[:16])
	req := "GET /?user=" + user + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(c, 512)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		c.Close()
		return nil, fmt.Errorf("handshake: %s", resp.Status)
	}
	// First frame: `ready` (unmasked text frame from the server).
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		c.Close()
		return nil, err
	}
	size := int(h[1] & 0x7f)
	if size == 126 {
		var ext [2]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			c.Close()
			return nil, err
		}
		size = int(ext[0])<<8 | int(ext[1])
	} else if size == 127 {
		c.Close()
		return nil, errors.New("ready frame too large")
	}
	if _, err := io.CopyN(io.Discard, br, int64(size)); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}
