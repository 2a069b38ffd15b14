package signaling

import (
	"encoding/json"
	"unicode"
	"unicode/utf8"
)

// MaxRoomLength is the longest room name, in bytes.
const MaxRoomLength = 64

// MaxDisplayNameLength is the longest display name a join may carry, in
// bytes.
const MaxDisplayNameLength = 128

// ValidRoom reports whether name is a valid room name: 1 to MaxRoomLength
// bytes of ASCII letters, digits, '-', '_' and '.'. Room names are case
// sensitive. A join of any other name is answered `bad-room`.
func ValidRoom(name string) bool {
	if len(name) == 0 || len(name) > MaxRoomLength {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

// ValidDisplayName reports whether name may be a member's display name:
// at most MaxDisplayNameLength bytes of UTF-8 without control characters.
func ValidDisplayName(name string) bool {
	if len(name) > MaxDisplayNameLength || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// Why a member left, in [MemberEvent.Reason] of TypeMemberLeft.
const (
	// LeftLeave: the member sent `leave`.
	LeftLeave = "left"
	// LeftGone: the member's connection was lost and did not come back
	// (with a `join` of the same room) within the server's grace, or its
	// server node left the cluster.
	LeftGone = "gone"
)

// Join is the data of TypeJoin.
type Join struct {
	// DisplayName is the name the other members show. The member's ID is
	// its authenticated user ID.
	DisplayName string `json:"displayName,omitempty"`
	// Muted is the member's microphone state when it joins.
	Muted bool `json:"muted,omitempty"`
}

// Mute is the data of TypeMute.
type Mute struct {
	Muted bool `json:"muted"`
}

// Member is one member of a room.
type Member struct {
	User        string `json:"user"`
	DisplayName string `json:"displayName,omitempty"`
	Muted       bool   `json:"muted,omitempty"`
	// Session numbers this membership: the room's Seq when the member
	// joined. It stays through a reconnect within the server's grace and
	// changes when the user leaves and joins again, so a peer connection
	// between two members is named by the room and both sessions.
	Session uint64 `json:"session"`
}

// Members is the data of TypeMembers, the answer to a join.
type Members struct {
	// Seq is the room's change counter at this list: every join, leave
	// and update increments it. An event with a Seq at or below it is
	// already in the list.
	Seq uint64 `json:"seq"`
	// Session is the joiner's own session (see Member.Session).
	Session uint64 `json:"session"`
	// Resumed is set when the join took back a membership the user still
	// had (a reconnect within the grace, or a repeated join): the other
	// members were not told anything and kept their peer connections with
	// it. Unset, every peer connection of an earlier membership is gone.
	Resumed bool `json:"resumed,omitempty"`
	// Members lists every member, the joiner included.
	Members []Member `json:"members"`
}

// MemberEvent is the data of TypeMemberJoined, TypeMemberLeft and
// TypeMemberUpdated.
type MemberEvent struct {
	// Seq is the room's change counter after this change.
	Seq    uint64 `json:"seq"`
	Member Member `json:"member"`
	// Reason says why a member left (LeftLeave, LeftGone); empty on
	// the other events.
	Reason string `json:"reason,omitempty"`
}

// RoomSignal is the data of TypeRoomSignal: one negotiation message (the
// negotiation.Signal JSON) for the peer connection between the sender's
// membership Session and the recipient's, PeerSession. A recipient drops
// one whose sessions are not those of the current memberships: it belongs
// to a peer connection of an earlier membership.
//
// Attempt numbers the pair's peer connections within the two memberships:
// 0 for the first, one more each time the pair starts over after its peer
// connection failed. A recipient drops a signal of an earlier attempt, and
// one of a later attempt replaces its peer connection with the sender by a
// new one.
type RoomSignal struct {
	Session     uint64          `json:"session"`
	PeerSession uint64          `json:"peerSession"`
	Attempt     uint32          `json:"attempt,omitempty"`
	Signal      json.RawMessage `json:"signal"`
}
