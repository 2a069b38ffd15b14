package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dialtone-dev/dialtone/signaling/server"
	"github.com/dialtone-dev/dialtone/signaling/server/redisbroker"
)

// proc is a child process the program can kill (SIGKILL: no graceful
// shutdown), stop (SIGTERM: the node's graceful shutdown) and start again
// with the same arguments.
type proc struct {
	name   string
	bin    string
	args   []string
	cmd    *exec.Cmd
	exited chan struct{}
}

func (p *proc) start() error {
	p.cmd = exec.Command(p.bin, p.args...)
	p.cmd.Stderr = os.Stderr
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	p.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(p.cmd, p.exited)
	return nil
}

// signal sends sig and waits for the process to exit.
func (p *proc) signal(sig syscall.Signal) {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	<-p.exited
	p.cmd = nil
}

func (p *proc) kill() { p.signal(syscall.SIGKILL) }
func (p *proc) stop() { p.signal(syscall.SIGTERM) }

// cluster is a redis-server and two signaling nodes, each its own process
// (this program run with -node), on loopback ports.
type cluster struct {
	redis      *proc
	redisAddr  string
	nodes      [2]*proc
	nodeAddrs  [2]string
	presenceTT time.Duration
	redisDir   string
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func startCluster(ctx context.Context, redisBin string, presenceTTL time.Duration) (*cluster, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	c := &cluster{presenceTT: presenceTTL}
	if c.redisAddr, err = freeAddr(); err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(c.redisAddr)
	dir, err := os.MkdirTemp("", "chaostest-redis")
	c.redisDir = dir
	if err != nil {
		return nil, err
	}
	c.redis = &proc{name: "redis", bin: redisBin, args: []string{"--bind", "127.0.0.1", "--port", port,
		"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--loglevel", "warning"}}
	if err := c.startRedis(ctx); err != nil {
		return nil, err
	}
	for i := range c.nodes {
		if c.nodeAddrs[i], err = freeAddr(); err != nil {
			c.close()
			return nil, err
		}
		c.nodes[i] = &proc{name: fmt.Sprintf("n%d", i+1), bin: self, args: []string{"-node",
			"-addr", c.nodeAddrs[i], "-redis", c.redisAddr, "-node-id", fmt.Sprintf("n%d", i+1),
			"-presence-ttl", presenceTTL.String()}}
		if err := c.startNode(ctx, i); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

// startRedis starts redis-server (empty: it keeps nothing on disk) and
// waits until it answers.
func (c *cluster) startRedis(ctx context.Context) error {
	if err := c.redis.start(); err != nil {
		return err
	}
	rdb := redis.NewClient(&redis.Options{Addr: c.redisAddr, Protocol: 2, MaxRetries: -1})
	defer rdb.Close()
	return poll(ctx, 10*time.Second, func() bool { return rdb.Ping(ctx).Err() == nil })
}

// startNode starts node i and waits until it has joined the cluster.
func (c *cluster) startNode(ctx context.Context, i int) error {
	if err := c.nodes[i].start(); err != nil {
		return err
	}
	url := "http://" + c.nodeAddrs[i] + "/healthz"
	return poll(ctx, 15*time.Second, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// urls returns the nodes' WebSocket URLs, node first first.
func (c *cluster) urls(first int) []string {
	return []string{"ws://" + c.nodeAddrs[first] + "/", "ws://" + c.nodeAddrs[1-first] + "/"}
}

func (c *cluster) close() {
	for _, n := range c.nodes {
		if n != nil {
			n.stop()
		}
	}
	c.redis.kill()
	_ = os.RemoveAll(c.redisDir)
}

// poll calls ok every 20 ms until it is true, d passes or ctx ends.
func poll(ctx context.Context, d time.Duration, ok func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !ok() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// runNode is the -node mode: a signaling node (dev mode, on loopback) in
// a Redis cluster, serving the WebSocket at / and its readiness at
// /healthz until SIGTERM (graceful shutdown) or SIGKILL.
func runNode(ctx context.Context, addr, redisAddr, id string, presenceTTL time.Duration) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", id)
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, Protocol: 2})
	defer rdb.Close()
	s := server.New(server.Config{DevMode: true, NodeID: id, Logger: log,
		Broker: redisbroker.New(rdb, redisbroker.Config{PresenceTTL: presenceTTL, Logger: log})})
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := s.Ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	mux.Handle("/", s)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = s.Close()
		return err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err = <-served:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.Shutdown(sctx)
	_ = hs.Shutdown(sctx)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
