package site

import "errors"

// Sentinel errors.
var (
	// ErrNoSignaling: Config.Signaling is nil.
	ErrNoSignaling = errors.New("site: no signaling server")
	// ErrNoAuth: neither a token secret nor development mode was configured,
	// so nobody could ever connect.
	ErrNoAuth = errors.New("site: need a token secret or development mode")
	// ErrNoHosts: a self-signed certificate was asked for without host names.
	ErrNoHosts = errors.New("site: no host names for the certificate")
)
