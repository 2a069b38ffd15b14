package server

import "errors"

// Sentinel errors.
var (
	// ErrServerClosed is returned by ConnectLocal (and answered with HTTP 503)
	// once Shutdown or Close has begun.
	ErrServerClosed = errors.New("server: closed")
	// ErrBadToken is returned by VerifyToken for a token that is not well
	// formed or whose signature does not match.
	ErrBadToken = errors.New("server: bad token")
	// ErrTokenExpired is returned by VerifyToken for an expired token.
	ErrTokenExpired = errors.New("server: token expired")
	// ErrTokenRevoked is returned by TokenAuth when its Check hook refuses
	// a token.
	ErrTokenRevoked = errors.New("server: token revoked")
	// ErrNoCredentials is returned by an Authenticator when the request
	// carries none.
	ErrNoCredentials = errors.New("server: no credentials")
	// ErrBadUser is returned for a user ID that is empty, too long or
	// contains control characters.
	ErrBadUser = errors.New("server: invalid user ID")
	// ErrNoAuthenticator is returned when the Config has neither an
	// Authenticator nor DevMode: every connection is rejected.
	ErrNoAuthenticator = errors.New("server: no authenticator configured")
	// ErrPushStatus is returned by Webhook.Push for a non-2xx answer.
	ErrPushStatus = errors.New("server: push hook answered with an error status")
	// ErrNotReady is returned by Ready (and answered with HTTP 503) while
	// the server has not joined its cluster yet: its Broker's backend is
	// unreachable and the join is being retried.
	ErrNotReady = errors.New("server: not in the cluster yet")
	// ErrBroker wraps a Broker failure that refuses a connection (the node
	// could not record the user's presence).
	ErrBroker = errors.New("server: cluster broker failed")
	// ErrNodeExists is returned by a Broker's Join for a node ID already
	// joined.
	ErrNodeExists = errors.New("server: node ID already in the cluster")
	// ErrUnknownRoom is returned by a Config.RoomJoin hook for a room that
	// does not exist: the join is answered `unknown-room` (any other error
	// is answered `forbidden`).
	ErrUnknownRoom = errors.New("server: unknown room")
	// ErrConfig is returned by Config.Validate for a configuration New
	// cannot serve as asked.
	ErrConfig = errors.New("server: invalid config")
	// ErrTURNConfig is returned by NewTURN for an unusable TURNConfig.
	ErrTURNConfig = errors.New("server: invalid TURN config")
)
