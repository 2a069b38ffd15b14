package socketio_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/signaling/socketio"
)

func TestParsePacket(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want socketio.Packet
	}{
		{`0`, socketio.Packet{Type: socketio.PacketConnect, Namespace: "/"}},
		{`0{"sid":"abc"}`, socketio.Packet{Type: socketio.PacketConnect, Namespace: "/", Data: json.RawMessage(`{"sid":"abc"}`)}},
		{`0/admin,{"token":"t"}`, socketio.Packet{Type: socketio.PacketConnect, Namespace: "/admin", Data: json.RawMessage(`{"token":"t"}`)}},
		{`1/admin,`, socketio.Packet{Type: socketio.PacketDisconnect, Namespace: "/admin"}},
		{`1/admin`, socketio.Packet{Type: socketio.PacketDisconnect, Namespace: "/admin"}},
		{`2["hello",1]`, socketio.Packet{Type: socketio.PacketEvent, Namespace: "/", Data: json.RawMessage(`["hello",1]`)}},
		{`2/chat,12["hello"]`, socketio.Packet{Type: socketio.PacketEvent, Namespace: "/chat", ID: 12, HasID: true, Data: json.RawMessage(`["hello"]`)}},
		{`312[]`, socketio.Packet{Type: socketio.PacketAck, Namespace: "/", ID: 12, HasID: true, Data: json.RawMessage(`[]`)}},
		{`4{"message":"nope"}`, socketio.Packet{Type: socketio.PacketConnectError, Namespace: "/", Data: json.RawMessage(`{"message":"nope"}`)}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			p, err := socketio.ParsePacket([]byte(tc.in))
			require.NoError(t, err)
			assert.Equal(t, tc.want, p)
			// Encoding gives the packet back (the namespace's comma is
			// written whenever a namespace is).
			again, err := socketio.ParsePacket(socketio.AppendPacket(nil, p))
			require.NoError(t, err)
			assert.Equal(t, p, again)
		})
	}
}

func TestParsePacketRejectsGarbage(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{``, socketio.ErrBadPacket},
		{`9["x"]`, socketio.ErrBadPacket},
		{`x`, socketio.ErrBadPacket},
		{`2`, socketio.ErrBadPacket},               // an event without data
		{`2{"a":1}`, socketio.ErrBadPacket},        // an event whose data is not an array
		{`2["unterminated`, socketio.ErrBadPacket}, // not JSON
		{`299999999999999999999999["x"]`, socketio.ErrBadPacket},
		{`0"string"`, socketio.ErrBadPacket},
		{`51-["x",{"_placeholder":true,"num":0}]`, socketio.ErrBinary},
		{`6/a,1-1[]`, socketio.ErrBinary},
	} {
		t.Run(tc.in, func(t *testing.T) {
			_, err := socketio.ParsePacket([]byte(tc.in))
			assert.ErrorIs(t, err, tc.want)
		})
	}
}

func TestParseEvent(t *testing.T) {
	e, err := socketio.ParseEvent(json.RawMessage(`["offer",{"type":"offer","sdp":"v=0"},"r1"]`))
	require.NoError(t, err)
	assert.Equal(t, "offer", e.Name)
	require.Len(t, e.Args, 2)
	assert.JSONEq(t, `"r1"`, string(e.Args[1]))

	for _, bad := range []string{`[]`, `[1,2]`, `{"a":1}`, `[null]`, `nope`} {
		_, err := socketio.ParseEvent(json.RawMessage(bad))
		assert.ErrorIs(t, err, socketio.ErrBadPacket, bad)
	}
}

// FuzzParsePacket: no input panics the parser, and what it accepts
// encodes back to a packet it parses the same.
func FuzzParsePacket(f *testing.F) {
	for _, s := range []string{`0`, `0/admin,{"token":"t"}`, `2["hello",1]`, `2/chat,12["hello"]`, `312[]`,
		`4{"message":"nope"}`, `1/a`, `51-["x"]`, `2["a",{"b":[1,2,{"c":null}]}]`, `29999999999999999999[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := socketio.ParsePacket(b)
		if err != nil {
			return
		}
		again, err := socketio.ParsePacket(socketio.AppendPacket(nil, p))
		if err != nil {
			t.Fatalf("re-encoded %q does not parse: %v", b, err)
		}
		if again.Type != p.Type || again.Namespace != p.Namespace || again.ID != p.ID || again.HasID != p.HasID {
			t.Fatalf("round trip of %q: %+v, then %+v", b, p, again)
		}
		if p.Type == socketio.PacketEvent {
			_, _ = socketio.ParseEvent(p.Data)
		}
	})
}
