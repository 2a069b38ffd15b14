package server

import (
	"encoding/binary"
	"encoding/json"
	"unicode/utf8"

	"github.com/dialtone-dev/dialtone/signaling"
)

// The routing hot path: every routed frame is decoded once and encoded
// once. encoding/json does each in two passes through reflection (and
// compacts `data` again on the way out), which cost about half the CPU of
// a relayed 2 KB `signal`. decodeFrame and appendFrame handle the common,
// canonical frames in one tight pass each and defer to the signaling
// package for anything unusual, so the accepted language and every error
// stay exactly those of signaling.Decode.

// decodeFrame is signaling.Decode(b, max) with a fast path for plain
// frames: an object whose keys are exactly type/from/to/call/data, whose
// strings have no escapes, and whose data is an object.
func decodeFrame(b []byte, max int) (signaling.Message, error) {
	return decodeFrameAlias(b, max, false)
}

// decodeFrameAlias is decodeFrame whose result's Data may point into b
// (with alias; the caller then keeps b unchanged while the message lives).
func decodeFrameAlias(b []byte, max int, alias bool) (signaling.Message, error) {
	if m, ok := decodeFast(b, max, alias); ok {
		return m, nil
	}
	return signaling.Decode(b, max)
}

func decodeFast(b []byte, max int, alias bool) (signaling.Message, bool) {
	var m signaling.Message
	if max <= 0 {
		max = signaling.DefaultMaxMessageSize
	}
	if len(b) > max {
		return m, false
	}
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return m, false
	}
	i = skipWS(b, i+1)
	for n := 0; ; n++ {
		if i >= len(b) {
			return m, false
		}
		if b[i] == '}' && n == 0 {
			i++
			break
		}
		ks, ke, ok := plainString(b, i)
		if !ok {
			return m, false
		}
		i = skipWS(b, ke+1)
		if i >= len(b) || b[i] != ':' {
			return m, false
		}
		i = skipWS(b, i+1)
		key := string(b[ks:ke]) // no allocation: the compiler sees the comparison only
		switch key {
		case "type", "from", "to", "call":
			vs, ve, ok := plainString(b, i)
			if !ok || ve-vs > signaling.MaxIDLength {
				return m, false
			}
			if key == "type" {
				m.Type = knownType(b[vs:ve])
				i = ve + 1
				break
			}
			v := string(b[vs:ve])
			switch key {
			case "from":
				m.From = v
			case "to":
				m.To = v
			case "call":
				m.Call = v
			}
			i = ve + 1
		case "data":
			if i >= len(b) || b[i] != '{' {
				return m, false
			}
			end := skipValue(b, i, 0)
			if end < 0 {
				return m, false
			}
			if alias {
				m.Data = b[i:end:end]
			} else {
				m.Data = append(json.RawMessage(nil), b[i:end]...)
			}
			i = end
		default:
			return m, false
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return m, false
		}
		if b[i] == '}' {
			i++
			break
		}
		if b[i] != ',' {
			return m, false
		}
		i = skipWS(b, i+1)
	}
	if skipWS(b, i) != len(b) || !m.Type.Known() {
		return signaling.Message{}, false
	}
	return m, true
}

// knownType returns the Type named by b, without allocating for the
// protocol's own types.
func knownType(b []byte) signaling.Type {
	switch string(b) { // no allocation: compared, not kept
	case string(signaling.TypeSignal):
		return signaling.TypeSignal
	case string(signaling.TypeInvite):
		return signaling.TypeInvite
	case string(signaling.TypeRinging):
		return signaling.TypeRinging
	case string(signaling.TypeAccept):
		return signaling.TypeAccept
	case string(signaling.TypeDecline):
		return signaling.TypeDecline
	case string(signaling.TypeBusy):
		return signaling.TypeBusy
	case string(signaling.TypeCancel):
		return signaling.TypeCancel
	case string(signaling.TypeHangup):
		return signaling.TypeHangup
	case string(signaling.TypeRelay):
		return signaling.TypeRelay
	}
	return signaling.Type(b)
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// plainString reads a string at b[i] without escapes or control
// characters, in valid UTF-8; it returns the bounds of its content.
func plainString(b []byte, i int) (int, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, 0, false
	}
	start := i + 1
	ascii := true
	for j := start; j < len(b); j++ {
		c := b[j]
		switch {
		case c == '"':
			if !ascii && !utf8.Valid(b[start:j]) {
				return 0, 0, false
			}
			return start, j, true
		case c == '\\' || c < 0x20:
			return 0, 0, false
		case c >= 0x80:
			ascii = false
		}
	}
	return 0, 0, false
}

// maxDepth bounds nesting like encoding/json does (10000).
const maxDepth = 10000

// skipValue validates the JSON value at b[i] and returns the index after
// it, or -1. Strings are checked as encoding/json checks them (escapes,
// no control characters; invalid UTF-8 is tolerated, as there).
func skipValue(b []byte, i, depth int) int {
	if i >= len(b) || depth > maxDepth {
		return -1
	}
	switch c := b[i]; {
	case c == '{':
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == '}' {
			return i + 1
		}
		for {
			i = skipString(b, i)
			if i < 0 {
				return -1
			}
			i = skipWS(b, i)
			if i >= len(b) || b[i] != ':' {
				return -1
			}
			i = skipValue(b, skipWS(b, i+1), depth+1)
			if i < 0 {
				return -1
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return -1
			}
			if b[i] == '}' {
				return i + 1
			}
			if b[i] != ',' {
				return -1
			}
			i = skipWS(b, i+1)
		}
	case c == '[':
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1
		}
		for {
			i = skipValue(b, i, depth+1)
			if i < 0 {
				return -1
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return -1
			}
			if b[i] == ']' {
				return i + 1
			}
			if b[i] != ',' {
				return -1
			}
			i = skipWS(b, i+1)
		}
	case c == '"':
		return skipString(b, i)
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(b, i)
	}
	return -1
}

func skipLiteral(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

func skipString(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	for i++; i < len(b); i++ {
		for len(b)-i >= 8 && plain8(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		if i >= len(b) {
			break
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		case c == '\\':
			i++
			if i >= len(b) {
				return -1
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-i < 5 {
					return -1
				}
				for _, h := range b[i+1 : i+5] {
					if !isHex(h) {
						return -1
					}
				}
				i += 4
			default:
				return -1
			}
		}
	}
	return -1
}

// plain8 reports whether none of the 8 bytes in x ends a string or needs
// a look (a quote, a backslash, a control character). Checking a word at a
// time makes the long strings of a session description cheap to validate.
func plain8(x uint64) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	quote := x ^ (lo * '"')
	bslash := x ^ (lo * '\\')
	// (v - lo) &^ v & hi is non-zero iff a byte of v is zero (below 0x20
	// for the first term): the classic "has zero byte" test.
	return ((x-lo*0x20)&^x|(quote-lo)&^quote|(bslash-lo)&^bslash)&hi == 0
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// skipNumber follows the JSON number grammar.
func skipNumber(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	digits := func() bool {
		s := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > s
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return -1
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return -1
		}
	}
	return i
}

// appendFrame appends the wire encoding of m to dst. Strings that need no
// escaping and data that is already compact-safe are copied as they are;
// otherwise it falls back to encoding/json, so the result always decodes
// to m.
func appendFrame(dst []byte, m signaling.Message) ([]byte, error) {
	if !safeString(string(m.Type)) || !safeString(m.From) || !safeString(m.To) || !safeString(m.Call) {
		b, err := json.Marshal(m)
		return append(dst, b...), err
	}
	dst = append(dst, `{"type":"`...)
	dst = append(dst, m.Type...)
	dst = append(dst, '"')
	for _, f := range [...]struct{ key, v string }{{`,"from":"`, m.From}, {`,"to":"`, m.To}, {`,"call":"`, m.Call}} {
		if f.v != "" {
			dst = append(dst, f.key...)
			dst = append(dst, f.v...)
			dst = append(dst, '"')
		}
	}
	if len(m.Data) > 0 {
		dst = append(dst, `,"data":`...)
		dst = append(dst, m.Data...) // validated on the way in
	}
	return append(dst, '}'), nil
}

// safeString reports whether s encodes to JSON as itself between quotes.
func safeString(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x80 || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// WebSocket opcodes (RFC 6455 §5.2) of the frames the server writes.
const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xa

	maxFrameHeader = 10 // a server's frames are not masked
)

// appendWSFrame appends m as one WebSocket text frame to dst.
func appendWSFrame(dst []byte, m signaling.Message) ([]byte, error) {
	start := len(dst)
	dst = append(dst, make([]byte, maxFrameHeader)...)
	dst, err := appendFrame(dst, m)
	if err != nil {
		return dst[:start], err
	}
	n := len(dst) - start - maxFrameHeader
	var h [maxFrameHeader]byte
	hl := frameHeader(&h, opText, n)
	copy(dst[start+hl:], dst[start+maxFrameHeader:])
	copy(dst[start:], h[:hl])
	return dst[:start+hl+n], nil
}

// appendWSControl appends a control frame (payload at most 125 bytes).
func appendWSControl(dst []byte, op byte, payload []byte) []byte {
	var h [maxFrameHeader]byte
	hl := frameHeader(&h, op, len(payload))
	return append(append(dst, h[:hl]...), payload...)
}

// frameHeader writes the header of a final, unmasked frame of n payload
// bytes and returns its length.
func frameHeader(h *[maxFrameHeader]byte, op byte, n int) int {
	h[0] = 0x80 | op
	switch {
	case n < 126:
		h[1] = byte(n)
		return 2
	case n <= 0xffff:
		h[1] = 126
		binary.BigEndian.PutUint16(h[2:], uint16(n))
		return 4
	}
	h[1] = 127
	binary.BigEndian.PutUint64(h[2:], uint64(n))
	return 10
}
