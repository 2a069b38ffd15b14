// Command server is dialtone's signaling server with its web phone.
//
// It serves the signaling WebSocket at /ws, a health check at /healthz, a
// token endpoint at /token (development mode only) and the web phone at /.
// Every flag has an environment fallback, DIALTONE_ plus the flag name in
// capitals with '-' as '_' (DIALTONE_ADDR, DIALTONE_TURN_URL, ...); list
// flags take a comma-separated value there.
//
// Try it on one machine:
//
//	go run ./examples/server -dev
//	# open http://127.0.0.1:8080 in two browser tabs, log in as alice and bob
//
// From other machines browsers need HTTPS for the microphone:
//
//	go run ./examples/server -dev -dev-remote -addr :8443 -self-signed -host phone.lan,192.168.1.20
//
// Development mode lets anyone log in as anyone, so on an address other
// than loopback it needs -dev-remote as well.
//
// In production use -secret (users connect with tokens from
// server.NewToken, minted by your own backend) and real certificates
// (-tls-cert, -tls-key). For calls across NATs run the embedded TURN relay
// (-turn-addr 203.0.113.7:3478) or point at your own, e.g. coturn with
// use-auth-secret (-turn-url turn:turn.example.net:3478 -turn-secret
// SECRET). Several nodes behind a load balancer share presence and routing
// through Redis (-redis redis://10.0.0.5:6379/0). Prometheus metrics are
// served on a listener of their own with -metrics-addr 127.0.0.1:9090 (or,
// with -metrics, at /metrics on the public address, readable by anyone).
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/dialtone-dev/dialtone/examples/server/internal/site"
	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/dialtone-dev/dialtone/signaling/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

// options are the parsed flags.
type options struct {
	addr            string
	tlsCert, tlsKey string
	selfSigned      bool
	hosts           []string
	secret          string
	dev             bool
	devRemote       bool
	stunURLs        []string
	turnURLs        []string
	turnSecret      string
	turnTTL         time.Duration
	turnAddr        string
	turnRealm       string
	turnRelayIP     string
	turnLoopback    bool
	turnPrivate     bool
	redisURL        string
	nodeID          string
	metrics         bool
	metricsAddr     string
	pushWebhook     string
	origins         []string
	shutdownTimeout time.Duration
	verbose         bool
}

// listFlag is a repeatable flag that also takes comma-separated values.
// Its environment value is a default: the first use on the command line
// replaces it.
type listFlag struct {
	vals    []string
	fromEnv bool
}

func (l *listFlag) String() string { return strings.Join(l.vals, ",") }

func (l *listFlag) Set(v string) error {
	if l.fromEnv {
		l.vals, l.fromEnv = nil, false
	}
	l.vals = append(l.vals, splitList(v)...)
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// parseFlags parses args; getenv supplies the DIALTONE_* fallbacks.
func parseFlags(args []string, getenv func(string) string, out io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(out)
	env := func(name string) string {
		return getenv("DIALTONE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")))
	}
	str := func(p *string, name, def, usage string) {
		if v := env(name); v != "" {
			def = v
		}
		fs.StringVar(p, name, def, usage)
	}
	boolean := func(p *bool, name, usage string) {
		def := false
		switch strings.ToLower(env(name)) {
		case "1", "true", "yes", "on":
			def = true
		}
		fs.BoolVar(p, name, def, usage)
	}
	dur := func(p *time.Duration, name string, def time.Duration, usage string) error {
		if v := env(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("DIALTONE_%s: %w", strings.ToUpper(strings.ReplaceAll(name, "-", "_")), err)
			}
			def = d
		}
		fs.DurationVar(p, name, def, usage)
		return nil
	}
	list := func(name, usage string) *listFlag {
		l := &listFlag{vals: splitList(env(name))}
		l.fromEnv = len(l.vals) > 0
		fs.Var(l, name, usage)
		return l
	}

	str(&o.addr, "addr", "127.0.0.1:8080", "listen address")
	str(&o.tlsCert, "tls-cert", "", "TLS certificate file (PEM); with -tls-key serves HTTPS")
	str(&o.tlsKey, "tls-key", "", "TLS private key file (PEM)")
	boolean(&o.selfSigned, "self-signed", "serve HTTPS with an in-memory self-signed certificate for -host")
	hosts := list("host", "host names or IPs for -self-signed (repeatable; default localhost,127.0.0.1)")
	str(&o.secret, "secret", "", "HMAC secret of user tokens (server.NewToken)")
	boolean(&o.dev, "dev", "development mode: anyone may log in as anyone (never in production)")
	boolean(&o.devRemote, "dev-remote", "let -dev listen on an address other than loopback, where others can reach it")
	stun := list("stun-url", "STUN URL handed to clients, e.g. stun:stun.example.net:3478 (repeatable)")
	turn := list("turn-url", "external TURN URL, e.g. turn:turn.example.net:3478?transport=udp (repeatable; needs -turn-secret)")
	str(&o.turnSecret, "turn-secret", "", "TURN shared secret (coturn static-auth-secret with use-auth-secret)")
	if err := dur(&o.turnTTL, "turn-ttl", time.Hour, "validity of TURN credentials"); err != nil {
		return o, err
	}
	str(&o.turnAddr, "turn-addr", "", "run an embedded TURN relay on this UDP address, e.g. :3478")
	str(&o.turnRealm, "turn-realm", "dialtone", "realm of the embedded TURN relay")
	str(&o.turnRelayIP, "turn-relay-ip", "", "public IP the embedded relay advertises (needed when -turn-addr has no IP)")
	boolean(&o.turnLoopback, "turn-allow-loopback", "let the embedded relay relay to 127.0.0.0/8 (single-host demos only)")
	boolean(&o.turnPrivate, "turn-allow-private", "let the embedded relay relay to private and link-local networks (a relay serving a LAN)")
	str(&o.redisURL, "redis", "", "Redis URL (redis://host:6379/0) to run several server nodes as one cluster")
	str(&o.nodeID, "node-id", "", "this node's unique name in a Redis cluster (default random)")
	if v := env("metrics"); v != "" {
		o.metrics = v == "1" || strings.EqualFold(v, "true")
	}
	fs.BoolVar(&o.metrics, "metrics", o.metrics, "also serve Prometheus metrics at /metrics on -addr, for anyone to read")
	str(&o.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at /metrics on this separate address, e.g. 127.0.0.1:9090")
	str(&o.pushWebhook, "push-webhook", "", "URL POSTed a JSON push to wake users who are not connected")
	origins := list("origin", "extra allowed browser origin, e.g. https://app.example.com (repeatable)")
	if err := dur(&o.shutdownTimeout, "shutdown-timeout", 10*time.Second, "graceful shutdown deadline"); err != nil {
		return o, err
	}
	boolean(&o.verbose, "verbose", "debug logs")

	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	o.hosts, o.stunURLs, o.turnURLs, o.origins = hosts.vals, stun.vals, turn.vals, origins.vals
	if len(o.hosts) == 0 {
		o.hosts = []string{"localhost", "127.0.0.1"}
	}
	switch {
	case o.secret == "" && !o.dev:
		return o, errors.New("need -secret (token authentication) or -dev (development mode)")
	case o.dev && !o.devRemote && !loopback(o.addr):
		return o, fmt.Errorf("-dev lets anyone log in as anyone: on -addr %q, which others can reach, add -dev-remote to mean it (or use -secret)", o.addr)
	case (o.tlsCert == "") != (o.tlsKey == ""):
		return o, errors.New("-tls-cert and -tls-key go together")
	case o.tlsCert != "" && o.selfSigned:
		return o, errors.New("-self-signed and -tls-cert exclude each other")
	case len(o.turnURLs) > 0 && o.turnSecret == "":
		return o, errors.New("-turn-url needs -turn-secret")
	case o.turnTTL < time.Second:
		return o, fmt.Errorf("-turn-ttl %v: TURN credentials must live at least a second", o.turnTTL)
	case o.turnRelayIP != "" && net.ParseIP(o.turnRelayIP) == nil:
		return o, fmt.Errorf("-turn-relay-ip %q is not an IP address", o.turnRelayIP)
	}
	return o, nil
}

// loopback reports whether the listen address addr accepts connections
// from this host only. An empty host listens on every interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// run parses args and serves until ctx ends.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	o, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	st, err := site.New(ctx, siteConfig(o, logger))
	if err != nil {
		return err
	}
	tlsCfg, err := tlsConfig(o)
	if err != nil {
		_ = st.Close()
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		_ = st.Close()
		return err
	}
	if o.metricsAddr != "" {
		mln, err := net.Listen("tcp", o.metricsAddr)
		if err != nil {
			_ = ln.Close()
			_ = st.Close()
			return err
		}
		stop := serveMetrics(mln, st.Signaling().Metrics(), logger)
		defer stop()
		logger.Info("metrics", "url", "http://"+mln.Addr().String()+"/metrics")
	}
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	logger.Info("serving", "url", scheme+"://"+ln.Addr().String()+"/", "dev", o.dev,
		"turn-urls", len(o.turnURLs), "embedded-turn", o.turnAddr != "", "redis", o.redisURL != "",
		"push", o.pushWebhook != "")
	if o.dev {
		logger.Warn("development mode: anyone can log in as anyone")
	}
	return st.Serve(ctx, ln, tlsCfg)
}

// siteConfig maps the options onto the site and signaling configuration.
func siteConfig(o options, logger *slog.Logger) site.Config {
	sc := server.Config{
		AllowedOrigins: o.origins,
		TURNURLs:       o.turnURLs,
		TURNTTL:        o.turnTTL,
		NodeID:         o.nodeID,
		Logger:         logger,
	}
	if len(o.stunURLs) > 0 {
		sc.ICEServers = []signaling.ICEServer{{URLs: o.stunURLs}}
	}
	if o.turnSecret != "" {
		sc.TURNSecret = []byte(o.turnSecret)
	}
	if o.pushWebhook != "" {
		sc.Pusher = &server.Webhook{URL: o.pushWebhook}
	}
	cfg := site.Config{
		Signaling:       sc,
		Secret:          []byte(o.secret),
		Dev:             o.dev,
		Metrics:         o.metrics,
		RedisURL:        o.redisURL,
		ShutdownTimeout: o.shutdownTimeout,
		Logger:          logger,
	}
	if o.turnAddr != "" {
		cfg.TURN = &server.TURNConfig{
			ListenAddr:         o.turnAddr,
			Realm:              o.turnRealm,
			RelayIP:            net.ParseIP(o.turnRelayIP),
			AllowLoopbackPeers: o.turnLoopback,
			AllowPrivatePeers:  o.turnPrivate,
		}
	}
	return cfg
}

// tlsConfig returns the TLS configuration the options ask for, or nil for
// plain HTTP.
func tlsConfig(o options) (*tls.Config, error) {
	var cert tls.Certificate
	var err error
	switch {
	case o.tlsCert != "":
		cert, err = tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
	case o.selfSigned:
		cert, err = site.SelfSigned(o.hosts, time.Now())
	default:
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// serveMetrics serves h at /metrics on ln until the returned stop is
// called: a listener of its own, so the public address does not tell
// anyone how many users are connected.
func serveMetrics(ln net.Listener, h http.Handler, logger *slog.Logger) (stop func()) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	hs := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics listener", "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		<-done
	}
}
