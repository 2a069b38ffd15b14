package signaling

import "errors"

// Sentinel errors. Callers branch on them with errors.Is.
var (
	// ErrDisconnected is returned by Transport.Send while the connection is
	// down (a reconnect may be in progress). Send never queues across a drop.
	ErrDisconnected = errors.New("signaling: disconnected")
	// ErrClosed is returned after the Transport has been closed or has stopped
	// for good (see Status).
	ErrClosed = errors.New("signaling: transport closed")
	// ErrUnauthorized means the server rejected the credentials (HTTP 401).
	// It is never retried.
	ErrUnauthorized = errors.New("signaling: unauthorized")
	// ErrConnect wraps a network-level failure to reach the server (DNS, TCP,
	// TLS, HTTP status other than 401, WebSocket handshake). The underlying
	// error is wrapped as well.
	ErrConnect = errors.New("signaling: cannot connect")
	// ErrReadyTimeout means the connection was established but the server
	// did not send `ready` in time.
	ErrReadyTimeout = errors.New("signaling: timed out waiting for ready")
	// ErrReplaced means another connection of the same user took over. The
	// WebSocket Client reports it on Status and reconnects, more slowly after
	// each replacement that follows soon after the last (two devices then
	// take turns instead of evicting each other in a loop); with
	// DialConfig.StopWhenReplaced it stops with ErrReplaced.
	ErrReplaced = errors.New("signaling: connection replaced by a newer one")
	// ErrServerShutdown means the server told the client it is shutting down.
	// A WebSocket client reconnects with backoff after it.
	ErrServerShutdown = errors.New("signaling: server shutting down")

	// ErrEmpty is returned by Decode for an empty input.
	ErrEmpty = errors.New("signaling: empty message")
	// ErrTooLarge is returned by Decode when the input exceeds the size limit.
	ErrTooLarge = errors.New("signaling: message too large")
	// ErrMalformed is returned by Decode for input that is not a JSON object
	// of the envelope's shape.
	ErrMalformed = errors.New("signaling: malformed message")
	// ErrMissingType is returned by Decode when the envelope has no type.
	ErrMissingType = errors.New("signaling: missing message type")
	// ErrUnknownType is returned by Decode for a type name that no protocol
	// version could define (see MaxTypeLength). A well-formed type this
	// version does not know is not an error: peers ignore it, servers relay
	// it.
	ErrUnknownType = errors.New("signaling: unknown message type")
	// ErrInvalidUTF8 is wrapped (with ErrMalformed) by Decode, and returned
	// by Encode, for data that is not valid UTF-8: a WebSocket text frame
	// must be, and browsers close the connection over one that is not.
	ErrInvalidUTF8 = errors.New("signaling: invalid UTF-8")
	// ErrNoData is returned by Message.Unmarshal when the message has no data.
	ErrNoData = errors.New("signaling: message has no data")
)
