package server

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/dialtone-dev/dialtone/signaling"
)

// A client that stops reading while messages stream to it, then sends a
// frame over the hard limit: the server's close 1009 comes after the last
// complete frame, never inside one, and nothing follows it, however full
// the socket was.
func TestOversizedFrameWhileStreamingClosesCleanly(t *testing.T) {
	s := newTestServer(t, Config{MaxMessageSize: 1024, RateLimit: rate.Inf, SendQueue: 1 << 15})
	url := startHTTP(t, s)
	bob := dialRaw(t, url, "bob")
	alice := connectLocal(t, s, "alice", LocalOptions{})

	// Stream to bob, who does not read, until his socket is full and
	// messages wait in his queue: a frame is then half written.
	stop := make(chan struct{})
	streamed := make(chan struct{})
	go func() {
		defer close(streamed)
		m := msg(t, signaling.TypeSignal, "bob", "c", map[string]string{"pad": strings.Repeat("x", 700)})
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = alice.Send(context.Background(), m)
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-streamed
	})
	require.Eventually(t, func() bool {
		s.hub.mu.Lock()
		defer s.hub.mu.Unlock()
		c := s.hub.users["bob"]
		return c != nil && c.queued.Load() >= 32
	}, 30*time.Second, time.Millisecond, "bob's socket never filled")

	// A masked text frame announcing 1 MiB: over 8× MaxMessageSize.
	hdr := []byte{0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}
	binary.BigEndian.PutUint64(hdr[2:10], 1<<20)
	_, err := bob.conn.Write(hdr)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return !s.Online("bob") }, waitFor, time.Millisecond)

	// Now read everything: whole text frames of JSON, then close 1009, then
	// the end of the stream.
	require.NoError(t, bob.conn.SetReadDeadline(time.Now().Add(waitFor)))
	frames := 0
	for {
		op, payload, err := bob.readFrame()
		require.NoError(t, err, "after %d frames: no clean close", frames)
		if op == opText {
			_, err := signaling.Decode(payload, 0)
			require.NoError(t, err, "frame %d is not a message: %.80q", frames, payload)
			frames++
			continue
		}
		require.Equal(t, byte(opClose), op, "frame %d", frames)
		require.GreaterOrEqual(t, len(payload), 2)
		assert.Equal(t, 1009, int(binary.BigEndian.Uint16(payload)))
		break
	}
	n, err := bob.r.Read(make([]byte, 1))
	assert.Equal(t, 0, n, "bytes after the close frame")
	assert.ErrorIs(t, err, io.EOF)
}

// rawWS is a WebSocket client reading the server's frames byte-exact.
type rawWS struct {
	conn net.Conn
	r    *bufio.Reader
}

// dialRaw opens a WebSocket to url as user (dev mode) by hand and consumes
// `ready`.
func dialRaw(t *testing.T, url, user string) *rawWS {
	t.Helper()
	host := strings.TrimPrefix(url, "ws://")
	nc, err := net.Dial("tcp", host)
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	req := "GET /?user=" + user + " HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	_, err = io.WriteString(nc, req)
	require.NoError(t, err)
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(waitFor)))
	ws := &rawWS{conn: nc, r: bufio.NewReader(nc)}
	resp, err := http.ReadResponse(ws.r, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	op, payload, err := ws.readFrame()
	require.NoError(t, err)
	require.Equal(t, byte(opText), op)
	m, err := signaling.Decode(payload, 0)
	require.NoError(t, err)
	require.Equal(t, signaling.TypeReady, m.Type)
	return ws
}

// readFrame reads one frame, checking what RFC 6455 requires of a server's
// frames here: final, no reserved bits, unmasked, a known opcode, a
// minimal length encoding.
func (ws *rawWS) readFrame() (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(ws.r, h[:]); err != nil {
		return 0, nil, err
	}
	if h[0]&0xf0 != 0x80 || h[1]&0x80 != 0 {
		return 0, nil, errors.New("bad frame header " + string(rune(h[0])) + string(rune(h[1])))
	}
	op := h[0] & 0x0f
	switch op {
	case opText, opClose, opPing, opPong:
	default:
		return 0, nil, errors.New("unexpected opcode")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(ws.r, b[:]); err != nil {
			return 0, nil, err
		}
		if n = uint64(binary.BigEndian.Uint16(b[:])); n < 126 {
			return 0, nil, errors.New("non-minimal length")
		}
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(ws.r, b[:]); err != nil {
			return 0, nil, err
		}
		if n = binary.BigEndian.Uint64(b[:]); n <= 0xffff || n > 1<<24 {
			return 0, nil, errors.New("bad 64-bit length")
		}
	}
	if op >= opClose && n > 125 {
		return 0, nil, errors.New("control frame over 125 bytes")
	}
	payload := make([]byte, n)
	if k, err := io.ReadFull(ws.r, payload); err != nil {
		return op, payload[:k], err
	}
	return op, payload, nil
}
