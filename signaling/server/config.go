package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"golang.org/x/time/rate"

	"github.com/dialtone-dev/dialtone/signaling"
)

// Config configures a Server. The zero value is usable (with DevMode or an
// Authenticator set); every zero field takes the default given beside it.
type Config struct {
	// Authenticator identifies WebSocket requests. Default: DevAuth when
	// DevMode is set, otherwise every request is rejected (ErrNoAuthenticator).
	Authenticator Authenticator
	// DevMode accepts any user name (?user=NAME) without credentials. Off by
	// default; never enable it in production.
	DevMode bool

	// CheckOrigin decides whether a browser's Origin may connect. Default:
	// requests without an Origin header, an Origin whose host equals the
	// request's Host, and the origins listed in AllowedOrigins.
	CheckOrigin func(r *http.Request) bool
	// AllowedOrigins lists extra origins (e.g. "https://app.example.com")
	// accepted by the default CheckOrigin.
	AllowedOrigins []string

	// ICEServers are sent as they are (e.g. STUN servers) in `ready` and
	// `relay-config`. Default: none.
	ICEServers []signaling.ICEServer
	// TURNURLs ("turn:host:3478?transport=udp", ...) get time-limited
	// credentials made with TURNSecret. Both must be set for TURN.
	TURNURLs []string
	// TURNSecret is the shared secret of the TURN server (coturn's
	// static-auth-secret).
	TURNSecret []byte
	// TURNTTL is how long TURN credentials stay valid. Default (zero)
	// 1 h. Clients renew them at half this, so a call may outlive it. A
	// negative TTL, or one under a second (sent in whole seconds, it would
	// read as "never expires"), is invalid (Validate).
	TURNTTL time.Duration

	// Pusher wakes users who are not connected. Default: none (an invite to
	// an unknown user is answered `offline`).
	Pusher Pusher
	// PushTimeout bounds one Pusher call. Default 5 s.
	PushTimeout time.Duration
	// PendingTTL is how long an invite (and the later messages of its call)
	// waits for a pushed user to connect. Default 60 s.
	PendingTTL time.Duration
	// MaxPending bounds the messages kept for one offline user. Default 64;
	// it is capped below SendQueue so a flush always fits.
	MaxPending int

	// MaxMessageSize is the largest message accepted, in bytes; a larger one
	// is answered with `error` "too-large". Frames over 8× this close the
	// connection. Default signaling.DefaultMaxMessageSize (64 KiB).
	MaxMessageSize int
	// SendQueue is the number of messages queued for one connection; a
	// connection whose queue is full is cut off. Default 256.
	SendQueue int
	// RateLimit is the sustained rate of messages accepted from one user,
	// all its connections and reconnections together (see limits.go).
	// Default 50/s. rate.Inf disables it.
	RateLimit rate.Limit
	// RateBurst is the user's token bucket's size. Default 100.
	RateBurst int
	// RateWait is how long a message over the user's rate may be held
	// back (its connection's reading pausing meanwhile) before it is
	// dropped and answered `rate-limited`. Default 2 s: 100 messages past
	// a burst at the default rate.
	RateWait time.Duration
	// InboundRateLimit is the sustained rate of messages other users may
	// send one user; past it (or with 3/4 of the user's SendQueue full) a
	// message is dropped and its sender answered `rate-limited`, and the
	// recipient keeps its connection. Default 4 × RateLimit.
	InboundRateLimit rate.Limit
	// InboundBurst is the inbound token bucket's size. Default 2 × RateBurst.
	InboundBurst int
	// MaxStrikes is how many malformed or forbidden messages a user may
	// send in a burst (refilled at one per second) before its connection is
	// closed as abusive. Messages over the rate are not strikes. Default 20.
	MaxStrikes int

	// MaxConnsPerAddr bounds the connections open at once from one client
	// address (ClientAddr), WebSocket handshakes included; past it the
	// upgrade is answered 429. Default 64.
	MaxConnsPerAddr int
	// ConnRate is the sustained rate of connection attempts from one
	// address; past it the upgrade is answered 429. Default 5/s.
	ConnRate rate.Limit
	// ConnBurst is the connection attempts' bucket size. Default 20.
	ConnBurst int
	// ClientAddr names the client address of a request for the
	// per-address limits. Default: the host of r.RemoteAddr. Behind a
	// reverse proxy, return the address the proxy reports (and only trust
	// what that proxy sets).
	ClientAddr func(r *http.Request) string

	// ReadTimeout closes a connection from which nothing (message or pong)
	// arrived for this long. Default 45 s.
	ReadTimeout time.Duration
	// MessageTimeout bounds the time from a message's first frame to its
	// last: a fragmented message that never ends (kept alive with pongs)
	// closes the connection. Default 10 s.
	MessageTimeout time.Duration
	// PingInterval is how often the server pings. Default 20 s.
	PingInterval time.Duration
	// WriteTimeout bounds one write. Default 10 s.
	WriteTimeout time.Duration

	// MaxRoomSize is the most members a room may have; a join past it is
	// answered `room-full`. In a cluster the joining node's value applies:
	// give every node the same. Default 8.
	MaxRoomSize int
	// RoomJoin decides whether user may join room; nil lets every
	// authenticated user join any room. An error wrapping ErrUnknownRoom
	// answers the join `unknown-room`, any other `forbidden`. It is asked
	// on every join, a resumed one too, on the joining connection's
	// reading goroutine (its messages wait meanwhile), and must return
	// within RoomJoinTimeout.
	RoomJoin func(ctx context.Context, user, room string) error
	// RoomJoinTimeout bounds one RoomJoin call. Default 5 s.
	RoomJoinTimeout time.Duration
	// RoomGrace is how long a member whose connection ended stays a
	// member: its client takes the membership back by joining again
	// within it; past it the other members get `member-left` "gone".
	// Default 10 s, the time a call still being set up waits for its
	// signaling connection (call.DefaultSignalingGrace).
	RoomGrace time.Duration

	// Broker connects this Server to the other nodes of a cluster (presence
	// and cross-node delivery): NewMemoryBroker for one process, package
	// redisbroker for several. New joins the cluster in the background and
	// retries while the broker fails (Server.Ready). Default: none, a
	// single node.
	Broker Broker
	// NodeID names this node in the cluster; it must be unique among the
	// nodes sharing the Broker. Default: random.
	NodeID string

	// Logger receives the server's logs. Default: discard. Each message
	// text at Info and above is passed at most LogRate times per second
	// (bursts of LogBurst); the next one that passes carries the number
	// suppressed.
	Logger *slog.Logger
	// LogRate limits the log lines of one text. Default 1/s; rate.Inf
	// passes everything.
	LogRate rate.Limit
	// LogBurst is the log limit's burst. Default 10.
	LogBurst int
}

// Validate reports a configuration New cannot serve as asked, wrapping
// ErrConfig: a negative TURNTTL, or a positive one under a second. Check
// configurations built from user input with it before New.
func (c Config) Validate() error {
	switch {
	case c.TURNTTL < 0:
		return fmt.Errorf("%w: negative TURN credential TTL %v", ErrConfig, c.TURNTTL)
	case c.TURNTTL > 0 && c.TURNTTL < time.Second:
		return fmt.Errorf("%w: TURN credential TTL %v is under a second (credentials carry whole seconds)", ErrConfig, c.TURNTTL)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Authenticator == nil && c.DevMode {
		c.Authenticator = DevAuth{}
	}
	if c.TURNTTL == 0 {
		c.TURNTTL = time.Hour
	}
	if c.PushTimeout <= 0 {
		c.PushTimeout = 5 * time.Second
	}
	if c.PendingTTL <= 0 {
		c.PendingTTL = 60 * time.Second
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = signaling.DefaultMaxMessageSize
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 256
	}
	if c.SendQueue < 8 {
		c.SendQueue = 8
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 64
	}
	// ready + pending + one waiting per pending invite must fit the queue.
	if c.MaxPending > (c.SendQueue-2)/2 {
		c.MaxPending = (c.SendQueue - 2) / 2
	}
	if c.RateLimit <= 0 {
		c.RateLimit = 50
	}
	if c.RateBurst <= 0 {
		c.RateBurst = 100
	}
	if c.RateWait <= 0 {
		c.RateWait = 2 * time.Second
	}
	if c.InboundRateLimit <= 0 {
		c.InboundRateLimit = 4 * c.RateLimit
	}
	if c.InboundBurst <= 0 {
		c.InboundBurst = 2 * c.RateBurst
	}
	if c.MaxStrikes <= 0 {
		c.MaxStrikes = 20
	}
	if c.MaxConnsPerAddr <= 0 {
		c.MaxConnsPerAddr = 64
	}
	if c.ConnRate <= 0 {
		c.ConnRate = 5
	}
	if c.ConnBurst <= 0 {
		c.ConnBurst = 20
	}
	if c.LogRate <= 0 {
		c.LogRate = 1
	}
	if c.LogBurst <= 0 {
		c.LogBurst = 10
	}
	if c.MaxRoomSize <= 0 {
		c.MaxRoomSize = 8
	}
	if c.RoomJoinTimeout <= 0 {
		c.RoomJoinTimeout = 5 * time.Second
	}
	if c.RoomGrace <= 0 {
		c.RoomGrace = 10 * time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 45 * time.Second
	}
	if c.MessageTimeout <= 0 {
		c.MessageTimeout = 10 * time.Second
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 20 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	} else {
		c.Logger = slog.New(newLimitedHandler(c.Logger.Handler(), c.LogRate, c.LogBurst))
	}
	if c.NodeID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		c.NodeID = hex.EncodeToString(b[:])
	}
	return c
}
