package server

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/signaling"
)

// A token that expires further ahead than MaxLifetime is refused, whatever
// its signature: a leaked token is of use for a bounded time.
func TestTokenMaxLifetime(t *testing.T) {
	secret := []byte("s3cret")
	s := New(Config{Authenticator: TokenAuth{Secret: secret, MaxLifetime: 2 * time.Hour}})
	url := startHTTP(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err := signaling.Dial(ctx, url, signaling.DialConfig{Token: mustToken(t, secret, "alice", 100*365*24*time.Hour)})
	require.ErrorIs(t, err, signaling.ErrUnauthorized)
	_, err = signaling.Dial(ctx, url, signaling.DialConfig{Token: mustToken(t, secret, "alice", 3*time.Hour)})
	require.ErrorIs(t, err, signaling.ErrUnauthorized)
	c, err := signaling.Dial(ctx, url, signaling.DialConfig{Token: mustToken(t, secret, "alice", time.Hour)})
	require.NoError(t, err)
	require.NoError(t, c.Close())

	// The default is a day.
	_, _, err = TokenAuth{Secret: secret}.AuthenticateExpiry(requestWithToken(mustToken(t, secret, "a", 25*time.Hour)))
	assert.ErrorIs(t, err, ErrBadToken)
}

// A connection lives no longer than its token: at expiry the server
// closes it (token-expired, 4002) and the client reconnects at once with
// a fresh token from TokenFunc.
func TestTokenExpiryClosesConnection(t *testing.T) {
	secret := []byte("s3cret")
	s := New(Config{Authenticator: TokenAuth{Secret: secret}})
	url := startHTTP(t, s)
	var minted atomic.Int32
	cfg := signaling.DialConfig{TokenFunc: func(context.Context) (string, error) {
		minted.Add(1)
		// Expiries have a resolution of a second: this one is 1-2 s away.
		return NewToken(secret, "alice", 2*time.Second)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := signaling.Dial(ctx, url, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	recvType(t, c, signaling.TypeReady)

	e := recvError(t, c)
	assert.Equal(t, signaling.CodeTokenExpired, e.Code)
	st := waitStatus(t, c, signaling.StateDown)
	var ce *websocket.CloseError
	require.ErrorAs(t, st.Err, &ce)
	assert.Equal(t, signaling.CloseTokenExpired, ce.Code)
	waitStatus(t, c, signaling.StateUp)
	recvType(t, c, signaling.TypeReady)
	assert.GreaterOrEqual(t, minted.Load(), int32(2), "the reconnection asked for a fresh token")
	assert.True(t, s.Online("alice"))
}

// Revocation: the Check hook refuses a user's tokens, and Server.Revoke
// ends the user's live connections (revoked, 4003); the client's attempt
// to reconnect is refused and it stops with ErrUnauthorized.
func TestRevoke(t *testing.T) {
	secret := []byte("s3cret")
	var mu sync.Mutex
	revoked := map[string]bool{}
	s := New(Config{Authenticator: TokenAuth{Secret: secret, Check: func(user string, _ time.Time) error {
		mu.Lock()
		defer mu.Unlock()
		if revoked[user] {
			return errors.New("signed out everywhere")
		}
		return nil
	}}})
	url := startHTTP(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	tok := mustToken(t, secret, "alice", time.Hour)
	c, err := signaling.Dial(ctx, url, signaling.DialConfig{Token: tok})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	recvType(t, c, signaling.TypeReady)

	mu.Lock()
	revoked["alice"] = true
	mu.Unlock()
	assert.Equal(t, 1, s.Revoke("alice"))
	assert.Equal(t, signaling.CodeRevoked, recvError(t, c).Code)
	st := waitStatus(t, c, signaling.StateDown)
	var ce *websocket.CloseError
	require.ErrorAs(t, st.Err, &ce)
	assert.Equal(t, signaling.CloseRevoked, ce.Code)
	st = waitStatus(t, c, signaling.StateClosed)
	assert.ErrorIs(t, st.Err, signaling.ErrUnauthorized)
	assert.False(t, s.Online("alice"))

	_, _, err = TokenAuth{Secret: secret, Check: func(string, time.Time) error { return errors.New("no") }}.
		AuthenticateExpiry(requestWithToken(tok))
	assert.ErrorIs(t, err, ErrTokenRevoked)
}

// A token has one spelling: the other spellings of its signature's last
// character, which a lax base64 decoder maps to the same bytes, are
// refused.
func TestTokenCanonical(t *testing.T) {
	secret := []byte("s3cret")
	now := time.Unix(1_800_000_000, 0)
	tok, err := newToken(secret, "alice", now.Add(time.Hour))
	require.NoError(t, err)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	accepted := 0
	for _, c := range alphabet {
		if _, _, err := parseTokenUnix(secret, tok[:len(tok)-1]+string(c), now); err == nil {
			accepted++
		}
	}
	assert.Equal(t, 1, accepted)
}
