package site

import (
	"net/http"

	"github.com/dialtone-dev/dialtone/signaling/server"
)

// Authenticator returns the signaling server's Authenticator for the
// example server's two modes.
//
// With a secret, a request carrying a token (Authorization header or
// ?token=) must present a valid one made by server.NewToken under secret.
// In development mode a request without a token is trusted by name
// (?user=NAME, server.DevAuth), so the CLI dialer can connect with just a
// name; without development mode it is rejected. It returns ErrNoAuth when
// neither a secret nor development mode is given.
func Authenticator(secret []byte, dev bool) (server.Authenticator, error) {
	if len(secret) == 0 && !dev {
		return nil, ErrNoAuth
	}
	tokens := server.TokenAuth{Secret: secret}
	return server.AuthenticatorFunc(func(r *http.Request) (string, error) {
		if len(secret) > 0 && server.RequestToken(r) != "" {
			return tokens.Authenticate(r)
		}
		if !dev {
			return "", server.ErrNoCredentials
		}
		return server.DevAuth{}.Authenticate(r)
	}), nil
}
