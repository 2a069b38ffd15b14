package server

import (
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/signaling"
)

var wireSeeds = []string{
	`{"type":"signal","to":"bob","call":"c","data":{"candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMLineIndex":0}}}`,
	`{"type":"invite","from":"x","to":"bob","call":"c","data":{"displayName":"Zoë \u00e9 <b>","extra":{"k":"v"}}}`,
	` { "type" : "hangup" , "to":"bob", "call":"c", "data": {"reason":"x"} } `,
	`{"type":"signal","to":"b\"ob","call":"c"}`, `{"TYPE":"signal","to":"bob","call":"c"}`,
	`{"type":"signal","to":"bob","call":"c","data":null}`, `{"type":"signal","data":[1]}`,
	`{"type":"nope"}`, `{"type":""}`, `{}`, `{"type":"signal","data":{"a":[1,-2.5e3,true,false,null,"\ud83d"]}}`,
	`{"type":"signal","data":{"a":01}}`, `{"type":"signal","data":{"a":"` + "\x01" + `"}}`, `{"type":"signal"} x`,
	`{"type":"signal","data":{"a":1,}}`, `{"type":"signal","to":"` + "\xff" + `"}`,
}

// decodeFrame accepts and rejects exactly what signaling.Decode does, with
// the same result; appendFrame's output decodes back to the message.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range wireSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, wantErr := signaling.Decode(b, 4096)
		got, err := decodeFrame(b, 4096)
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
		enc, err := appendFrame(nil, got)
		require.NoError(t, err)
		back, err := signaling.Decode(enc, 0)
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
// character, non-ASCII) is found wherever it falls in a word of 8, and the
// result is signaling.Decode's.
func TestDecodeFrameStringBytes(t *testing.T) {
	for _, special := range []string{`"`, `\\`, `\n`, `\u00e9`, `\x`, "\x01", "\x1f", "\x7f", "é", "\xff"} {
		for at := 0; at < 20; at++ {
			s := repeatX(at) + special + repeatX(19-at)
			frame := []byte(`{"type":"signal","to":"bob","call":"c","data":{"sdp":"` + s + `"}}`)
			want, wantErr := signaling.Decode(frame, 0)
			got, err := decodeFrame(frame, 0)
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
		for _, c := range []byte{' ', '!', '#', '[', ']', 0x7f, 0x80, 0xff} {
			assert.True(t, plain8(word(at, c)), "%q at %d", c, at)
		}
	}
}

func BenchmarkDecodeFrame(b *testing.B) {
	frame := []byte(`{"type":"signal","to":"bob","call":"call-1","data":{"description":{"type":"offer","sdp":"` +
		repeatX(2000) + `"}}}`)
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(frame)))
		for i := 0; i < b.N; i++ {
			if _, err := decodeFrame(frame, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(frame)))
		for i := 0; i < b.N; i++ {
			if _, err := signaling.Decode(frame, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func repeatX(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'x'
	}
	return string(b)
}
