package main

import (
	"bytes"
	"io"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestMain also serves as the attackers' child process: run re-executes
// the test binary with attackerFlag.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == attackerFlag {
		os.Exit(attackerMain(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-attack", "connection-flood,malformed-flood", "-duration", "2s", "-rate", "20"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []string{"connection-flood", "malformed-flood"}, o.attacks)
	assert.Equal(t, 2*time.Second, o.duration)
	assert.Equal(t, 20.0, o.rate)

	o, err = parseFlags(nil, io.Discard)
	require.NoError(t, err)
	assert.Len(t, o.attacks, len(attacks()))

	for _, bad := range [][]string{{"-attack", "quiet"}, {"-attack", "nope"}, {"-rate", "0"}, {"-duration", "0s"}} {
		_, err := parseFlags(bad, io.Discard)
		assert.Error(t, err, "%v", bad)
	}
}

// TestAbuseSmoke runs every attack for a second at the default limits:
// no well-behaved user is disconnected or loses a round trip, every
// attacker got to send, and the server let through no more than its
// limits allow.
func TestAbuseSmoke(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	var out bytes.Buffer
	all := make([]string, 0, len(attacks()))
	for _, a := range attacks() {
		all = append(all, a.name)
	}
	rows, err := run(options{attacks: all, duration: time.Second, warmup: 200 * time.Millisecond, rate: 40, exe: exe}, &out)
	t.Log("\n" + out.String())
	require.NoError(t, err)
	require.Len(t, rows, 1+len(all))
	assert.Equal(t, "quiet", rows[0].attack)
	for _, r := range rows {
		assert.Zero(t, r.disconnects, r.attack)
		assert.Zero(t, r.lost, r.attack)
		assert.Positive(t, r.trips, r.attack)
		if r.attack == "quiet" {
			continue
		}
		assert.Positive(t, r.sent, "%s: the attacker sent nothing", r.attack)
		switch r.attack {
		case "invite-flood-reconnect", "big-invite-flood", "candidate-flood", "huge-sdp-flood":
			// One user's budget (burst 100, 50/s), whatever its reconnects.
			assert.LessOrEqual(t, float64(r.accepted), 100+50*r.wall.Seconds()+5, r.attack)
		case "nested-json-flood":
			// Refused by the decoder's depth limit: nothing reaches bob.
			assert.Zero(t, r.accepted, r.attack)
		case "connection-flood":
			// The per-address cap (64) less the pair's three.
			assert.LessOrEqual(t, r.accepted, int64(61), r.attack)
		case "malformed-flood":
			assert.Zero(t, r.accepted, r.attack)
		}
	}
}
