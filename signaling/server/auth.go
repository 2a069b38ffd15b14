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

// TokenAuth accepts tokens made by NewToken with the same secret, taken from
// an `Authorization: Bearer <token>` header or, for browsers (which cannot
// set headers on a WebSocket), a `token` query parameter.
type TokenAuth struct {
	Secret []byte
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

// Authenticate implements Authenticator.
func (a TokenAuth) Authenticate(r *http.Request) (string, error) {
	tok := RequestToken(r)
	if tok == "" {
		return "", ErrNoCredentials
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	return verifyToken(a.Secret, tok, now())
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
	if len(secret) == 0 || len(token) > 1024 {
		return "", ErrBadToken
	}
	i := strings.LastIndexByte(token, '.')
	if i < 0 {
		return "", ErrBadToken
	}
	payload, sig := token[:i], token[i+1:]
	mac, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(mac, tokenMAC(secret, payload)) {
		return "", ErrBadToken
	}
	parts := strings.Split(payload, ".")
	if len(parts) != 3 || parts[0] != tokenVersion {
		return "", ErrBadToken
	}
	user, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", ErrBadToken
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return "", ErrBadToken
	}
	if now.Unix() >= exp {
		return "", ErrTokenExpired
	}
	if err := ValidateUser(string(user)); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadToken, err)
	}
	return string(user), nil
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
