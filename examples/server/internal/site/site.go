package site

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dialtone-dev/dialtone/signaling/server"
	"github.com/dialtone-dev/dialtone/signaling/server/redisbroker"
)

// Defaults applied by New for zero Config fields.
const (
	DefaultTokenTTL        = 12 * time.Hour
	DefaultShutdownTimeout = 10 * time.Second
)

//go:embed static
var static embed.FS

// Config configures a Site.
type Config struct {
	// Signaling configures the signaling server. New sets its
	// Authenticator from Secret and Dev (any Authenticator given here is
	// replaced) and its Logger when nil.
	Signaling server.Config
	// Secret is the HMAC secret of user tokens (server.NewToken). Clients
	// present a token with ?token= or an Authorization header.
	Secret []byte
	// Dev is development mode: anyone may be anyone. Connections without a
	// token are trusted by name (?user=), and /token hands out a token for
	// any user name, signed with Secret or, when there is none, with a
	// random secret made by New. Off by default.
	Dev bool
	// TokenTTL is the validity of tokens from /token. Default 12 h.
	TokenTTL time.Duration
	// Metrics serves the signaling server's Prometheus metrics at /metrics
	// on the site itself, for anyone to read (the number of users
	// connected, among others). Off by default; prefer serving
	// Signaling().Metrics() on a listener of its own (the command's
	// -metrics-addr).
	Metrics bool
	// IdleTimeout closes a keep-alive HTTP connection idle this long.
	// Default 60 s.
	IdleTimeout time.Duration
	// ReadTimeout bounds reading one request, body included (a WebSocket
	// is past it once upgraded). Default 30 s.
	ReadTimeout time.Duration
	// MaxConnsPerAddr bounds the TCP connections Serve keeps open from one
	// client address, whatever they are doing (before TLS, HTTP or any
	// authentication); more are closed at once. Default 256. The
	// signaling server's own per-address limits (Signaling.MaxConnsPerAddr,
	// ConnRate) apply to the WebSocket upgrades among them.
	MaxConnsPerAddr int
	// TURN, when set, starts an embedded TURN relay (server.NewTURN) in
	// New. Its URLs are added to Signaling.TURNURLs and its secret becomes
	// Signaling.TURNSecret; an empty TURN.Secret takes Signaling.TURNSecret,
	// or a random one when that is empty too. Serve and Close stop it.
	TURN *server.TURNConfig
	// RedisURL, when set (redis://[user:pass@]host:port/db), joins the
	// server to a cluster through Redis (package redisbroker): users
	// connected to different nodes can call each other. While Redis cannot
	// be reached the site runs but is not ready (/healthz and /ws answer
	// 503) and keeps trying.
	RedisURL string
	// RedisBroker configures the Redis broker; its Logger defaults to
	// Logger.
	RedisBroker redisbroker.Config
	// ShutdownTimeout bounds the graceful shutdown in Serve. Default 10 s.
	ShutdownTimeout time.Duration
	// Logger receives the site's logs. Default: discard.
	Logger *slog.Logger
}

// Site is the example server's HTTP handler plus the signaling server
// behind /ws:
//
//	/ws        the signaling WebSocket endpoint (server.Server)
//	/healthz   200 {"status":"ok"}; 503 while the signaling server is not
//	           ready (not in its cluster yet)
//	/token     ?user=NAME → {"user","token","expires"}; development mode only
//	           (the web phone asks it without a name, answered 400, to learn
//	           that it needs no token field; elsewhere it is 404)
//	/metrics   Prometheus metrics, when Config.Metrics is set
//	/          the web phone (index.html, app.js, style.css)
type Site struct {
	cfg    Config
	secret []byte
	sig    *server.Server
	turn   *server.TURN
	redis  *redis.Client
	mux    *http.ServeMux
	log    *slog.Logger

	closeOnce sync.Once
	closeErr  error
}

// New builds a Site, its signaling server and, when configured, the
// embedded TURN relay and the Redis connection (checked with a PING bounded
// by ctx). It fails with ErrNoAuth when cfg has neither a Secret nor Dev.
func New(ctx context.Context, cfg Config) (site *Site, err error) {
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.MaxConnsPerAddr <= 0 {
		cfg.MaxConnsPerAddr = 256
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	secret := cfg.Secret
	if len(secret) == 0 && cfg.Dev {
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, fmt.Errorf("site: random token secret: %w", err)
		}
	}
	auth, err := Authenticator(secret, cfg.Dev)
	if err != nil {
		return nil, err
	}
	sc := cfg.Signaling
	sc.Authenticator = auth
	sc.DevMode = cfg.Dev
	if sc.Logger == nil {
		sc.Logger = cfg.Logger
	}
	web, err := fs.Sub(static, "static")
	if err != nil {
		return nil, fmt.Errorf("site: embedded files: %w", err)
	}
	s := &Site{cfg: cfg, secret: secret, mux: http.NewServeMux(), log: cfg.Logger}
	defer func() {
		if err != nil {
			_ = s.closeExtras()
		}
	}()

	if cfg.TURN != nil {
		tc := *cfg.TURN
		if len(tc.Secret) == 0 {
			tc.Secret = sc.TURNSecret
		}
		if len(tc.Secret) == 0 {
			tc.Secret = make([]byte, 32)
			if _, err := rand.Read(tc.Secret); err != nil {
				return nil, fmt.Errorf("site: random TURN secret: %w", err)
			}
		}
		if tc.Logger == nil {
			tc.Logger = cfg.Logger
		}
		if s.turn, err = server.NewTURN(tc); err != nil {
			return nil, fmt.Errorf("site: TURN relay: %w", err)
		}
		sc.TURNSecret = tc.Secret
		sc.TURNURLs = append(slices.Clone(sc.TURNURLs), s.turn.URLs()...)
		s.log.Info("TURN relay listening", "addr", s.turn.Addr(), "urls", s.turn.URLs())
	}
	if cfg.RedisURL != "" {
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("site: redis URL: %w", err)
		}
		s.redis = redis.NewClient(opts)
		bc := cfg.RedisBroker
		if bc.Logger == nil {
			bc.Logger = cfg.Logger
		}
		sc.Broker = redisbroker.New(s.redis, bc)
	}
	s.sig = server.New(sc)

	s.mux.Handle("GET /ws", s.sig)
	s.mux.HandleFunc("GET /healthz", s.healthz)
	if cfg.Dev {
		s.mux.HandleFunc("GET /token", s.token)
	}
	if cfg.Metrics {
		s.mux.Handle("GET /metrics", s.sig.Metrics())
	}
	s.mux.Handle("GET /", pageHeaders(http.FileServerFS(web)))
	return s, nil
}

// Signaling returns the signaling server behind /ws.
func (s *Site) Signaling() *server.Server { return s.sig }

// ServeHTTP implements http.Handler.
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Serve serves the site on ln (with TLS when tlsCfg is not nil) until ctx
// ends, then shuts down gracefully within Config.ShutdownTimeout: the
// signaling server tells every client it is going away and closes the
// WebSockets, then the HTTP server stops. It returns nil after a clean
// shutdown, or the error that stopped serving.
func (s *Site) Serve(ctx context.Context, ln net.Listener, tlsCfg *tls.Config) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       s.cfg.ReadTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	ln = limitPerAddr(ln, s.cfg.MaxConnsPerAddr)
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	start := time.Now()
	sigErr := s.sig.Shutdown(sctx)
	httpErr := hs.Shutdown(sctx)
	extraErr := s.closeExtras()
	if serveErr == nil {
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			serveErr = err
		}
	}
	s.log.Info("shut down", "took", time.Since(start), "signaling", sigErr, "http", httpErr)
	return errors.Join(serveErr, sigErr, httpErr, extraErr)
}

// Close stops the signaling server at once, then the TURN relay and the
// Redis connection (for error paths and tests that do not Serve; Serve
// shuts down by itself when its context ends).
func (s *Site) Close() error {
	return errors.Join(s.sig.Close(), s.closeExtras())
}

// TURN returns the embedded TURN relay, or nil.
func (s *Site) TURN() *server.TURN { return s.turn }

// closeExtras stops what New started besides the signaling server, once.
func (s *Site) closeExtras() error {
	s.closeOnce.Do(func() {
		if s.turn != nil {
			s.closeErr = errors.Join(s.closeErr, s.turn.Close())
		}
		if s.redis != nil {
			s.closeErr = errors.Join(s.closeErr, s.redis.Close())
		}
	})
	return s.closeErr
}

// healthz says the site is up and nothing more: how many users are
// connected is for the metrics listener, not for anyone who asks.
func (s *Site) healthz(w http.ResponseWriter, _ *http.Request) {
	if s.sig.Ready() != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
}

// token hands out a token for any user name: development mode only (it is
// not even routed otherwise).
func (s *Site) token(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user")
	if err := server.ValidateUser(user); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	tok, err := server.NewToken(s.secret, user, s.cfg.TokenTTL)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"user":    user,
		"token":   tok,
		"expires": time.Now().Add(s.cfg.TokenTTL).Unix(),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// pageHeaders adds the web phone's security headers: everything comes from
// this origin (the page loads nothing from elsewhere), WebSockets included.
func pageHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy",
			"default-src 'self'; connect-src 'self'; media-src 'self' blob: mediastream:; img-src 'self' data:; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}
