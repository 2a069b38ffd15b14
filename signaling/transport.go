package signaling

import (
	"context"
	"time"
)

// Transport is a client's connection to the signaling server, as the call
// layer sees it. Implementations: the WebSocket client returned by [Dial],
// and the in-process connection of package signaling/server.
type Transport interface {
	// Send sends m to the server (m.From is ignored: the server sets it).
	// It fails fast with ErrDisconnected while the connection is down and
	// with ErrClosed after Close.
	Send(ctx context.Context, m Message) error
	// Incoming delivers every message the server sends, in order, including
	// each `ready` (the first one and one per reconnection). It is closed
	// when the transport stops for good: by Close, or a terminal failure
	// reported on Status (replaced, unauthorized).
	Incoming() <-chan Message
	// Status reports connection changes. Sending to it never blocks the
	// transport: a reader that falls far behind loses the oldest changes.
	// It is closed with Incoming.
	Status() <-chan Status
	// Ready returns the latest ready information.
	Ready() Ready
	// Close stops the transport and every goroutine it started.
	Close() error
}

// State is a connection state reported on Transport.Status.
type State int

// Connection states.
const (
	// StateDown: the connection dropped; the transport is reconnecting (if
	// it can). Send fails with ErrDisconnected until StateUp.
	StateDown State = iota + 1
	// StateUp: the connection is back and the server sent `ready` again.
	StateUp
	// StateClosed: the transport stopped for good; Status.Err says why
	// (nil after Close).
	StateClosed
)

// String returns "down", "up" or "closed".
func (s State) String() string {
	switch s {
	case StateDown:
		return "down"
	case StateUp:
		return "up"
	case StateClosed:
		return "closed"
	}
	return "unknown"
}

// Status is one connection change.
type Status struct {
	State State
	// Err is the cause of a StateDown or StateClosed.
	Err error
	// Attempt counts reconnection attempts since the last StateDown (StateUp
	// carries the attempt that succeeded).
	Attempt int
	// Time is when the change happened.
	Time time.Time
}
