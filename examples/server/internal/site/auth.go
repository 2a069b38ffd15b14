package site

import (
	"net/http"
	"time"

	"github.com/dialtone-dev/dialtone/signaling/server"
)

// Authenticator returns the signaling server's Authenticator for the
// example server's two modes.
//
// With a secret, a request carrying a token (Authorization header or
// ?token=) must present a valid one made by server.NewToken under secret,
// and its connection ends when the token expires
// (server.ExpiringAuthenticator). In development mode a request without a
// token is trusted by name (?user=NAME, server.DevAuth), so the CLI dialer
// can connect with just a name; without development mode it is rejected.
// It returns ErrNoAuth when neither a secret nor development mode is given.
func Authenticator(secret []byte, dev bool) (server.Authenticator, error) {
	if len(secret) == 0 && !dev {
		return nil, ErrNoAuth
	}
	return siteAuth{tokens: server.TokenAuth{Secret: secret}, dev: dev}, nil
}

type siteAuth struct {
	tokens server.TokenAuth
	dev    bool
}

// Authenticate implements server.Authenticator.
func (a siteAuth) Authenticate(r *http.Request) (string, error) {
	user, _, err := a.AuthenticateExpiry(r)
	return user, err
}

// AuthenticateExpiry implements server.ExpiringAuthenticator.
func (a siteAuth) AuthenticateExpiry(r *http.Request) (string, time.Time, error) {
	if len(a.tokens.Secret) > 0 && server.RequestToken(r) != "" {
		return a.tokens.AuthenticateExpiry(r)
	}
	if !a.dev {
		return "", time.Time{}, server.ErrNoCredentials
	}
	user, err := server.DevAuth{}.Authenticate(r)
	return user, time.Time{}, err
}
