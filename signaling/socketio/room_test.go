package socketio_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/dialtone-dev/dialtone/signaling/socketio"
)

func joinRoom(t *testing.T, base string, cfg socketio.RoomConfig) *socketio.Room {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := socketio.JoinRoom(ctx, base, cfg)
	require.NoError(t, err)
	return r
}

// Two Go phones in one room of a room-relay app call each other both
// ways with the Call API; a call placed while alone in the room goes
// through when the other member joins.
func TestRoomGoToGo(t *testing.T) {
	base := startNode(t)
	alice := newTestPhone(t, joinRoom(t, base, socketio.RoomConfig{Room: "r1", User: "alice"}), 600)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	ac, err := alice.Dial(ctx, socketio.DefaultPeer)
	require.NoError(t, err)
	waitState(t, ac, call.Waiting, 5*time.Second)

	bob := newTestPhone(t, joinRoom(t, base, socketio.RoomConfig{Room: "r1", User: "bob"}), 1000)
	bc := incoming(t, bob, 10*time.Second)
	assert.Equal(t, socketio.DefaultPeer, bc.Peer())
	answer(ctx, t, alice, ac, bob, bc)
	hangUp(t, bc, ac)

	// The other way, both still in the room.
	bc, err = bob.Dial(ctx, socketio.DefaultPeer)
	require.NoError(t, err)
	ac = incoming(t, alice, 10*time.Second)
	answer(ctx, t, bob, bc, alice, ac)
	hangUp(t, bc, ac)

	// A callee that is not the room's peer is offline.
	cc, err := alice.Dial(ctx, "carol")
	require.NoError(t, err)
	assert.Equal(t, call.ReasonOffline, waitEnd(t, cc, 10*time.Second))
}

const sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"

// The room's events become the phone's messages whatever their shape;
// garbage and events of no meaning are skipped; the phone's messages
// become events of the configured shape.
func TestRoomTranslates(t *testing.T) {
	fromClient := make(chan string, 16)
	toClient := make(chan string, 16)
	url := fakeServer(t, func(ws *websocket.Conn) {
		handshake(ws, "/")
		go func() {
			for f := range toClient {
				send(ws, f)
			}
		}()
		for {
			f := read(ws)
			fromClient <- f
			if strings.HasPrefix(f, "error") || f == "41" {
				return
			}
		}
	})
	t.Cleanup(func() { close(toClient) })
	r := joinRoom(t, url, socketio.RoomConfig{
		Room:   "r1",
		Events: socketio.Events{Join: "join-room", Offer: "webrtc_offer", Candidate: "webrtc_ice_candidate", Leave: "bye"},
		Shape:  socketio.Shape{Style: socketio.StyleRoomFirst},
	})
	t.Cleanup(func() { _ = r.Close() })
	assert.Equal(t, `42["join-room","r1"]`, <-fromClient)
	ready := next(t, r.Incoming(), "message")
	assert.Equal(t, signaling.TypeReady, ready.Type)
	assert.Equal(t, "s1", r.Ready().User, "the socket's ID by default")

	// Garbage, then an offer as a bare SDP string after the room's name.
	for _, f := range []string{
		`42["webrtc_offer"]`, `42["webrtc_offer",{"sdp":"not sdp"}]`, `42["webrtc_offer",{"type":"rollback","sdp":"v=0"}]`,
		`42["webrtc_ice_candidate",{"candidate":1}]`, `42["webrtc_ice_candidate",{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host"}]`,
		`42["answer",{"type":"answer","sdp":"v=0"}]`, `42["no such event",1]`, `42["bye"]`,
	} {
		toClient <- f
	}
	offer, _ := json.Marshal(sdp)
	toClient <- `42["webrtc_offer","r1",` + string(offer) + `]`
	toClient <- `42["webrtc_ice_candidate",{"room":"r1","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0","sdpMLineIndex":0}}]`
	toClient <- `42["webrtc_ice_candidate",{"type":"candidate","label":0,"id":"0","candidate":"candidate:2 1 udp 1 127.0.0.1 10 typ host"}]`

	inv := next(t, r.Incoming(), "message")
	assert.Equal(t, signaling.TypeInvite, inv.Type)
	assert.Equal(t, socketio.DefaultPeer, inv.From)
	require.NotEmpty(t, inv.Call)
	for _, want := range []string{
		`{"description":{"type":"offer","sdp":` + string(offer) + `}}`,
		`{"candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0","sdpMLineIndex":0}}`,
		`{"candidate":{"candidate":"candidate:2 1 udp 1 127.0.0.1 10 typ host","sdpMid":"0","sdpMLineIndex":0}}`,
	} {
		m := next(t, r.Incoming(), "message")
		assert.Equal(t, signaling.TypeSignal, m.Type)
		assert.Equal(t, inv.Call, m.Call)
		assert.JSONEq(t, want, string(m.Data))
	}

	// The phone answers: accept is dialtone's alone, the answer and a
	// candidate go to the room in the configured shape.
	ctx := context.Background()
	send := func(typ signaling.Type, data string) {
		t.Helper()
		m := signaling.Message{Type: typ, To: socketio.DefaultPeer, Call: inv.Call}
		if data != "" {
			m.Data = json.RawMessage(data)
		}
		require.NoError(t, r.Send(ctx, m))
	}
	send(signaling.TypeRinging, "")
	send(signaling.TypeAccept, "")
	send(signaling.TypeSignal, `{"description":{"type":"answer","sdp":"v=0 answer"}}`)
	assert.Equal(t, `42["answer","r1",{"type":"answer","sdp":"v=0 answer"}]`, <-fromClient)
	send(signaling.TypeSignal, `{"candidate":{"candidate":"candidate:3","sdpMid":"0","sdpMLineIndex":0}}`)
	assert.Equal(t, `42["webrtc_ice_candidate","r1",{"candidate":"candidate:3","sdpMid":"0","sdpMLineIndex":0}]`, <-fromClient)
	// A signal of another call is dropped; a dialtone room is refused.
	require.NoError(t, r.Send(ctx, signaling.Message{Type: signaling.TypeSignal, To: "peer", Call: "other", Data: json.RawMessage(`{"candidate":{"candidate":"x"}}`)}))
	assert.ErrorIs(t, r.Send(ctx, signaling.Message{Type: signaling.TypeJoin, Call: "room"}), socketio.ErrUnsupported)

	// The peer leaves: the call is hung up.
	toClient <- `42["bye","peer-socket"]`
	m := next(t, r.Incoming(), "message")
	assert.Equal(t, signaling.TypeHangup, m.Type)
	assert.Equal(t, inv.Call, m.Call)

	// Our hang-up of a new call: leave, then join again.
	toClient <- `42["webrtc_offer",{"type":"offer","sdp":` + string(offer) + `}]`
	inv = next(t, r.Incoming(), "message")
	require.Equal(t, signaling.TypeInvite, inv.Type)
	next(t, r.Incoming(), "message") // its offer
	require.NoError(t, r.Send(ctx, signaling.Message{Type: signaling.TypeDecline, To: "peer", Call: inv.Call}))
	assert.Equal(t, `42["bye","r1"]`, <-fromClient)
	assert.Equal(t, `42["join-room","r1"]`, <-fromClient)
}

func TestShapes(t *testing.T) {
	desc := json.RawMessage(`{"type":"offer","sdp":"v=0"}`)
	for _, tc := range []struct {
		shape socketio.Shape
		want  string
	}{
		{socketio.Shape{}, `42["offer",{"room":"r1","sdp":{"type":"offer","sdp":"v=0"}}]`},
		{socketio.Shape{RoomKey: "roomId", DescriptionKey: "description"}, `42["offer",{"description":{"type":"offer","sdp":"v=0"},"roomId":"r1"}]`},
		{socketio.Shape{Style: socketio.StyleRoomFirst}, `42["offer","r1",{"type":"offer","sdp":"v=0"}]`},
		{socketio.Shape{Style: socketio.StyleBare}, `42["offer",{"type":"offer","sdp":"v=0"}]`},
	} {
		got := make(chan string, 4)
		url := fakeServer(t, func(ws *websocket.Conn) {
			handshake(ws, "/")
			read(ws) // join
			got <- read(ws)
		})
		r := joinRoom(t, url, socketio.RoomConfig{Room: "r1", Shape: tc.shape})
		require.NoError(t, r.Send(context.Background(), signaling.Message{Type: signaling.TypeInvite, To: "peer", Call: "c1"}))
		require.NoError(t, r.Send(context.Background(), signaling.Message{Type: signaling.TypeSignal, To: "peer", Call: "c1",
			Data: json.RawMessage(`{"description":` + string(desc) + `}`)}))
		assert.Equal(t, tc.want, <-got)
		require.NoError(t, r.Close())
	}
}
