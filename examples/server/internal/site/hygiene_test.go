package site

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serve runs s.Serve on a loopback listener until the test ends and
// returns its address.
func serve(t *testing.T, s *Site) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln, nil) }()
	t.Cleanup(func() {
		stop()
		<-served
	})
	return ln.Addr().String()
}

// closedWithin reports whether the server closes c within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return err == nil || !errors.As(err, &ne) || !ne.Timeout()
}

// An idle keep-alive connection is closed after IdleTimeout; /healthz
// tells nothing about the users.
func TestIdleConnectionClosed(t *testing.T) {
	s := newSite(t, Config{Dev: true, IdleTimeout: 200 * time.Millisecond})
	addr := serve(t, s)
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.JSONEq(t, `{"status":"ok"}`, string(body))
	assert.True(t, closedWithin(c, 3*time.Second), "the idle keep-alive connection stayed open")
}

// One address holds at most MaxConnsPerAddr connections, whatever they do.
func TestConnectionsPerAddressCapped(t *testing.T) {
	s := newSite(t, Config{Dev: true, MaxConnsPerAddr: 3})
	addr := serve(t, s)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		conns = append(conns, c)
	}
	extra, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer extra.Close()
	assert.True(t, closedWithin(extra, 3*time.Second), "a 4th connection from the address was kept")
	for _, c := range conns {
		assert.False(t, closedWithin(c, 50*time.Millisecond), "the first three stay")
	}
	// Once one goes, another may come.
	_ = conns[0].Close()
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		defer c.Close()
		_, err = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(c)
		return strings.Contains(string(b), `"status":"ok"`)
	}, 3*time.Second, 20*time.Millisecond)
}
