package signaling_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/signaling"
)

func TestDecode(t *testing.T) {
	cases := []struct {
		name string
		in   string
		err  error
	}{
		{"empty", "", signaling.ErrEmpty},
		{"spaces", "  \n", signaling.ErrEmpty},
		{"not json", "hello", signaling.ErrMalformed},
		{"truncated", `{"type":"invite"`, signaling.ErrMalformed},
		{"array", `[]`, signaling.ErrMalformed},
		{"null", `null`, signaling.ErrMalformed},
		{"wrong field type", `{"type":5}`, signaling.ErrMalformed},
		{"data not object", `{"type":"signal","data":"x"}`, signaling.ErrMalformed},
		{"trailing garbage", `{"type":"busy"} {}`, signaling.ErrMalformed},
		{"long id", `{"type":"busy","to":"` + strings.Repeat("a", 300) + `"}`, signaling.ErrMalformed},
		{"missing type", `{"to":"bob"}`, signaling.ErrMissingType},
		{"type not well formed", `{"type":"Tele port"}`, signaling.ErrUnknownType},
		{"type too long", `{"type":"` + strings.Repeat("a", signaling.MaxTypeLength+1) + `"}`, signaling.ErrUnknownType},
		{"unknown type of a later version", `{"type":"teleport","to":"bob","call":"c","data":{"where":"mars"}}`, nil},
		{"too large", `{"type":"signal","data":{"x":"` + strings.Repeat("a", 100) + `"}}`, signaling.ErrTooLarge},
		{"ok", `{"type":"hangup","to":"bob","call":"c","data":{"reason":"hangup"}}`, nil},
		{"null data", `{"type":"busy","data":null}`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			limit := 100
			if tc.name == "long id" {
				limit = 0
			}
			_, err := signaling.Decode([]byte(tc.in), limit)
			if tc.err == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tc.err)
			}
		})
	}
	m, err := signaling.Decode([]byte(`{"type":"tele_port","call":"c1"}`), 0)
	require.ErrorIs(t, err, signaling.ErrUnknownType)
	assert.Equal(t, "c1", m.Call, "a bad type keeps the call for the error answer")
}

// Every type round-trips through Encode/Decode with its payload.
func TestRoundTripEveryType(t *testing.T) {
	payload := map[signaling.Type]any{
		signaling.TypeReady:       signaling.Ready{User: "alice", ICEServers: []signaling.ICEServer{{URLs: []string{"turn:127.0.0.1"}, Username: "1:alice", Credential: "x"}}, RelayTTL: 60},
		signaling.TypeRelayConfig: signaling.RelayConfig{ICEServers: []signaling.ICEServer{{URLs: []string{"stun:127.0.0.1"}}}, RelayTTL: 60},
		signaling.TypeInvite:      signaling.Invite{DisplayName: "Alice", Extra: map[string]string{"a": "b"}},
		signaling.TypeHangup:      signaling.Hangup{Reason: "hangup"},
		signaling.TypeError:       signaling.Error{Code: signaling.CodeMalformed, Message: "bad", Rejected: signaling.TypeInvite},
		signaling.TypeSignal:      map[string]any{"candidate": map[string]any{"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host"}},
		signaling.TypeJoin:        signaling.Join{DisplayName: "Alice", Muted: true},
		signaling.TypeMute:        signaling.Mute{Muted: true},
		signaling.TypeMembers:     signaling.Members{Seq: 3, Session: 3, Members: []signaling.Member{{User: "bob", Session: 1}, {User: "alice", DisplayName: "Alice", Session: 3}}},
		signaling.TypeMemberLeft:  signaling.MemberEvent{Seq: 4, Member: signaling.Member{User: "bob", Session: 1}, Reason: signaling.LeftGone},
		signaling.TypeRoomSignal:  signaling.RoomSignal{Session: 3, PeerSession: 1, Signal: []byte(`{"candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host"}}`)},
	}
	require.Len(t, signaling.Types(), 23)
	for _, typ := range signaling.Types() {
		assert.True(t, typ.Known())
		m, err := signaling.NewMessage(typ, "bob", "call-1", payload[typ])
		require.NoError(t, err)
		m.From = "alice"
		b, err := signaling.Encode(m)
		require.NoError(t, err)
		got, err := signaling.Decode(b, 0)
		require.NoError(t, err, "%s", b)
		assert.Equal(t, m, got)
		if p, ok := payload[typ]; ok {
			assert.JSONEq(t, mustJSON(t, p), string(got.Data))
		} else {
			assert.ErrorIs(t, got.Unmarshal(&struct{}{}), signaling.ErrNoData)
		}
	}
	var inv signaling.Invite
	m, _ := signaling.Decode([]byte(`{"type":"invite","data":{"displayName":5}}`), 0)
	assert.ErrorIs(t, m.Unmarshal(&inv), signaling.ErrMalformed)
	assert.False(t, signaling.Type("x").Known())
	assert.True(t, signaling.TypeReady.ServerOnly())
	assert.False(t, signaling.TypeRelay.Routed())
	assert.Equal(t, "signaling: server error replaced: x", signaling.Error{Code: "replaced", Message: "x"}.Error())
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	m, err := signaling.NewMessage(signaling.TypeSignal, "", "", v)
	require.NoError(t, err)
	return string(m.Data)
}

func TestBackoff(t *testing.T) {
	b := signaling.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0.5}
	assert.Equal(t, 75*time.Millisecond, b.Delay(1, 0))
	assert.Equal(t, 125*time.Millisecond, b.Delay(1, 1))
	assert.Equal(t, 400*time.Millisecond, b.Delay(3, 0.5))
	assert.Equal(t, time.Second, b.Delay(50, 0.5))
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"type":"invite","from":"a","to":"b","call":"c","data":{"displayName":"x"}}`,
		`{"type":"signal","data":{"description":{"type":"offer","sdp":"v=0"}}}`,
		`{"type":"x"}`, `{}`, `null`, `[`, `{"type":"busy","data":null}`, "\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := signaling.Decode(b, 1024)
		if err != nil {
			return
		}
		if len(b) > 1024 || !m.Type.Valid() {
			t.Fatalf("accepted invalid input %q as %+v", b, m)
		}
		// What Decode accepts re-encodes and decodes to the same message.
		out, err := signaling.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := signaling.Decode(out, 1<<20)
		if err != nil {
			t.Fatalf("re-decode %s: %v", out, err)
		}
		if m2.Type != m.Type || m2.From != m.From || m2.To != m.To || m2.Call != m.Call {
			t.Fatalf("round trip changed %+v to %+v", m, m2)
		}
	})
}
