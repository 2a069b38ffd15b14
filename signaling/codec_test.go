package signaling

import (
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var codecSeeds = []string{
	`{"type":"signal","to":"bob","call":"c","data":{"candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMLineIndex":0}}}`,
	`{"type":"invite","from":"x","to":"bob","call":"c","data":{"displayName":"Zoë \u00e9 <b>","extra":{"k":"v"}}}`,
	` { "type" : "hangup" , "to":"bob", "call":"c", "data": {"reason":"x"} } `,
	`{"type":"signal","to":"b\"ob","call":"c"}`, `{"TYPE":"signal","to":"bob","call":"c"}`,
	`{"type":"signal","to":"bob","call":"c","data":null}`, `{"type":"signal","data":[1]}`,
	`{"type":"nope"}`, `{"type":""}`, `{}`, `{"type":"signal","data":{"a":[1,-2.5e3,true,false,null,"\ud83d"]}}`,
	`{"type":"signal","data":{"a":01}}`, `{"type":"signal","data":{"a":"` + "\x01" + `"}}`, `{"type":"signal"} x`,
	`{"type":"signal","data":{"a":1,}}`, `{"type":"signal","to":"` + "\xff" + `"}`,
}

// Decode (fast path first) accepts and rejects exactly what encoding/json
// does, with the same result; AppendEncode's output decodes back to the
// message and is the same JSON value as encoding/json's.
func FuzzDecodeFast(f *testing.F) {
	for _, s := range codecSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, wantErr := decodeSlow(b, 4096)
		got, err := Decode(b, 4096)
		if wantErr != nil {
			require.Error(t, err)
			assert.Equal(t, wantErr.Error(), err.Error())
			return
		}
		require.NoError(t, err)
		assert.Equal(t, want.Type, got.Type)
		assert.Equal(t, want.From, got.From)
		assert.Equal(t, want.To, got.To)
		assert.Equal(t, want.Call, got.Call)
		if want.Data == nil {
			assert.Nil(t, got.Data)
		} else {
			assert.JSONEq(t, string(want.Data), string(got.Data))
		}
		enc, err := AppendEncode(nil, got)
		require.NoError(t, err)
		trusted, err := AppendEncodeTrusted(nil, got)
		require.NoError(t, err)
		assert.Equal(t, string(enc), string(trusted), "decoded data needs no second check")
		back, err := decodeSlow(enc, 0)
		require.NoError(t, err, "%s", enc)
		std, _ := json.Marshal(got)
		var a, b2 any
		require.NoError(t, json.Unmarshal(enc, &a))
		require.NoError(t, json.Unmarshal(std, &b2))
		assert.Equal(t, b2, a, "same JSON value as encoding/json")
		assert.Equal(t, got.Type, back.Type)
	})
}

// Every byte that matters inside a string (quote, backslash, control
// character, non-ASCII) is found wherever it falls in a word of 8.
func TestDecodeStringBytes(t *testing.T) {
	for _, special := range []string{`"`, `\\`, `\n`, `\u00e9`, `\x`, "\x01", "\x1f", "\x7f", "é", "\xff",
		"\xc3", "\xe2\x82", "\xed\xa0\x80", "😀"} {
		for at := 0; at < 20; at++ {
			s := strings.Repeat("x", at) + special + strings.Repeat("x", 19-at)
			frame := []byte(`{"type":"signal","to":"bob","call":"c","data":{"sdp":"` + s + `"}}`)
			want, wantErr := decodeSlow(frame, 0)
			got, err := Decode(frame, 0)
			if wantErr != nil {
				require.Error(t, err, "%q", frame)
				assert.Equal(t, wantErr.Error(), err.Error())
				continue
			}
			require.NoError(t, err, "%q", frame)
			assert.JSONEq(t, string(want.Data), string(got.Data))
		}
	}
	word := func(at int, c byte) uint64 {
		b := []byte("xxxxxxxx")
		b[at] = c
		return binary.LittleEndian.Uint64(b)
	}
	for at := 0; at < 8; at++ {
		for _, c := range []byte{'"', '\\', 0, 0x1f} {
			assert.False(t, plain8(word(at, c)), "%q at %d", c, at)
		}
		for _, c := range []byte{0x80, 0xc3, 0xff} {
			assert.False(t, plain8(word(at, c)), "%q at %d", c, at)
		}
		for _, c := range []byte{' ', '!', '#', '[', ']', 0x7f} {
			assert.True(t, plain8(word(at, c)), "%q at %d", c, at)
		}
	}
}

// DecodeShared leaves the data in the frame; Decode copies it.
func TestDecodeShared(t *testing.T) {
	frame := []byte(`{"type":"signal","to":"bob","call":"c","data":{"a":"x"}}`)
	shared, err := DecodeShared(frame, 0)
	require.NoError(t, err)
	copied, err := Decode(frame, 0)
	require.NoError(t, err)
	frame[len(frame)-4] = 'y'
	assert.Equal(t, `{"a":"y"}`, string(shared.Data))
	assert.Equal(t, `{"a":"x"}`, string(copied.Data))
}

func TestAppendEncode(t *testing.T) {
	cases := []struct {
		name string
		m    Message
		want string // "" when an error is expected
	}{
		{"plain", Message{Type: TypeSignal, To: "bob", Call: "c", Data: json.RawMessage(`{"a":1}`)},
			`{"type":"signal","to":"bob","call":"c","data":{"a":1}}`},
		{"no data", Message{Type: TypeBusy, To: "bob", Call: "c"}, `{"type":"busy","to":"bob","call":"c"}`},
		{"escaped id", Message{Type: TypeSignal, To: `b"ob`, Call: "c"}, `{"type":"signal","to":"b\"ob","call":"c"}`},
		{"spaced data", Message{Type: TypeSignal, To: "bob", Call: "c", Data: json.RawMessage(" {\"a\" : [1, 2]}\n")},
			`{"type":"signal","to":"bob","call":"c","data":{"a":[1,2]}}`},
		{"invalid data", Message{Type: TypeSignal, To: "bob", Call: "c", Data: json.RawMessage(`{"a":`)}, ""},
		{"two values", Message{Type: TypeSignal, To: "bob", Call: "c", Data: json.RawMessage(`{} {}`)}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AppendEncode([]byte("prefix"), tc.m)
			if tc.want == "" {
				require.Error(t, err)
				_, jerr := json.Marshal(tc.m)
				assert.Error(t, jerr, "encoding/json rejects it too")
				return
			}
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(string(got), "prefix"))
			assert.JSONEq(t, tc.want, string(got[len("prefix"):]))
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	frame := []byte(`{"type":"signal","to":"bob","call":"call-1","data":{"description":{"type":"offer","sdp":"` +
		strings.Repeat("x", 2000) + `"}}}`)
	for _, bc := range []struct {
		name   string
		decode func([]byte, int) (Message, error)
	}{{"fast", Decode}, {"shared", DecodeShared}, {"encoding-json", decodeSlow}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := bc.decode(frame, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	m := Message{Type: TypeSignal, To: "bob", Call: "call-1",
		Data: json.RawMessage(`{"description":{"type":"offer","sdp":"` + strings.Repeat("x", 2000) + `"}}`)}
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for i := 0; i < b.N; i++ {
			buf, _ = AppendEncode(buf[:0], m)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			_, _ = json.Marshal(m)
		}
	})
}

// Data that is not valid UTF-8 is refused on the way in and on the way
// out: a relayed frame is a WebSocket text frame, and a browser drops the
// connection over one holding invalid UTF-8.
func TestInvalidUTF8Refused(t *testing.T) {
	for _, s := range []string{"\xff", "ok\xc3", "\xed\xa0\x80", "xxxxxxxxxxxxxxx\xe2\x82"} {
		for _, key := range []bool{false, true} {
			data := `{"x":"` + s + `"}`
			if key {
				data = `{"` + s + `":1}`
			}
			frame := []byte(`{"type":"signal","to":"bob","call":"c","data":` + data + `}`)
			for name, decode := range map[string]func([]byte, int) (Message, error){"Decode": Decode, "DecodeShared": DecodeShared} {
				_, err := decode(frame, 0)
				require.ErrorIs(t, err, ErrMalformed, "%s %q", name, frame)
				assert.ErrorIs(t, err, ErrInvalidUTF8, "%s %q", name, frame)
			}
			_, err := Encode(Message{Type: TypeSignal, To: "bob", Call: "c", Data: json.RawMessage(data)})
			assert.ErrorIs(t, err, ErrInvalidUTF8, "%q", data)
		}
	}
	m, err := Decode([]byte(`{"type":"signal","to":"bob","call":"c","data":{"x":"Zoë 😀 \ud83d"}}`), 0)
	require.NoError(t, err, "valid UTF-8 and escapes pass")
	assert.Equal(t, `{"x":"Zoë 😀 \ud83d"}`, string(m.Data))
}
