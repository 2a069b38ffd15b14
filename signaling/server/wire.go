package server

import (
	"encoding/binary"

	"github.com/dialtone-dev/dialtone/signaling"
)

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
	// The data was validated when the frame came in (or made by the server).
	dst, err := signaling.AppendEncodeTrusted(dst, m)
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
