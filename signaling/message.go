package signaling

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// ProtocolVersion is the version of the wire protocol (PROTOCOL.md) this
// package speaks, sent by the server in `ready` (Ready.Protocol). Additions
// that follow the extension rule (new types, new fields in data) keep the
// version; only a change old peers would misread increments it, or new
// types the server sends or answers itself: version 2 added rooms (join,
// leave, mute, members, member-joined, member-left, member-updated,
// room-signal), so a client joins a room only when Ready.Protocol >= 2.
const ProtocolVersion = 2

// Type names a message type of the wire protocol.
type Type string

// The message types of the wire protocol. See PROTOCOL.md for the direction,
// payload and an example of each.
const (
	// TypeReady (server → client): the connection is authenticated and
	// routable. Data: [Ready].
	TypeReady Type = "ready"
	// TypeRelay (client → server): ask for ICE servers with fresh TURN
	// credentials. No data.
	TypeRelay Type = "relay"
	// TypeRelayConfig (server → client): the answer to TypeRelay. Data: [RelayConfig].
	TypeRelayConfig Type = "relay-config"
	// TypeInvite (caller → callee): start call `call`. Data: [Invite].
	TypeInvite Type = "invite"
	// TypeWaiting (server → caller): the invite reached the callee, or a push
	// was sent to wake it. `from` is the callee.
	TypeWaiting Type = "waiting"
	// TypeOffline (server → caller): the recipient is not connected and could
	// not be woken. `from` is the recipient.
	TypeOffline Type = "offline"
	// TypePushFailed (server → caller): the push hook failed. `from` is the
	// callee. Data (optional): [Error].
	TypePushFailed Type = "push-failed"
	// TypeRinging (callee → caller): the callee's phone is ringing.
	TypeRinging Type = "ringing"
	// TypeAccept (callee → caller): the callee answered.
	TypeAccept Type = "accept"
	// TypeDecline (callee → caller): the callee refused. Data (optional): [Hangup].
	TypeDecline Type = "decline"
	// TypeBusy (callee → caller): the callee already has a call.
	TypeBusy Type = "busy"
	// TypeCancel (caller → callee): the caller gave up before an answer.
	// Data (optional): [Hangup].
	TypeCancel Type = "cancel"
	// TypeSignal (both): a session description or an ICE candidate for the
	// negotiation package: {"description": {...}} or {"candidate": {...}}.
	TypeSignal Type = "signal"
	// TypeHangup (both): the call ended. Data: [Hangup].
	TypeHangup Type = "hangup"
	// TypeError (server → client): a message was rejected, or the connection
	// is about to be closed. Data: [Error].
	TypeError Type = "error"

	// Rooms (protocol version 2). On every room message `call` is the
	// room's name (see ValidRoom).

	// TypeJoin (client → server): join room `call`, or take back a
	// membership kept through a reconnect. Data (optional): [Join].
	// Answered [TypeMembers], or `error`.
	TypeJoin Type = "join"
	// TypeLeave (client → server): leave room `call`. No data. Answered
	// [TypeMemberLeft] about the leaver, or `error`.
	TypeLeave Type = "leave"
	// TypeMute (client → server): the member's microphone was muted or
	// unmuted. Data: [Mute]. The other members get [TypeMemberUpdated].
	TypeMute Type = "mute"
	// TypeMembers (server → joiner): the room's members once the join
	// succeeded. Data: [Members].
	TypeMembers Type = "members"
	// TypeMemberJoined (server → members): a member joined. `from` is the
	// joiner. Data: [MemberEvent].
	TypeMemberJoined Type = "member-joined"
	// TypeMemberLeft (server → members): a member left, or its connection
	// stayed lost for the server's grace. `from` is the member. Data:
	// [MemberEvent] with a Reason.
	TypeMemberLeft Type = "member-left"
	// TypeMemberUpdated (server → members): a member's muted flag or
	// display name changed. `from` is the member. Data: [MemberEvent].
	TypeMemberUpdated Type = "member-updated"
	// TypeRoomSignal (member → member): negotiation between two members of
	// room `call`, for the peer connection between them. Data: [RoomSignal].
	TypeRoomSignal Type = "room-signal"
)

// Types lists every message type, in protocol order.
func Types() []Type {
	return []Type{TypeReady, TypeRelay, TypeRelayConfig, TypeInvite, TypeWaiting,
		TypeOffline, TypePushFailed, TypeRinging, TypeAccept, TypeDecline, TypeBusy,
		TypeCancel, TypeSignal, TypeHangup, TypeError,
		TypeJoin, TypeLeave, TypeMute, TypeMembers, TypeMemberJoined, TypeMemberLeft,
		TypeMemberUpdated, TypeRoomSignal}
}

// Known reports whether t is a message type of this protocol version. By
// the extension rule a peer ignores a message of a type it does not know,
// and a server relays it from one user to another (see Routed).
func (t Type) Known() bool {
	switch t {
	case TypeReady, TypeRelay, TypeRelayConfig, TypeInvite, TypeWaiting, TypeOffline,
		TypePushFailed, TypeRinging, TypeAccept, TypeDecline, TypeBusy, TypeCancel,
		TypeSignal, TypeHangup, TypeError,
		TypeJoin, TypeLeave, TypeMute, TypeMembers, TypeMemberJoined, TypeMemberLeft,
		TypeMemberUpdated, TypeRoomSignal:
		return true
	}
	return false
}

// ServerOnly reports whether only the server may send messages of type t.
// A server rejects them from clients.
func (t Type) ServerOnly() bool {
	switch t {
	case TypeReady, TypeRelayConfig, TypeWaiting, TypeOffline, TypePushFailed, TypeError,
		TypeMembers, TypeMemberJoined, TypeMemberLeft, TypeMemberUpdated:
		return true
	}
	return false
}

// Routed reports whether messages of type t go from one user to another
// (they need `to` and `call`); the others are between a client and the
// server. Types this version does not know are routed: by the extension
// rule new types are peer-to-peer, so that a server relays what newer
// clients say to each other.
func (t Type) Routed() bool {
	switch t {
	case TypeInvite, TypeRinging, TypeAccept, TypeDecline, TypeBusy, TypeCancel,
		TypeSignal, TypeHangup, TypeRoomSignal:
		return true
	}
	return !t.Known()
}

// MaxTypeLength is the longest type name Decode accepts, in bytes.
const MaxTypeLength = 64

// Valid reports whether t is well formed, a name this or a later protocol
// version could give a type: 1 to MaxTypeLength bytes of a-z, 0-9 and '-'.
// Decode accepts every valid type, known or not.
func (t Type) Valid() bool {
	if len(t) == 0 || len(t) > MaxTypeLength {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// Error codes carried in [Error.Code].
const (
	CodeMalformed     = "malformed"      // not a JSON envelope
	CodeTooLarge      = "too-large"      // over the server's message size limit
	CodeMissingType   = "missing-type"   // envelope without "type"
	CodeUnknownType   = "unknown-type"   // a type name no protocol version could define
	CodeForbiddenType = "forbidden-type" // a server-only type sent by a client
	CodeMissingTo     = "missing-to"     // a routed message without "to"
	CodeMissingCall   = "missing-call"   // a routed message without "call"
	CodeBadRecipient  = "bad-recipient"  // "to" is not a valid user ID
	CodeRateLimited   = "rate-limited"   // the message was dropped by the rate limit
	CodeAbusive       = "abusive"        // too many rejected messages: connection closed
	CodeSlowConsumer  = "slow-consumer"  // the client did not read and its send queue filled: connection closed
	CodeReplaced      = "replaced"       // a newer connection of the same user took over
	CodeShutdown      = "shutdown"       // the server is shutting down
	CodePushFailed    = "push-failed"    // the push hook failed (data of TypePushFailed)

	// Room errors (protocol version 2); `call` is the room's name.
	CodeBadRoom       = "bad-room"        // the room name is not valid (ValidRoom)
	CodeUnknownRoom   = "unknown-room"    // the server's authorisation hook knows no such room
	CodeForbidden     = "forbidden"       // the server's authorisation hook refused the join
	CodeRoomFull      = "room-full"       // the room has its maximum number of members
	CodeInRoom        = "in-room"         // the user is a member of another room: leave it first
	CodeNotMember     = "not-member"      // leave, mute or room-signal for a room the sender is not in
	CodePeerNotMember = "peer-not-member" // a room-signal to a user who is not a member of that room
	CodeUnavailable   = "unavailable"     // the server could not reach its cluster's room store; retry
)

// MaxIDLength is the longest user ID or call ID Decode accepts, in bytes.
const MaxIDLength = 256

// DefaultMaxMessageSize is the size limit Decode applies when given none.
const DefaultMaxMessageSize = 64 << 10

// Message is the one envelope of the wire protocol. Every frame is one
// Message encoded as a JSON object:
//
//	{"type": "...", "from": "...", "to": "...", "call": "...", "data": {...}}
//
// From is set by the server from the authenticated connection; whatever a
// client puts there is overwritten. Data is the type's payload, kept raw so a
// message can be routed without being understood; use [Message.Unmarshal]
// or [NewMessage] to read or build it. A Message is a value: treat Data as
// immutable once the message has been sent.
type Message struct {
	Type Type            `json:"type"`
	From string          `json:"from,omitempty"`
	To   string          `json:"to,omitempty"`
	Call string          `json:"call,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// NewMessage builds a message with data encoded as JSON. data may be nil.
func NewMessage(t Type, to, call string, data any) (Message, error) {
	m := Message{Type: t, To: to, Call: call}
	if data == nil {
		return m, nil
	}
	b, err := json.Marshal(data)
	if err != nil {
		return Message{}, fmt.Errorf("signaling: encode %s data: %w", t, err)
	}
	if !bytes.Equal(b, []byte("null")) {
		m.Data = b
	}
	return m, nil
}

// Unmarshal decodes the message's data into v. It returns ErrNoData when
// the message carries none.
func (m Message) Unmarshal(v any) error {
	if len(m.Data) == 0 {
		return fmt.Errorf("%w (%s)", ErrNoData, m.Type)
	}
	if err := json.Unmarshal(m.Data, v); err != nil {
		return fmt.Errorf("%w: %s data: %v", ErrMalformed, m.Type, err)
	}
	return nil
}

// Encode returns the JSON encoding of m.
func Encode(m Message) ([]byte, error) {
	return AppendEncode(nil, m)
}

// Decode parses one frame into a Message. It never panics. max is the size
// limit in bytes (max <= 0 means DefaultMaxMessageSize). Errors wrap one of
// ErrEmpty, ErrTooLarge, ErrMalformed, ErrMissingType or ErrUnknownType.
// A type this version does not know is accepted when its name is well
// formed (the extension rule); ErrUnknownType is for a name that is not.
// For ErrUnknownType the returned Message is filled in, so a server can
// answer with the message's call ID.
func Decode(b []byte, max int) (Message, error) {
	if m, ok := decodeFast(b, max, false); ok {
		return m, nil
	}
	return decodeSlow(b, max)
}

// DecodeShared is Decode without a copy of the data: the returned
// Message's Data may point into b, which must then stay unchanged while
// the message is in use. For a caller that reads every frame into a fresh
// buffer anyway.
func DecodeShared(b []byte, max int) (Message, error) {
	if m, ok := decodeFast(b, max, true); ok {
		return m, nil
	}
	return decodeSlow(b, max)
}

// decodeSlow is Decode through encoding/json, for every frame.
func decodeSlow(b []byte, max int) (Message, error) {
	if max <= 0 {
		max = DefaultMaxMessageSize
	}
	if len(b) > max {
		return Message{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), max)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return Message{}, ErrEmpty
	}
	if b[0] != '{' {
		return Message{}, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(m.Data) > 0 {
		d := bytes.TrimSpace(m.Data)
		switch {
		case bytes.Equal(d, []byte("null")):
			m.Data = nil
		case d[0] != '{':
			return Message{}, fmt.Errorf("%w: data is not a JSON object", ErrMalformed)
		case !utf8.Valid(d):
			// encoding/json keeps raw data as it is; relayed in a text
			// frame it would make the recipient's browser drop the
			// connection.
			return Message{}, fmt.Errorf("%w: data: %w", ErrMalformed, ErrInvalidUTF8)
		default:
			// Own the bytes: the caller may reuse b.
			m.Data = append(json.RawMessage(nil), d...)
		}
	}
	for _, f := range [...]struct{ name, v string }{{"from", m.From}, {"to", m.To}, {"call", m.Call}} {
		if len(f.v) > MaxIDLength {
			return Message{}, fmt.Errorf("%w: %q longer than %d bytes", ErrMalformed, f.name, MaxIDLength)
		}
	}
	if m.Type == "" {
		return Message{}, ErrMissingType
	}
	if !m.Type.Known() && !m.Type.Valid() {
		return m, fmt.Errorf("%w: %.64q", ErrUnknownType, string(m.Type))
	}
	return m, nil
}

// ICEServer is one STUN or TURN server. Its JSON is the same as
// webrtc.ICEServer's (and the browser's RTCIceServer), so it can be passed
// through unchanged.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Ready is the data of TypeReady.
type Ready struct {
	// User is the authenticated user ID of this connection.
	User string `json:"user"`
	// Protocol is the server's protocol version (ProtocolVersion); 0 from
	// a server older than the field, which spoke version 1.
	Protocol int `json:"protocol,omitempty"`
	// ICEServers is the relay configuration, with TURN credentials valid for
	// RelayTTL seconds from when ready was sent.
	ICEServers []ICEServer `json:"iceServers,omitempty"`
	// RelayTTL is how long, in seconds, the TURN credentials stay valid.
	RelayTTL int `json:"relayTTL,omitempty"`
}

// RelayConfig is the data of TypeRelayConfig. Its fields have the same
// names as Ready's relay fields.
type RelayConfig struct {
	ICEServers []ICEServer `json:"iceServers"`
	// RelayTTL is how long, in seconds, the TURN credentials stay valid.
	RelayTTL int `json:"relayTTL,omitempty"`
}

// Invite is the data of TypeInvite: who is calling, for the callee's UI.
type Invite struct {
	// DisplayName is the caller's name to show. The authenticated caller ID
	// is the envelope's From, which the server sets.
	DisplayName string `json:"displayName,omitempty"`
	// Extra carries application-defined caller information (avatar URL,
	// subject, ...).
	Extra map[string]string `json:"extra,omitempty"`
}

// Hangup is the data of TypeHangup (and, optionally, of TypeDecline and
// TypeCancel): why the call ended.
type Hangup struct {
	Reason string `json:"reason"`
}

// Error is the data of TypeError (and, optionally, of TypePushFailed).
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message,omitempty"`
	// Rejected is the type of the rejected message, when known.
	Rejected Type `json:"rejected,omitempty"`
}

// Error implements the error interface, so a received Error can be returned.
func (e Error) Error() string {
	if e.Message == "" {
		return "signaling: server error " + e.Code
	}
	return "signaling: server error " + e.Code + ": " + e.Message
}

// WebSocket close codes the server uses beyond the standard ones.
const (
	// CloseReplaced closes a connection replaced by a newer one of the same
	// user. The WebSocket Client reconnects after it, more slowly after each
	// replacement that follows soon after the last, unless
	// DialConfig.StopWhenReplaced is set.
	CloseReplaced = 4001
)
