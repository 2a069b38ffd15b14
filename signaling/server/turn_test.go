package server

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/pion/turn/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newTestTURN(t *testing.T, secret []byte) *TURN {
	t.Helper()
	relay, err := NewTURN(TURNConfig{ListenAddr: "127.0.0.1:0", Secret: secret, AllowLoopbackPeers: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = relay.Close() })
	return relay
}

// allocate asks the relay for an allocation with pion/turn's client.
func allocate(t *testing.T, relay *TURN, username, password string) (net.PacketConn, error) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: relay.Addr().String(),
		TURNServerAddr: relay.Addr().String(),
		Conn:           conn,
		Username:       username,
		Password:       password,
		Realm:          "dialtone",
		LoggerFactory:  slogFactory{log: discardLogger()},
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		c.Close()
		_ = conn.Close()
	})
	require.NoError(t, c.Listen())
	rc, err := c.Allocate()
	if err == nil {
		t.Cleanup(func() { _ = rc.Close() })
	}
	return rc, err
}

// The credentials the signaling server hands out in `ready` allocate a
// relay on the embedded TURN, and data flows through it both ways.
func TestTURNAcceptsServerCredentials(t *testing.T) {
	secret := []byte("turn-secret")
	relay := newTestTURN(t, secret)
	s := newTestServer(t, Config{TURNURLs: relay.URLs(), TURNSecret: secret})
	alice := connectLocal(t, s, "alice", LocalOptions{})
	servers := alice.Ready().ICEServers
	require.Len(t, servers, 1)
	assert.Equal(t, relay.URLs(), servers[0].URLs)

	rc, err := allocate(t, relay, servers[0].Username, servers[0].Credential)
	require.NoError(t, err)

	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = peer.Close() })
	require.NoError(t, peer.SetDeadline(time.Now().Add(waitFor)))
	require.NoError(t, rc.SetDeadline(time.Now().Add(waitFor)))

	_, err = rc.WriteTo([]byte("hello"), peer.LocalAddr())
	require.NoError(t, err)
	buf := make([]byte, 64)
	n, from, err := peer.ReadFrom(buf)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(buf[:n]))
	assert.Equal(t, rc.LocalAddr().String(), from.String(), "came from the relayed address")

	_, err = peer.WriteTo([]byte("world"), from)
	require.NoError(t, err)
	n, _, err = rc.ReadFrom(buf)
	require.NoError(t, err)
	assert.Equal(t, "world", string(buf[:n]))
}

// Expired, forged or malformed credentials are refused.
func TestTURNRefusesBadCredentials(t *testing.T) {
	secret := []byte("turn-secret")
	relay := newTestTURN(t, secret)
	future := time.Now().Add(time.Hour)
	expiredU, expiredP := TURNCredentials(secret, "alice", time.Now().Add(-time.Minute))
	forgedU, forgedP := TURNCredentials([]byte("other-secret"), "alice", future)
	aliceU, aliceP := TURNCredentials(secret, "alice", future)
	_, bobP := TURNCredentials(secret, "bob", future)
	cases := []struct{ name, user, pass string }{
		{"expired", expiredU, expiredP},
		{"wrong secret", forgedU, forgedP},
		{"other user's password", aliceU, bobP},
		{"no expiry", "alice", aliceP},
		{"bad expiry", "soon:alice", aliceP},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := allocate(t, relay, tc.user, tc.pass)
			assert.Error(t, err)
		})
	}
}

func TestNewTURNConfigErrors(t *testing.T) {
	_, err := NewTURN(TURNConfig{ListenAddr: "127.0.0.1:0"})
	assert.ErrorIs(t, err, ErrTURNConfig)
	_, err = NewTURN(TURNConfig{ListenAddr: ":0", Secret: []byte("s")})
	assert.ErrorIs(t, err, ErrTURNConfig, "RelayIP needed on a wildcard address")
	_, err = NewTURN(TURNConfig{ListenAddr: "127.0.0.1:0", Secret: []byte("s"), PortRange: PortRange{Min: 5000, Max: 4000}})
	assert.ErrorIs(t, err, ErrTURNConfig)
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Without AllowLoopbackPeers a client cannot relay into the relay's own
// host: its permission for a loopback peer is refused and nothing arrives.
func TestTURNRefusesLoopbackPeerByDefault(t *testing.T) {
	secret := []byte("turn-secret")
	relay, err := NewTURN(TURNConfig{ListenAddr: "127.0.0.1:0", Secret: secret})
	require.NoError(t, err)
	t.Cleanup(func() { _ = relay.Close() })
	user, pass := TURNCredentials(secret, "alice", time.Now().Add(time.Hour))
	rc, err := allocate(t, relay, user, pass)
	require.NoError(t, err)

	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = peer.Close() })
	_, err = rc.WriteTo([]byte("hello"), peer.LocalAddr())
	assert.Error(t, err, "the permission for a loopback peer is refused")
	require.NoError(t, peer.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
	_, _, err = peer.ReadFrom(make([]byte, 64))
	assert.Error(t, err, "nothing relayed to the loopback peer")
}

// The peers a client may relay to: public addresses always; loopback and
// private or link-local networks only when the config allows each;
// unspecified and multicast never.
func TestTURNPeerPolicy(t *testing.T) {
	cases := []struct {
		peer                 string
		none, loopback, priv bool // permitted with nothing allowed, loopback allowed, private allowed
	}{
		{"203.0.113.7", true, true, true},
		{"2001:db8::1", true, true, true},
		{"127.0.0.1", false, true, false},
		{"::1", false, true, false},
		{"10.1.2.3", false, false, true},
		{"172.16.0.9", false, false, true},
		{"192.168.1.1", false, false, true},
		{"169.254.10.1", false, false, true},
		{"fd00::1", false, false, true},
		{"fe80::1", false, false, true},
		{"0.0.0.0", false, false, false},
		{"224.0.0.1", false, false, false},
	}
	for _, tc := range cases {
		ip := net.ParseIP(tc.peer)
		for _, c := range []struct {
			cfg  TURNConfig
			want bool
		}{
			{TURNConfig{}, tc.none},
			{TURNConfig{AllowLoopbackPeers: true}, tc.loopback},
			{TURNConfig{AllowPrivatePeers: true}, tc.priv},
		} {
			relay := &TURN{cfg: c.cfg}
			assert.Equal(t, c.want, relay.permit(nil, ip), "%s with %+v", tc.peer, c.cfg)
		}
	}
}
