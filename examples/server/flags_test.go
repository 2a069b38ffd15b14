package main

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func envMap(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// TestParseFlags covers defaults, DIALTONE_* fallbacks, the command line
// taking precedence, and the combinations that are refused.
func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-dev"}, envMap(), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:8080", o.addr)
	assert.Equal(t, []string{"localhost", "127.0.0.1"}, o.hosts)
	assert.Equal(t, time.Hour, o.turnTTL)
	assert.Equal(t, 10*time.Second, o.shutdownTimeout)
	assert.False(t, o.metrics, "metrics are not public by default")
	assert.Empty(t, o.metricsAddr)
	assert.False(t, o.selfSigned)

	o, err = parseFlags(nil, envMap(
		"DIALTONE_ADDR", ":9000",
		"DIALTONE_SECRET", "s",
		"DIALTONE_TURN_URL", "turn:a:3478, turn:b:3478",
		"DIALTONE_TURN_SECRET", "ts",
		"DIALTONE_SELF_SIGNED", "true",
		"DIALTONE_HOST", "phone.lan,10.0.0.2",
		"DIALTONE_METRICS", "false",
		"DIALTONE_SHUTDOWN_TIMEOUT", "3s",
	), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, ":9000", o.addr)
	assert.Equal(t, "s", o.secret)
	assert.Equal(t, []string{"turn:a:3478", "turn:b:3478"}, o.turnURLs)
	assert.True(t, o.selfSigned)
	assert.Equal(t, []string{"phone.lan", "10.0.0.2"}, o.hosts)
	assert.False(t, o.metrics)
	assert.Equal(t, 3*time.Second, o.shutdownTimeout)

	// The command line replaces environment values, lists included.
	o, err = parseFlags([]string{"-addr", ":1", "-dev-remote", "-turn-url", "turn:c:3478", "-turn-url", "turn:d:3478"},
		envMap("DIALTONE_DEV", "1", "DIALTONE_ADDR", ":2", "DIALTONE_TURN_URL", "turn:a:3478", "DIALTONE_TURN_SECRET", "x"), io.Discard)
	require.NoError(t, err)
	assert.True(t, o.dev)
	assert.Equal(t, ":1", o.addr)
	assert.Equal(t, []string{"turn:c:3478", "turn:d:3478"}, o.turnURLs)

	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "-secret"},
		{[]string{"-dev", "-tls-cert", "c.pem"}, "go together"},
		{[]string{"-dev", "-tls-cert", "c", "-tls-key", "k", "-self-signed"}, "exclude"},
		{[]string{"-dev", "-turn-url", "turn:a:3478"}, "-turn-secret"},
		{[]string{"-dev", "-turn-relay-ip", "nope"}, "not an IP"},
		{[]string{"-dev", "-turn-ttl", "0"}, "-turn-ttl"},
		{[]string{"-dev", "-turn-ttl", "-1h"}, "-turn-ttl"},
		{[]string{"-dev", "extra"}, "unexpected"},
		{[]string{"-nope"}, "not defined"},
		// Development mode where others can reach it needs -dev-remote.
		{[]string{"-dev", "-addr", ":8080"}, "-dev-remote"},
		{[]string{"-dev", "-addr", "0.0.0.0:8080"}, "-dev-remote"},
		{[]string{"-dev", "-addr", "192.168.1.20:8080"}, "-dev-remote"},
		{[]string{"-dev", "-addr", "[::]:8080"}, "-dev-remote"},
	} {
		_, err := parseFlags(tt.args, envMap(), io.Discard)
		require.Error(t, err, "%q", tt.args)
		assert.Contains(t, err.Error(), tt.want, "%q", tt.args)
	}
	_, err = parseFlags(nil, envMap("DIALTONE_DEV", "1", "DIALTONE_TURN_TTL", "soon"), io.Discard)
	assert.ErrorContains(t, err, "DIALTONE_TURN_TTL")
	for _, addr := range []string{"127.0.0.1:0", "localhost:8080", "[::1]:8080", "127.1.2.3:80"} {
		_, err = parseFlags([]string{"-dev", "-addr", addr}, envMap(), io.Discard)
		assert.NoError(t, err, addr)
	}
	_, err = parseFlags([]string{"-dev", "-dev-remote", "-addr", ":8080"}, envMap(), io.Discard)
	assert.NoError(t, err)
}

// TestRun starts the real program on a free port and stops it through its
// context, as SIGINT would.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var logs strings.Builder
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-dev", "-addr", "127.0.0.1:0", "-self-signed", "-turn-addr", "127.0.0.1:0", "-turn-allow-loopback"},
			envMap(), &syncWriter{w: &logs})
	}()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
	assert.Error(t, run(context.Background(), []string{"-dev", "-dev-remote", "-addr", "256.0.0.1:1"}, envMap(), io.Discard))
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
