package janus

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeJanus is a WebSocket server that answers requests with a script, for
// what a real Janus does not do on demand (garbage, extreme IDs).
type fakeJanus struct {
	*httptest.Server
	mu   sync.Mutex
	seen []map[string]any
	// answer returns the messages to send for one request.
	answer func(req map[string]any) []string
}

func newFakeJanus(t *testing.T, answer func(req map[string]any) []string) *fakeJanus {
	t.Helper()
	f := &fakeJanus{answer: answer}
	up := websocket.Upgrader{Subprotocols: []string{Subprotocol}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			var req map[string]any
			_, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			dec := json.NewDecoder(strings.NewReader(string(data)))
			dec.UseNumber()
			if dec.Decode(&req) != nil {
				continue
			}
			f.mu.Lock()
			f.seen = append(f.seen, req)
			f.mu.Unlock()
			for _, m := range f.answer(req) {
				m = strings.ReplaceAll(m, "TXN", req["transaction"].(string))
				if c.WriteMessage(websocket.TextMessage, []byte(m)) != nil {
					return
				}
			}
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeJanus) url() string { return "ws" + strings.TrimPrefix(f.URL, "http") }

func (f *fakeJanus) requests() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.seen...)
}

// TestIDsAbove2To32 checks that session and handle IDs up to 2^53-1 (what
// Janus generates) come back to Janus exactly: a float64 detour would
// round some of them.
func TestIDsAbove2To32(t *testing.T) {
	const session, handle = "9007199254740991", "9007199254740881"
	f := newFakeJanus(t, func(req map[string]any) []string {
		switch req["janus"] {
		case "create":
			return []string{`{"janus":"success","transaction":"TXN","data":{"id":` + session + `}}`}
		case "attach":
			return []string{`{"janus":"success","transaction":"TXN","session_id":` + session + `,"data":{"id":` + handle + `}}`}
		}
		return []string{`{"janus":"success","transaction":"TXN"}`}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := Connect(ctx, Config{URL: f.url()})
	require.NoError(t, err)
	defer s.Close(ctx)
	assert.Equal(t, uint64(9007199254740991), s.ID())
	h, err := s.Attach(ctx, AudioBridgePlugin)
	require.NoError(t, err)
	assert.Equal(t, uint64(9007199254740881), h.ID())
	require.NoError(t, h.Hangup(ctx))
	reqs := f.requests()
	last := reqs[len(reqs)-1]
	assert.Equal(t, json.Number(session), last["session_id"])
	assert.Equal(t, json.Number(handle), last["handle_id"])
}

// TestBadServerInput: whatever Janus's side sends, the client neither
// panics nor stops working; a request still gets its reply after the junk.
func TestBadServerInput(t *testing.T) {
	junk := []string{
		`not json`, `[]`, `[{"janus":"event"}]`, `{"janus":5}`, `null`, `{}`,
		`{"janus":"event","sender":77}`,
		`{"janus":"event","sender":1,"plugindata":{"plugin":"x","data":"not an object"}}`,
		`{"janus":"event","sender":1,"plugindata":{"plugin":"x","data":{"audiobridge":"event","participants":"no"}}}`,
		`{"janus":"event","sender":1,"plugindata":{"plugin":"x","data":{"audiobridge":"joined","participants":[{"id":-1}]}}}`,
		`{"janus":"event","sender":1,"plugindata":{"plugin":"x","data":{"audiobridge":"talking","id":"str"}}}`,
		`{"janus":"trickle","sender":1,"candidate":{"candidate":5}}`,
		`{"janus":"trickle","sender":1,"candidate":{"sdpMLineIndex":-3}}`,
		`{"janus":"trickle","sender":1,"candidate":null}`,
		`{"janus":"webrtcup","sender":1}`, `{"janus":"media","sender":1,"receiving":"x"}`,
		`{"janus":"hangup","sender":1,"reason":7}`,
		`{"janus":"event","sender":1,"jsep":{"type":"nonsense","sdp":1}}`,
		`{"janus":"error","transaction":"nobody"}`, `{"janus":"success","transaction":"nobody"}`,
		`{"janus":"success","transaction":"TXN","data":{"id":"x"}}`,
	}
	f := newFakeJanus(t, func(req map[string]any) []string {
		switch req["janus"] {
		case "create":
			return []string{`{"janus":"success","transaction":"TXN","data":{"id":10}}`}
		case "attach":
			return []string{`{"janus":"success","transaction":"TXN","data":{"id":1}}`}
		case "message":
			body, _ := req["body"].(map[string]any)
			if body["request"] == "junk" {
				return junk
			}
			return []string{`{"janus":"success","transaction":"TXN","plugindata":{"plugin":"janus.plugin.audiobridge","data":{"audiobridge":"success","room":5,"exists":true}}}`}
		}
		return []string{`{"janus":"ack","transaction":"TXN"}`}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := Connect(ctx, Config{URL: f.url()})
	require.NoError(t, err)
	defer s.Close(ctx)
	b, err := AttachAudioBridge(ctx, s)
	require.NoError(t, err)
	_, err = b.Handle().Message(ctx, map[string]any{"request": "junk"}, nil)
	assert.ErrorIs(t, err, ErrProtocol, "a reply whose data does not parse")
	ok, err := b.Exists(ctx, 5)
	require.NoError(t, err, "the session works after the junk")
	assert.True(t, ok)
	select {
	case <-s.Done():
		t.Fatalf("session ended: %v", s.Err())
	default:
	}
}

// TestErrorCodes: Janus's and the AudioBridge's error codes match the
// sentinel errors a caller branches on, and keep Janus's text.
func TestErrorCodes(t *testing.T) {
	for code, want := range map[int]error{
		485: ErrNoSuchRoom, 486: ErrRoomExists, 489: ErrUnauthorized, 403: ErrUnauthorized,
		487: ErrNotJoined, 491: ErrAlreadyJoined, 490: ErrIDExists, 492: ErrNoSuchParticipant,
		458: ErrNoSuchSession, 459: ErrNoSuchHandle, 460: ErrNoSuchPlugin, 483: ErrInvalidRequest,
	} {
		err := error(&Error{Code: code, Reason: "why"})
		assert.ErrorIs(t, err, want, "code %d", code)
		assert.Contains(t, err.Error(), "why")
	}
	assert.NoError(t, (&Error{Code: 499}).Unwrap())
}
