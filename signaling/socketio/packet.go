package socketio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Engine.IO v4 packet types: the first byte of every WebSocket text frame.
const (
	engineOpen    = '0'
	engineClose   = '1'
	enginePing    = '2'
	enginePong    = '3'
	engineMessage = '4'
	engineUpgrade = '5'
	engineNoop    = '6'
)

// PacketType is a Socket.IO v5 packet type.
type PacketType byte

// Socket.IO v5 packet types.
const (
	PacketConnect      PacketType = 0
	PacketDisconnect   PacketType = 1
	PacketEvent        PacketType = 2
	PacketAck          PacketType = 3
	PacketConnectError PacketType = 4
	PacketBinaryEvent  PacketType = 5
	PacketBinaryAck    PacketType = 6
)

// String returns the protocol's name for t.
func (t PacketType) String() string {
	switch t {
	case PacketConnect:
		return "CONNECT"
	case PacketDisconnect:
		return "DISCONNECT"
	case PacketEvent:
		return "EVENT"
	case PacketAck:
		return "ACK"
	case PacketConnectError:
		return "CONNECT_ERROR"
	case PacketBinaryEvent:
		return "BINARY_EVENT"
	case PacketBinaryAck:
		return "BINARY_ACK"
	}
	return "PacketType(" + strconv.Itoa(int(t)) + ")"
}

// Packet is one Socket.IO packet, as carried in an Engine.IO message:
//
//	<type>[<attachments>-][<namespace>,][<ack id>][<JSON data>]
//
// Namespace "/" (the main one) is not written.
type Packet struct {
	Type      PacketType
	Namespace string
	// ID is the acknowledgement ID; HasID says whether there is one.
	ID    uint64
	HasID bool
	// Data is the packet's JSON payload, or nil: an array for EVENT and ACK,
	// an object for CONNECT and CONNECT_ERROR.
	Data json.RawMessage
}

// maxAckID bounds an acknowledgement ID: the reference implementation's
// counter is a JavaScript number, and a longer digit run is garbage.
const maxAckID = 1<<53 - 1

// ParsePacket decodes one Socket.IO packet. It never panics; errors wrap
// ErrBadPacket, or ErrBinary for the binary packet types, whose
// attachments this package does not take.
func ParsePacket(b []byte) (Packet, error) {
	if len(b) == 0 {
		return Packet{}, fmt.Errorf("%w: empty", ErrBadPacket)
	}
	if b[0] < '0' || b[0] > '6' {
		return Packet{}, fmt.Errorf("%w: type %q", ErrBadPacket, b[0])
	}
	p := Packet{Type: PacketType(b[0] - '0'), Namespace: "/"}
	if p.Type == PacketBinaryEvent || p.Type == PacketBinaryAck {
		return Packet{}, fmt.Errorf("%w: %s", ErrBinary, p.Type)
	}
	rest := b[1:]
	if len(rest) > 0 && rest[0] == '/' {
		i := bytes.IndexByte(rest, ',')
		if i < 0 {
			// The namespace runs to the end: a packet without data.
			i = len(rest)
		}
		p.Namespace = string(rest[:i])
		rest = rest[min(i+1, len(rest)):]
	}
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n > 0 {
		id, err := strconv.ParseUint(string(rest[:n]), 10, 64)
		if err != nil || id > maxAckID {
			return Packet{}, fmt.Errorf("%w: ack id %.20q", ErrBadPacket, rest[:n])
		}
		p.ID, p.HasID = id, true
		rest = rest[n:]
	}
	if len(rest) > 0 {
		if !json.Valid(rest) {
			return Packet{}, fmt.Errorf("%w: %s data is not JSON", ErrBadPacket, p.Type)
		}
		p.Data = rest
	}
	switch p.Type {
	case PacketEvent, PacketAck:
		if len(p.Data) == 0 || p.Data[0] != '[' {
			return Packet{}, fmt.Errorf("%w: %s data is not a JSON array", ErrBadPacket, p.Type)
		}
	case PacketConnect, PacketConnectError:
		if len(p.Data) > 0 && p.Data[0] != '{' && p.Type == PacketConnect {
			return Packet{}, fmt.Errorf("%w: CONNECT data is not a JSON object", ErrBadPacket)
		}
	}
	return p, nil
}

// AppendPacket appends the encoding of p to b.
func AppendPacket(b []byte, p Packet) []byte {
	b = append(b, '0'+byte(p.Type))
	if p.Namespace != "" && p.Namespace != "/" {
		b = append(b, p.Namespace...)
		b = append(b, ',')
	}
	if p.HasID {
		b = strconv.AppendUint(b, p.ID, 10)
	}
	return append(b, p.Data...)
}

// Event is one EVENT packet's content: the event's name and its
// arguments, each still JSON.
type Event struct {
	Name string
	Args []json.RawMessage
}

// ParseEvent splits an EVENT packet's data, a JSON array whose first
// element is the event's name. It never panics; errors wrap ErrBadPacket.
func ParseEvent(data json.RawMessage) (Event, error) {
	var elems []json.RawMessage
	if err := json.Unmarshal(data, &elems); err != nil {
		return Event{}, fmt.Errorf("%w: event: %v", ErrBadPacket, err)
	}
	if len(elems) == 0 {
		return Event{}, fmt.Errorf("%w: event without a name", ErrBadPacket)
	}
	var e Event
	if len(elems[0]) == 0 || elems[0][0] != '"' || json.Unmarshal(elems[0], &e.Name) != nil {
		return Event{}, fmt.Errorf("%w: event name is not a string", ErrBadPacket)
	}
	e.Args = elems[1:]
	return e, nil
}

// encodeEvent returns the data of an EVENT packet: [name, args...].
func encodeEvent(name string, args []any) (json.RawMessage, error) {
	elems := make([]any, 0, 1+len(args))
	elems = append(elems, name)
	elems = append(elems, args...)
	b, err := json.Marshal(elems)
	if err != nil {
		return nil, fmt.Errorf("socketio: encode event %q: %w", name, err)
	}
	return b, nil
}
