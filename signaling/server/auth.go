package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dialtone-dev/dialtone/signaling"
)

// Authenticator decides who a WebSocket request is. It runs before the
// upgrade; an error answers HTTP 401. The returned user ID becomes the
// connection's identity and the `from` of everything it sends.
type Authenticator interface {
	Authenticate(r *http.Request) (user string, err error)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(r *http.Request) (string, error)

// Authenticate calls f(r).
func (f AuthenticatorFunc) Authenticate(r *http.Request) (string, error) { return f(r) }

// ExpiringAuthenticator is an Authenticator whose credentials expire. The
// Server ends a connection when its credentials do (error
// `token-expired`, close code 4002); the client reconnects with fresh ones
// (signaling.DialConfig.TokenFunc). TokenAuth is one.
type ExpiringAuthenticator interface {
	Authenticator
	// AuthenticateExpiry is Authenticate that also returns when the
	// credentials expire (zero: never).
	AuthenticateExpiry(r *http.Request) (user string, expires time.Time, err error)
}

// DefaultMaxTokenLifetime is TokenAuth's MaxLifetime when none is set.
const DefaultMaxTokenLifetime = 24 * time.Hour

// TokenAuth accepts tokens made by NewToken with the same secret, taken from
// an `Authorization: Bearer <token>` header or, for browsers (which cannot
// set headers on a WebSocket), a `token` query parameter. A connection
// lives no longer than its token: the Server closes it at the token's
// expiry.
type TokenAuth struct {
	Secret []byte
	// Now returns the current time; default time.Now.
	Now func() time.Time
	// MaxLifetime refuses tokens that expire further ahead than this, so a
	// leaked token is of use for a bounded time whatever TTL it was made
	// with. Default DefaultMaxTokenLifetime (24 h).
	MaxLifetime time.Duration
	// Check, when set, is asked about every token that verified: an error
	// refuses it (wrapped in ErrTokenRevoked). It is the hook for
	// revocation: e.g. with tokens minted for a TTL T, refuse a user's
	// tokens that expire less than T after the moment the user signed out
	// everywhere (they were minted before it), then end the user's live
	// connections with Server.Revoke.
	Check func(user string, expires time.Time) error
}

// Authenticate implements Authenticator.
func (a TokenAuth) Authenticate(r *http.Request) (string, error) {
	user, _, err := a.AuthenticateExpiry(r)
	return user, err
}

// AuthenticateExpiry implements ExpiringAuthenticator.
func (a TokenAuth) AuthenticateExpiry(r *http.Request) (string, time.Time, error) {
	tok := RequestToken(r)
	if tok == "" {
		return "", time.Time{}, ErrNoCredentials
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	t := now()
	user, exp, err := parseToken(a.Secret, tok, t)
	if err != nil {
		return "", time.Time{}, err
	}
	max := a.MaxLifetime
	if max <= 0 {
		max = DefaultMaxTokenLifetime
	}
	if exp.Sub(t) > max {
		return "", time.Time{}, fmt.Errorf("%w: expires in %v, more than the %v allowed", ErrBadToken, exp.Sub(t).Round(time.Second), max)
	}
	if a.Check != nil {
		if err := a.Check(user, exp); err != nil {
			return "", time.Time{}, fmt.Errorf("%w: %w", ErrTokenRevoked, err)
		}
	}
	return user, exp, nil
}

// authenticate runs the configured Authenticator, with the expiry when it
// has one.
func (s *Server) authenticate(r *http.Request) (string, time.Time, error) {
	if ea, ok := s.cfg.Authenticator.(ExpiringAuthenticator); ok {
		return ea.AuthenticateExpiry(r)
	}
	user, err := s.cfg.Authenticator.Authenticate(r)
	return user, time.Time{}, err
}

// RequestToken returns the bearer token of r: the Authorization header's,
// else the `token` query parameter, else "".
func RequestToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
	}
	return r.URL.Query().Get("token")
}

// DevAuth trusts the `user` query parameter (or a bearer token used as a
// plain user name). It is for development and demos only: anyone can be
// anyone. Config.DevMode selects it.
type DevAuth struct{}

// Authenticate implements Authenticator.
func (DevAuth) Authenticate(r *http.Request) (string, error) {
	u := r.URL.Query().Get("user")
	if u == "" {
		u = RequestToken(r)
	}
	if u == "" {
		return "", ErrNoCredentials
	}
	return u, ValidateUser(u)
}

const tokenVersion = "v1"

// NewToken returns a token for user that expires after ttl, signed with
// HMAC-SHA256 under secret. Format: v1.<base64url(user)>.<unix expiry>.<base64url(mac)>.
func NewToken(secret []byte, user string, ttl time.Duration) (string, error) {
	return newToken(secret, user, time.Now().Add(ttl))
}

func newToken(secret []byte, user string, expiry time.Time) (string, error) {
	if len(secret) == 0 {
		return "", fmt.Errorf("server: empty token secret")
	}
	if err := ValidateUser(user); err != nil {
		return "", err
	}
	payload := tokenVersion + "." + base64.RawURLEncoding.EncodeToString([]byte(user)) +
		"." + strconv.FormatInt(expiry.Unix(), 10)
	return payload + "." + base64.RawURLEncoding.EncodeToString(tokenMAC(secret, payload)), nil
}

// VerifyToken checks a token made by NewToken and returns its user. Errors
// wrap ErrBadToken or ErrTokenExpired.
func VerifyToken(secret []byte, token string) (string, error) {
	return verifyToken(secret, token, time.Now())
}

func verifyToken(secret []byte, token string, now time.Time) (string, error) {
	user, _, err := parseToken(secret, token, now)
	return user, err
}

// parseToken verifies token and returns its user and expiry.
func parseToken(secret []byte, token string, now time.Time) (string, time.Time, error) {
	user, exp, err := parseTokenUnix(secret, token, now)
	return user, time.Unix(exp, 0), err
}

func parseTokenUnix(secret []byte, token string, now time.Time) (string, int64, error) {
	if len(secret) == 0 || len(token) > 1024 {
		return "", 0, ErrBadToken
	}
	i := strings.LastIndexByte(token, '.')
	if i < 0 {
		return "", 0, ErrBadToken
	}
	payload, sig := token[:i], token[i+1:]
	// Strict: one token has one spelling (a lax decoder takes 4 spellings
	// of the last character), so a list of refused tokens cannot be
	// sidestepped by respelling one.
	mac, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil || !hmac.Equal(mac, tokenMAC(secret, payload)) {
		return "", 0, ErrBadToken
	}
	parts := strings.Split(payload, ".")
	if len(parts) != 3 || parts[0] != tokenVersion {
		return "", 0, ErrBadToken
	}
	user, err := base64.RawURLEncoding.Strict().DecodeString(parts[1])
	if err != nil {
		return "", 0, ErrBadToken
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return "", 0, ErrBadToken
	}
	if now.Unix() >= exp {
		return "", 0, ErrTokenExpired
	}
	if err := ValidateUser(string(user)); err != nil {
		return "", 0, fmt.Errorf("%w: %w", ErrBadToken, err)
	}
	return string(user), exp, nil
}

func tokenMAC(secret []byte, payload string) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(payload))
	return h.Sum(nil)
}

// ValidateUser checks a user ID: non-empty valid UTF-8, at most
// signaling.MaxIDLength bytes, no control or space characters, no ':'
// (it separates expiry and user in TURN usernames).
func ValidateUser(u string) error {
	if u == "" || len(u) > signaling.MaxIDLength || !utf8.ValidString(u) {
		return ErrBadUser
	}
	for _, r := range u {
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == ':' {
			return ErrBadUser
		}
	}
	return nil
}
