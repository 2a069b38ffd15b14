package call

import (
	"net"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTurnUDPAddr(t *testing.T) {
	for _, tc := range []struct {
		url, addr string
		ok        bool
	}{
		{"turn:127.0.0.1:3478?transport=udp", "127.0.0.1:3478", true},
		{"turn:turn.example.net", "turn.example.net:3478", true},
		{"turn:[::1]:5349", "[::1]:5349", true},
		{"turn:turn.example.net:443?transport=tcp", "", false},
		{"turns:turn.example.net:443", "", false},
		{"stun:127.0.0.1:3478", "", false},
	} {
		addr, ok := turnUDPAddr(tc.url)
		assert.Equal(t, tc.ok, ok, tc.url)
		assert.Equal(t, tc.addr, addr, tc.url)
	}
}

// A relay that never answers is given up on after the timeout, and the
// error names it; with no TURN server over UDP the error says so.
func TestProbeRelaySilentAndMissing(t *testing.T) {
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer silent.Close()
	url := "turn:" + silent.LocalAddr().String() + "?transport=udp"
	start := time.Now()
	err = probeRelay([]webrtc.ICEServer{{URLs: []string{url}, Username: "1:u", Credential: "p"}}, 300*time.Millisecond)
	assert.Less(t, time.Since(start), 2*time.Second)
	require.Error(t, err)
	assert.Contains(t, err.Error(), url)

	err = probeRelay([]webrtc.ICEServer{{URLs: []string{"stun:127.0.0.1:3478"}}}, time.Second)
	assert.ErrorContains(t, err, "no TURN server over UDP")
}
