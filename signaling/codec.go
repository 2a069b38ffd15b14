package signaling

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// The codec's hot path: every relayed frame is decoded once by the server
// and encoded once by each side. encoding/json does each in two passes
// through reflection (and compacts `data` again on the way out), which
// costs about half the CPU of a relayed 2 KB `signal`. decodeFast and
// AppendEncode handle the common, canonical frames in one tight pass each
// and defer to encoding/json for anything unusual, so the accepted
// language and every error stay exactly those of encoding/json
// (FuzzDecode checks it).

// decodeFast decodes plain frames: an object whose keys are exactly
// type/from/to/call/data, whose strings have no escapes, and whose data is
// an object. With alias the result's Data points into b.
func decodeFast(b []byte, max int, alias bool) (Message, bool) {
	var m Message
	if max <= 0 {
		max = DefaultMaxMessageSize
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
			if !ok || ve-vs > MaxIDLength {
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
		return Message{}, false
	}
	return m, true
}

// knownType returns the Type named by b, without allocating for the
// protocol's own types.
func knownType(b []byte) Type {
	switch string(b) { // no allocation: compared, not kept
	case string(TypeSignal):
		return TypeSignal
	case string(TypeInvite):
		return TypeInvite
	case string(TypeRinging):
		return TypeRinging
	case string(TypeAccept):
		return TypeAccept
	case string(TypeDecline):
		return TypeDecline
	case string(TypeBusy):
		return TypeBusy
	case string(TypeCancel):
		return TypeCancel
	case string(TypeHangup):
		return TypeHangup
	case string(TypeRelay):
		return TypeRelay
	case string(TypeRoomSignal):
		return TypeRoomSignal
	}
	return Type(b)
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
// no control characters) and must be valid UTF-8: a relayed frame goes out
// in a WebSocket text frame, which a browser closes the connection over
// (RFC 6455 §8.1) if it is not.
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
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 {
				return -1
			}
			i += n - 1
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
// a look (a quote, a backslash, a control character, a non-ASCII byte,
// whose UTF-8 is checked). Checking a word at a time makes the long
// strings of a session description cheap to validate.
func plain8(x uint64) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	quote := x ^ (lo * '"')
	bslash := x ^ (lo * '\\')
	// (v - lo) &^ v & hi is non-zero iff a byte of v is zero (below 0x20
	// for the first term): the classic "has zero byte" test. x & hi flags
	// the non-ASCII bytes.
	return ((x-lo*0x20)&^x|(quote-lo)&^quote|(bslash-lo)&^bslash|x)&hi == 0
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

// AppendEncode appends the JSON encoding of m to dst: the same JSON value
// as Encode's. Strings that need no escaping and data that is valid JSON
// are copied as they are (data keeps its spacing); anything else goes
// through encoding/json, with its errors. Data that is not valid UTF-8 is
// an error (ErrInvalidUTF8): it could not go out in a text frame.
func AppendEncode(dst []byte, m Message) ([]byte, error) {
	return appendEncode(dst, m, true)
}

// AppendEncodeTrusted is AppendEncode for a message whose Data is as
// Decode or DecodeShared returned it: valid JSON, which is not checked
// again. A relay re-encoding what it decoded saves a pass over every
// message. Data that is not valid JSON makes an invalid frame.
func AppendEncodeTrusted(dst []byte, m Message) ([]byte, error) {
	return appendEncode(dst, m, false)
}

func appendEncode(dst []byte, m Message, check bool) ([]byte, error) {
	if !safeString(string(m.Type)) || !safeString(m.From) || !safeString(m.To) || !safeString(m.Call) ||
		(check && len(m.Data) > 0 && !validValue(m.Data)) {
		if check && !utf8.Valid(m.Data) {
			// encoding/json copies raw data as it is, invalid UTF-8 too.
			return dst, fmt.Errorf("signaling: encode %s: data: %w", m.Type, ErrInvalidUTF8)
		}
		b, err := json.Marshal(m)
		if err != nil {
			return dst, fmt.Errorf("signaling: encode %s: %w", m.Type, err)
		}
		return append(dst, b...), nil
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
		dst = append(dst, m.Data...)
	}
	return append(dst, '}'), nil
}

// validValue reports whether d is exactly one JSON value (spaces around
// allowed).
func validValue(d []byte) bool {
	end := skipValue(d, skipWS(d, 0), 0)
	return end >= 0 && skipWS(d, end) == len(d)
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
