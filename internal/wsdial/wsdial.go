// Package wsdial dials a signaling WebSocket the way every dialtone client
// does (signaling.Dial, signaling/socketio): with the default Dialer when
// the configuration names none, the handshake response's body closed, the
// HTTP status of a refused handshake in the error, and a read limit on the
// connection.
package wsdial

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// DefaultDialer returns the Dialer a client uses when its configuration
// names none: the environment's proxy, a 10 s handshake timeout.
func DefaultDialer() *websocket.Dialer {
	return &websocket.Dialer{Proxy: http.ProxyFromEnvironment, HandshakeTimeout: 10 * time.Second}
}

// Dial opens the WebSocket at url with d and the request header h, and
// limits the messages it reads to readLimit bytes. When the server
// answered the handshake with something else than an upgrade, status is
// its HTTP status code and the error names it ("HTTP 503 Service
// Unavailable: websocket: bad handshake"); status is 0 when no answer
// came.
func Dial(ctx context.Context, d *websocket.Dialer, url string, h http.Header, readLimit int) (ws *websocket.Conn, status int, err error) {
	ws, resp, err := d.DialContext(ctx, url, h)
	if resp != nil {
		status = resp.StatusCode
		if resp.Body != nil {
			_ = resp.Body.Close()
		}
	}
	if err != nil {
		if resp != nil {
			return nil, status, fmt.Errorf("HTTP %s: %w", resp.Status, err)
		}
		return nil, 0, err
	}
	ws.SetReadLimit(int64(readLimit))
	return ws, status, nil
}
