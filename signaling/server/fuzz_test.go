package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/signaling"
)

// FuzzServerFrames feeds arbitrary frames to the core from one user and
// checks it never panics, and that whatever reaches another user carries
// the sender's real identity.
func FuzzServerFrames(f *testing.F) {
	for _, s := range []string{
		`{"type":"invite","from":"bob","to":"bob","call":"c","data":{"displayName":"x"}}`,
		`{"type":"signal","to":"bob","call":"c","data":{"candidate":{}}}`,
		`{"type":"relay"}`, `{"type":"ready"}`, `{"type":"hangup","to":"ghost","call":"c"}`,
		`{"type":"`, `[]`, "\x00", `{"type":"error","to":"bob"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		s := New(Config{DevMode: true, Pusher: PusherFunc(func(context.Context, Push) error { return nil }),
			MaxMessageSize: 4096})
		defer s.Close()
		ctx := context.Background()
		mallory, err := s.ConnectLocal(ctx, "mallory", LocalOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer mallory.Close()
		bob, err := s.ConnectLocal(ctx, "bob", LocalOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer bob.Close()
		<-mallory.Incoming()
		<-bob.Incoming()
		c := mallory.current()
		if c == nil {
			t.Fatal("not attached")
		}
		s.hub.handle(c, frame)
		// Barrier: a known message after the fuzzed one.
		s.hub.handle(c, []byte(`{"type":"busy","to":"bob","call":"end"}`))
		for {
			m := <-bob.Incoming()
			if m.From != "mallory" {
				t.Fatalf("bob got %+v: from not overwritten", m)
			}
			if m.Type == signaling.TypeBusy && m.Call == "end" {
				break
			}
		}
	})
}

// FuzzToken feeds arbitrary tokens to the verifier: it never panics, and
// a token it accepts is one the secret signed, for a valid user, not yet
// expired.
func FuzzToken(f *testing.F) {
	secret := []byte("fuzz-secret")
	now := time.Unix(1_800_000_000, 0)
	good, err := newToken(secret, "alice", now.Add(time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{good, "", ".", "v1...", "v1.YWxpY2U.1.x", good + "x", strings.Replace(good, "v1", "v2", 1)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		user, exp, err := parseTokenUnix(secret, token, now)
		if err != nil {
			return
		}
		if exp <= now.Unix() || ValidateUser(user) != nil {
			t.Fatalf("accepted %q: user %q, expiry %d", token, user, exp)
		}
		again, err := newToken(secret, user, time.Unix(exp, 0))
		if err != nil || again != token {
			t.Fatalf("accepted %q, which the secret signs as %q (%v)", token, again, err)
		}
	})
}
