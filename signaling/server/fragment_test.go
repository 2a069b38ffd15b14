package server

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// A fragmented message that never ends closes the connection within
// MessageTimeout, even while the client keeps it alive with pongs.
func TestUnfinishedMessageBounded(t *testing.T) {
	s := newTestServer(t, Config{MessageTimeout: 300 * time.Millisecond})
	url := startHTTP(t, s)
	d := websocket.Dialer{WriteBufferSize: 256}
	ws, resp, err := d.Dial(url+"?user=slowloris", nil)
	require.NoError(t, err)
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = ws.Close() })
	rawRecv(t, ws) // ready

	w, err := ws.NextWriter(websocket.TextMessage)
	require.NoError(t, err)
	_, err = w.Write([]byte(`{"type":"signal","to":"x","call":"c","data":{"pad":"` + strings.Repeat("x", 1024)))
	require.NoError(t, err) // the first frames went out; the message stays open

	closed := make(chan struct{})
	go func() {
		defer close(closed)
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(3 * time.Second)
	for {
		select {
		case <-closed:
			require.Eventually(t, func() bool { return !s.Online("slowloris") }, waitFor, 10*time.Millisecond)
			return
		case <-tick.C:
			_ = ws.WriteControl(websocket.PongMessage, nil, time.Now().Add(time.Second))
		case <-deadline:
			require.FailNow(t, "the unfinished message held its connection")
		}
	}
}
