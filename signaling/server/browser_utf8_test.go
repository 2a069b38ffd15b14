package server

import (
	"bufio"
	"context"
	"encoding/json"
	"github.com/dialtone-dev/dialtone/internal/testenv"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/signaling"
)

// nodeEvent is one line of testdata/wsclient.js.
type nodeEvent struct {
	Open  bool    `json:"open"`
	Msg   *string `json:"msg"`
	Close *int    `json:"close"`
}

// nodeClient runs testdata/wsclient.js against url and returns its events.
// It skips without node (fails under CI=true, where node must be there).
func nodeClient(t *testing.T, url string) <-chan nodeEvent {
	t.Helper()
	node := testenv.Program(t, "node")
	// Node 20 has WebSocket behind a flag; Node 22 has it by default.
	args := []string{"testdata/wsclient.js", url}
	if exec.Command(node, "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)").Run() != nil {
		args = append([]string{"--experimental-websocket"}, args...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, args...)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	events := make(chan nodeEvent, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(events)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var e nodeEvent
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				events <- e
			}
		}
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		cancel()
		for range events {
		}
		<-done
		_ = cmd.Wait()
	})
	return events
}

func nextNodeEvent(t *testing.T, events <-chan nodeEvent) nodeEvent {
	t.Helper()
	select {
	case e, ok := <-events:
		require.True(t, ok, "node client exited")
		return e
	case <-time.After(waitFor):
		require.FailNow(t, "no event from the node client")
	}
	return nodeEvent{}
}

// A signal whose data holds invalid UTF-8 is refused with a clear error and
// never relayed: a browser receiving it in a text frame would drop its
// connection (1006). The browser-side user keeps its connection and gets
// the next, valid message.
func TestInvalidUTF8NeverReachesBrowser(t *testing.T) {
	s := newTestServer(t, Config{})
	url := startHTTP(t, s)
	events := nodeClient(t, url+"?user=browser")
	require.True(t, nextNodeEvent(t, events).Open)
	ready := nextNodeEvent(t, events)
	require.NotNil(t, ready.Msg)
	m, err := signaling.Decode([]byte(*ready.Msg), 0)
	require.NoError(t, err)
	require.Equal(t, signaling.TypeReady, m.Type)

	mallory := rawDial(t, url, "mallory")
	bad := []byte(`{"type":"signal","to":"browser","call":"c1","data":{"x":"` + "\xff" + `"}}`)
	require.NoError(t, mallory.WriteMessage(websocket.TextMessage, bad))
	e := rawRecvError(t, mallory)
	assert.Equal(t, signaling.CodeMalformed, e.Code)
	assert.Contains(t, e.Message, "UTF-8")

	good := []byte(`{"type":"signal","to":"browser","call":"c1","data":{"x":"Zoë"}}`)
	require.NoError(t, mallory.WriteMessage(websocket.TextMessage, good))
	got := nextNodeEvent(t, events)
	require.Nil(t, got.Close, "the browser's connection was dropped (close %v)", got.Close)
	require.NotNil(t, got.Msg)
	m, err = signaling.Decode([]byte(*got.Msg), 0)
	require.NoError(t, err)
	assert.Equal(t, signaling.TypeSignal, m.Type)
	assert.Equal(t, "mallory", m.From)
	assert.JSONEq(t, `{"x":"Zoë"}`, string(m.Data))
}
