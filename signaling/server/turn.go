package server

import (
	"context"
	"crypto/hmac"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v5"
)

// TURNConfig configures an embedded TURN relay (NewTURN).
type TURNConfig struct {
	// ListenAddr is the UDP address the relay listens on. Default
	// ":3478" (every interface).
	ListenAddr string
	// Realm is the TURN realm. Default "dialtone".
	Realm string
	// Secret is the shared secret of the TURN REST credentials; give the
	// Server the same one (Config.TURNSecret). Required.
	Secret []byte
	// RelayIP is the address the relay advertises for allocations (the
	// host's public address). Default: ListenAddr's IP when it names one;
	// required when ListenAddr listens on every interface.
	RelayIP net.IP
	// PortRange bounds the relay ports handed out. Default 49152–65535.
	PortRange PortRange
	// AllocationLifetime is the longest an allocation lives between the
	// client's refreshes, each of which needs a credential that has not
	// expired. Default 10 minutes (pion/turn's, like coturn's).
	AllocationLifetime time.Duration
	// AllowLoopbackPeers lets clients relay to 127.0.0.0/8 and ::1 (tests,
	// single-host demos). Off by default, like coturn: a TURN server must
	// not be a proxy into its own host.
	AllowLoopbackPeers bool
	// AllowPrivatePeers lets clients relay to private and link-local
	// addresses (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 169.254.0.0/16,
	// fc00::/7, fe80::/10): the networks behind the relay. Off by default,
	// like AllowLoopbackPeers; turn it on when the relay serves users on
	// such a network (a relay inside a company's LAN).
	AllowPrivatePeers bool
	// Logger receives the relay's logs. Default: discard.
	Logger *slog.Logger
}

// PortRange is an inclusive range of UDP ports.
type PortRange struct {
	Min, Max uint16
}

// TURN is an embedded TURN relay (pion/turn) that accepts the time-limited
// credentials the Server hands out in `ready` and `relay-config` (TURN REST
// API: username "<unix expiry>:<user>", password
// base64(HMAC-SHA1(secret, username))). Expired or forged credentials are
// refused. Wire it up as:
//
//	relay, err := server.NewTURN(server.TURNConfig{ListenAddr: "203.0.113.7:3478", Secret: secret})
//	srv := server.New(server.Config{TURNURLs: relay.URLs(), TURNSecret: secret, ...})
type TURN struct {
	srv  *turn.Server
	conn net.PacketConn
	cfg  TURNConfig
}

// NewTURN starts a TURN relay on cfg.ListenAddr (UDP). Close stops it.
func NewTURN(cfg TURNConfig) (*TURN, error) {
	if len(cfg.Secret) == 0 {
		return nil, fmt.Errorf("%w: no secret", ErrTURNConfig)
	}
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = ":3478"
	}
	if cfg.Realm == "" {
		cfg.Realm = "dialtone"
	}
	if cfg.PortRange.Min == 0 && cfg.PortRange.Max == 0 {
		cfg.PortRange = PortRange{Min: 49152, Max: 65535}
	}
	if cfg.PortRange.Min == 0 || cfg.PortRange.Max < cfg.PortRange.Min {
		return nil, fmt.Errorf("%w: bad port range %d-%d", ErrTURNConfig, cfg.PortRange.Min, cfg.PortRange.Max)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	host, _, err := net.SplitHostPort(cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("%w: listen address: %w", ErrTURNConfig, err)
	}
	if cfg.RelayIP == nil {
		ip := net.ParseIP(host)
		if ip == nil || ip.IsUnspecified() {
			return nil, fmt.Errorf("%w: RelayIP is required when listening on %q", ErrTURNConfig, cfg.ListenAddr)
		}
		cfg.RelayIP = ip
	}
	conn, err := net.ListenPacket("udp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("server: turn listen: %w", err)
	}
	t := &TURN{conn: conn, cfg: cfg}
	logs := slogFactory{log: cfg.Logger}
	t.srv, err = turn.NewServer(turn.ServerConfig{
		Realm:              cfg.Realm,
		AllocationLifetime: cfg.AllocationLifetime,
		AuthHandler:        t.authenticate,
		LoggerFactory:      logs,
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn: conn,
			RelayAddressGenerator: &turn.RelayAddressGeneratorPortRange{
				RelayAddress: cfg.RelayIP,
				Address:      host,
				MinPort:      cfg.PortRange.Min,
				MaxPort:      cfg.PortRange.Max,
			},
			PermissionHandler: t.permit,
		}},
	})
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("server: turn: %w", err)
	}
	return t, nil
}

// authenticate checks a TURN REST credential and returns the long-term
// key for it.
func (t *TURN) authenticate(ra *turn.RequestAttributes) (string, []byte, bool) {
	expiry, user, ok := strings.Cut(ra.Username, ":")
	if !ok || ValidateUser(user) != nil {
		return "", nil, false
	}
	exp, err := strconv.ParseInt(expiry, 10, 64)
	if err != nil || !time.Now().Before(time.Unix(exp, 0)) {
		t.cfg.Logger.Info("signaling: turn credential refused", "username", ra.Username, "src", ra.SrcAddr)
		return "", nil, false
	}
	username, password := TURNCredentials(t.cfg.Secret, user, time.Unix(exp, 0))
	if !hmac.Equal([]byte(username), []byte(ra.Username)) {
		return "", nil, false // not in canonical form (e.g. "+17:...")
	}
	// The password is checked by the server through the key's
	// MESSAGE-INTEGRITY: only a client that knows it produces a valid one.
	return user, turn.GenerateAuthKey(username, ra.Realm, password), true
}

// permit says whether a client may relay to peer: never to an
// unspecified or multicast address, to loopback and private networks only
// when the config allows them.
func (t *TURN) permit(_ net.Addr, peer net.IP) bool {
	switch {
	case peer.IsUnspecified() || peer.IsMulticast():
		return false
	case peer.IsLoopback():
		return t.cfg.AllowLoopbackPeers
	case peer.IsPrivate() || peer.IsLinkLocalUnicast():
		return t.cfg.AllowPrivatePeers
	}
	return true
}

// Addr returns the UDP address the relay listens on.
func (t *TURN) Addr() net.Addr { return t.conn.LocalAddr() }

// URLs returns the relay's URL for Config.TURNURLs, with the advertised
// relay IP and the listening port.
func (t *TURN) URLs() []string {
	port := t.conn.LocalAddr().(*net.UDPAddr).Port
	return []string{"turn:" + net.JoinHostPort(t.cfg.RelayIP.String(), strconv.Itoa(port)) + "?transport=udp"}
}

// Close stops the relay and frees its allocations.
func (t *TURN) Close() error { return t.srv.Close() }

// slogFactory adapts slog to pion's logging.
type slogFactory struct{ log *slog.Logger }

func (f slogFactory) NewLogger(scope string) logging.LeveledLogger {
	return slogLeveled{log: f.log.With("scope", "turn/"+scope)}
}

type slogLeveled struct{ log *slog.Logger }

func (l slogLeveled) emit(level slog.Level, msg string) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, msg)
	}
}

func (l slogLeveled) emitf(level slog.Level, format string, args ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (l slogLeveled) Trace(msg string)                  { l.emit(slog.LevelDebug-4, msg) }
func (l slogLeveled) Tracef(format string, args ...any) { l.emitf(slog.LevelDebug-4, format, args...) }
func (l slogLeveled) Debug(msg string)                  { l.emit(slog.LevelDebug, msg) }
func (l slogLeveled) Debugf(format string, args ...any) { l.emitf(slog.LevelDebug, format, args...) }
func (l slogLeveled) Info(msg string)                   { l.emit(slog.LevelInfo, msg) }
func (l slogLeveled) Infof(format string, args ...any)  { l.emitf(slog.LevelInfo, format, args...) }
func (l slogLeveled) Warn(msg string)                   { l.emit(slog.LevelWarn, msg) }
func (l slogLeveled) Warnf(format string, args ...any)  { l.emitf(slog.LevelWarn, format, args...) }
func (l slogLeveled) Error(msg string)                  { l.emit(slog.LevelError, msg) }
func (l slogLeveled) Errorf(format string, args ...any) { l.emitf(slog.LevelError, format, args...) }
