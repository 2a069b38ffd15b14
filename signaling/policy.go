package signaling

// Error codes and close codes of the server's limits and credentials.
// (The other codes are beside Message.)
const (
	// CodeTokenExpired ends a connection whose credentials expired. The
	// client reconnects with fresh ones (DialConfig.TokenFunc).
	CodeTokenExpired = "token-expired"
	// CodeRevoked ends a connection whose user's credentials were revoked
	// (server.Server.Revoke). The client reconnects; the server's
	// authenticator decides whether it may.
	CodeRevoked = "revoked"
)

// WebSocket close codes beyond CloseReplaced.
const (
	// CloseTokenExpired closes a connection whose credentials expired.
	CloseTokenExpired = 4002
	// CloseRevoked closes a connection whose credentials were revoked.
	CloseRevoked = 4003
)

// RateLimited is the data of an `error` with code CodeRateLimited: the
// fields of Error, and which frame was dropped and when to try again. The
// envelope's `call` is the dropped message's call ID. The connection stays
// up: a client sends the message again after RetryAfter (the WebSocket
// Client does so by itself).
type RateLimited struct {
	Error
	// Seq is the dropped message's number among the data messages (text
	// or binary) the client sent on this connection: 1 for the first after
	// the handshake. Control frames are not counted.
	Seq uint64 `json:"seq,omitempty"`
	// RetryAfter is how long to wait before sending it again, in
	// milliseconds.
	RetryAfter int `json:"retryAfter,omitempty"`
}
