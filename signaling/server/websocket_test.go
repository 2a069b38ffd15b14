package server

import (
	"encoding/json"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/signaling"
)

// The server writes its frames itself; every length encoding (7-bit,
// 16-bit, 64-bit) reaches a standard client intact.
func TestWebSocketFrameLengths(t *testing.T) {
	s := newTestServer(t, Config{MaxMessageSize: 256 << 10})
	url := startHTTP(t, s)
	alice, bob := rawDial(t, url, "alice"), rawDial(t, url, "bob")
	head := `{"type":"signal","to":"bob","call":"c","data":{"p":"`
	// Sizes of the frame bob receives around the encoding boundaries; it
	// carries "from":"alice" too.
	const extra = len(`,"from":"alice"`)
	for _, size := range []int{100, 125, 126, 127, 65535, 65536, 65537, 200 << 10} {
		pad := size - extra - len(head) - len(`"}}`)
		frame := head + strings.Repeat("x", pad) + `"}}`
		require.NoError(t, alice.WriteMessage(websocket.TextMessage, []byte(frame)))
		require.NoError(t, bob.SetReadDeadline(time.Now().Add(waitFor)))
		_, b, err := bob.ReadMessage()
		require.NoError(t, err)
		assert.Len(t, b, size)
		m, err := signaling.Decode(b, len(b))
		require.NoError(t, err)
		assert.Equal(t, "alice", m.From)
		assert.Len(t, m.Data, len(`{"p":""}`)+pad)
	}
}

// Several senders at once to one recipient: whichever way each message
// goes (written by the sender's goroutine, or queued for the recipient's
// writer), every sender's messages arrive complete and in order.
func TestWebSocketOrderPerSender(t *testing.T) {
	s := newTestServer(t, Config{RateLimit: 1e6, RateBurst: 1e6, SendQueue: 4096})
	url := startHTTP(t, s)
	carol := rawDial(t, url, "carol")
	const senders, each = 4, 300
	var wg sync.WaitGroup
	for i := 0; i < senders; i++ {
		ws := rawDial(t, url, "s"+strconv.Itoa(i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < each; n++ {
				frame := `{"type":"signal","to":"carol","call":"c","data":{"n":` + strconv.Itoa(n) + `,"pad":"` + strings.Repeat("x", n%7*300) + `"}}`
				if err := ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	next := map[string]int{}
	for got := 0; got < senders*each; got++ {
		m := rawRecv(t, carol)
		var d struct{ N int }
		require.NoError(t, json.Unmarshal(m.Data, &d))
		require.Equal(t, next[m.From], d.N, "from %s", m.From)
		next[m.From]++
	}
	wg.Wait()
	for i := 0; i < senders; i++ {
		assert.Equal(t, each, next["s"+strconv.Itoa(i)])
	}
}

// A recipient that does not read never holds up its senders: the sender's
// goroutine writes only what the socket takes at once. With a write
// timeout this long, a sender waiting for the socket would stall past the
// test's deadline.
func TestWebSocketSlowRecipientDoesNotBlockSender(t *testing.T) {
	s := newTestServer(t, Config{RateLimit: 1e6, RateBurst: 1e6, SendQueue: 64, WriteTimeout: time.Minute})
	url := startHTTP(t, s)
	alice := rawDial(t, url, "alice")
	_ = rawDial(t, url, "slow") // never reads again
	carol := rawDial(t, url, "carol")
	frame := []byte(`{"type":"signal","to":"slow","call":"c","data":{"pad":"` + strings.Repeat("x", 60<<10) + `"}}`)
	// Enough to fill the sockets' buffers and the queue many times over.
	for i := 0; i < 400 && s.Online("slow"); i++ {
		require.NoError(t, alice.SetWriteDeadline(time.Now().Add(waitFor)))
		require.NoError(t, alice.WriteMessage(websocket.TextMessage, frame))
	}
	require.NoError(t, alice.WriteMessage(websocket.TextMessage, []byte(`{"type":"ringing","to":"carol","call":"c2"}`)))
	m := rawRecv(t, carol)
	assert.Equal(t, signaling.TypeRinging, m.Type)
	assert.Equal(t, "alice", m.From)
}

// Control frames go through the server's writer too: pings are answered,
// the server pings, and a close is answered with a close.
func TestWebSocketControlFrames(t *testing.T) {
	s := newTestServer(t, Config{PingInterval: 20 * time.Millisecond})
	url := startHTTP(t, s)
	ws := rawDial(t, url, "alice")
	pongs, pings := make(chan string, 1), make(chan struct{}, 1)
	ws.SetPongHandler(func(data string) error {
		select {
		case pongs <- data:
		default:
		}
		return nil
	})
	ws.SetPingHandler(func(string) error {
		select {
		case pings <- struct{}{}:
		default:
		}
		return nil
	})
	read := make(chan error, 1)
	go func() {
		_ = ws.SetReadDeadline(time.Now().Add(waitFor))
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				read <- err
				return
			}
		}
	}()
	require.NoError(t, ws.WriteControl(websocket.PingMessage, []byte("hello"), time.Now().Add(waitFor)))
	select {
	case p := <-pongs:
		assert.Equal(t, "hello", p)
	case <-time.After(waitFor):
		require.FailNow(t, "no pong")
	}
	select {
	case <-pings:
	case <-time.After(waitFor):
		require.FailNow(t, "no ping from the server")
	}
	require.NoError(t, ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(waitFor)))
	err := <-read
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, websocket.CloseNormalClosure, ce.Code)
	require.Eventually(t, func() bool { return !s.Online("alice") }, waitFor, time.Millisecond)
}

// A message written straight to the recipient's socket (the path every
// relayed message takes when its recipient keeps up) creates no garbage:
// at tens of thousands of messages a second, garbage means collections in
// the middle of the traffic.
func TestDirectWriteAllocs(t *testing.T) {
	if !canTryWrite {
		t.Skip("no writes without waiting on this system")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer client.Close()
	srv, ok := <-accepted
	require.True(t, ok)
	defer srv.Close()
	drained := make(chan int64)
	go func() {
		n, _ := io.Copy(io.Discard, client)
		drained <- n
	}()

	var bufs bufPool
	w := newWSWriter(srv, time.Second, &bufs)
	require.NotNil(t, w.raw)
	m := signaling.Message{Type: signaling.TypeSignal, From: "alice", To: "bob", Call: "c",
		Data: json.RawMessage(`{"candidate":"` + strings.Repeat("x", 2000) + `"}`)}
	frame, err := appendWSFrame(nil, m)
	require.NoError(t, err)
	const runs = 200
	allocs := testing.AllocsPerRun(runs, func() {
		require.True(t, w.claim())
		w.write(m)
	})
	assert.Zero(t, allocs, "allocations per direct write")
	assert.Nil(t, w.rest, "the socket took every frame")
	require.NoError(t, srv.Close())
	assert.Equal(t, int64((runs+1)*len(frame)), <-drained, "every frame reached the client")
}
