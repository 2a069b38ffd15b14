package wsdial

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A refused handshake names its HTTP status; an accepted one gives a
// connection that refuses messages over the read limit.
func TestDial(t *testing.T) {
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer ok" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		_ = ws.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 100)))
		_, _, _ = ws.ReadMessage()
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	_, status, err := Dial(ctx, DefaultDialer(), url, nil, 10)
	assert.Equal(t, http.StatusUnauthorized, status)
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	assert.Contains(t, err.Error(), "HTTP 401 Unauthorized")

	ws, status, err := Dial(ctx, DefaultDialer(), url, http.Header{"Authorization": {"Bearer ok"}}, 10)
	require.NoError(t, err)
	defer ws.Close()
	assert.Equal(t, http.StatusSwitchingProtocols, status)
	_, _, err = ws.ReadMessage()
	assert.ErrorIs(t, err, websocket.ErrReadLimit)

	_, status, err = Dial(ctx, DefaultDialer(), "ws://127.0.0.1:1/", nil, 10)
	assert.Error(t, err)
	assert.Zero(t, status)
}
