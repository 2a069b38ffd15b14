package negotiation

import (
	"log/slog"
	"time"

	"github.com/pion/webrtc/v4"
)

// Default values applied by New for zero Config fields.
const (
	// DefaultDisconnectedGrace is how long ICE may stay "disconnected"
	// before the negotiator restarts it. pion itself declares
	// "disconnected" only after its own disconnected timeout (5 s by
	// default), so the grace is short: a link that comes back on its own
	// within it needs no restart.
	DefaultDisconnectedGrace = time.Second

	// DefaultMaxFailedRestarts is how many ICE restarts the negotiator tries
	// after ICE reached "failed" before it reports ErrICEFailed.
	DefaultMaxFailedRestarts = 1

	// DefaultRemoteRestartHold is the longest the candidates of a far-side
	// ICE restart are held (see Config.RemoteRestartHold): long enough for
	// the answer to cross the signaling path and be applied.
	DefaultRemoteRestartHold = 2 * time.Second
)

// Config configures a Negotiator. The zero value of every field except Send
// is usable; defaults are documented per field.
type Config struct {
	// Polite selects the polite role of perfect negotiation. Exactly one
	// side of a connection must be polite (the call layer typically makes
	// the callee polite). The polite side gives way when offers collide.
	Polite bool

	// Send delivers a Signal to the far side's HandleSignal, in order.
	// Required. It is called from the negotiator's goroutine and should
	// not block for long; it must not call this Negotiator's HandleSignal
	// or Close, nor the far side's HandleSignal synchronously. An error is
	// logged (see Known limits in the package documentation).
	Send func(Signal) error

	// WaitForOffer makes this side leave the first offer to the far side:
	// negotiation-needed before the first remote description is ignored,
	// and tracks added before then are answered into the far side's
	// m-lines. A callee that knows the caller offers first avoids a glare
	// (and its extra offer) on every call set-up. Renegotiation after that
	// is unaffected.
	WaitForOffer bool

	// Logger receives debug and warning logs. Default: discard.
	Logger *slog.Logger

	// DisconnectedGrace is how long ICE may stay "disconnected" before an
	// ICE restart. Default DefaultDisconnectedGrace (1 s). Negative
	// disables restarts on "disconnected".
	DisconnectedGrace time.Duration

	// MaxFailedRestarts is how many ICE restarts are attempted once ICE
	// reports "failed" before the failure is reported. Zero means
	// DefaultMaxFailedRestarts (1); negative means none (report at once).
	// The count resets whenever ICE connects again.
	MaxFailedRestarts int

	// RemoteRestartHold bounds how long, when the far side (a full ICE
	// agent) restarts ICE by offering and this side is the controlling
	// ICE agent, the far side's new candidates are held back from pion:
	// until the far side's own checks have reached us, which proves it
	// has applied our answer, or this long at most. Checks, and above all
	// the one nomination pion makes, that reach a browser before it has
	// our answer can be lost (Firefox loses the nomination and never
	// switches to the new connection). Default DefaultRemoteRestartHold
	// (2 s). Negative hands them over at once.
	RemoteRestartHold time.Duration

	// OnFailed, if set, is called once with an error wrapping ErrICEFailed
	// when the negotiator gives up (Done is closed just before). It is
	// called from the negotiator's goroutine, so it may use Counters, Err,
	// Done, RestartICE and Negotiate but must not call HandleSignal or
	// Close, which wait for that goroutine; to close on failure, do it
	// from the owner's goroutine (for example when Done is closed).
	OnFailed func(error)

	// OnICEConnectionStateChange, if set, is told every ICE connection
	// state change (the negotiator owns the PeerConnection's handler).
	// Called from the negotiator's goroutine.
	OnICEConnectionStateChange func(webrtc.ICEConnectionState)
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.DisconnectedGrace == 0 {
		c.DisconnectedGrace = DefaultDisconnectedGrace
	}
	if c.MaxFailedRestarts == 0 {
		c.MaxFailedRestarts = DefaultMaxFailedRestarts
	}
	if c.RemoteRestartHold == 0 {
		c.RemoteRestartHold = DefaultRemoteRestartHold
	}
	if c.MaxFailedRestarts < 0 {
		c.MaxFailedRestarts = 0
	}
	return c
}
