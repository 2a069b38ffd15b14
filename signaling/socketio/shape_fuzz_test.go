package socketio

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzShapeFind: no event arguments panic the payload search, and what it
// finds is a description of a known type or a candidate.
func FuzzShapeFind(f *testing.F) {
	for _, s := range []string{
		`[{"room":"r1","sdp":{"type":"offer","sdp":"v=0\r\n"}}]`, `["r1","v=0\r\n"]`, `[{"type":"answer","sdp":"v=0"}]`,
		`[{"room":"r1","candidate":{"candidate":"candidate:1","sdpMid":"0","sdpMLineIndex":0}}]`,
		`[{"type":"candidate","label":0,"id":"0","candidate":"candidate:2"}]`, `[{"sdp":{"sdp":{"sdp":{"sdp":"v=0"}}}}]`,
		`[null,1,"x",[],{}]`, `[{"candidate":{"candidate":{"candidate":"c"}}}]`, `[{"sdpMLineIndex":-1,"candidate":"c"}]`,
	} {
		f.Add([]byte(s))
	}
	sh := Shape{}.withDefaults()
	f.Fuzz(func(t *testing.T, b []byte) {
		var args []json.RawMessage
		if json.Unmarshal(b, &args) != nil {
			return
		}
		if d, err := sh.findDescription(args, "offer"); err == nil {
			if !strings.HasPrefix(d.SDP, "v=0") || (d.Type != "offer" && d.Type != "answer" && d.Type != "pranswer") {
				t.Fatalf("%q gave description %+v", b, d)
			}
		}
		_, _ = sh.findCandidate(args)
	})
}
