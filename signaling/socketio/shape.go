package socketio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Events names the events of a room-relay server. Every empty field takes
// the default given beside it.
type Events struct {
	// Join (client → server) joins the room; its argument is the room's
	// name. Default "join".
	Join string
	// Joined (server → client) says the room has another member: sent to
	// the members when one joins, or to a joiner that found one there.
	// Default "joined".
	Joined string
	// Offer and Answer carry a session description, both ways. Defaults
	// "offer" and "answer".
	Offer, Answer string
	// Candidate carries a trickled ICE candidate, both ways. Default
	// "candidate".
	Candidate string
	// Leave (both ways): the client leaves the room, or the server says
	// that the other member left (hung up or disconnected). Its argument
	// to the server is the room's name. Default "leave".
	Leave string
}

func (e Events) withDefaults() Events {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&e.Join, "join")
	def(&e.Joined, "joined")
	def(&e.Offer, "offer")
	def(&e.Answer, "answer")
	def(&e.Candidate, "candidate")
	def(&e.Leave, "leave")
	return e
}

// Style is how an outgoing offer, answer or candidate names its room.
type Style int

// Styles of the room-relay servers in the wild.
const (
	// StyleObject: one object holding the room and the payload,
	// [{"room": "r1", "sdp": {"type": "offer", "sdp": "v=0..."}}] (keys from
	// Shape). The default.
	StyleObject Style = iota
	// StyleRoomFirst: the room, then the payload: ["r1", {"type": ...}].
	StyleRoomFirst
	// StyleBare: the payload alone, for servers that remember each
	// socket's room: [{"type": "offer", "sdp": "v=0..."}].
	StyleBare
)

// Shape is the shape of the offer, answer and candidate payloads a
// room-relay server takes. The payloads themselves are the browser's:
// an RTCSessionDescriptionInit ({"type", "sdp"}) and an
// RTCIceCandidateInit ({"candidate", "sdpMid", "sdpMLineIndex"}), which
// a page gets from pc.localDescription and candidate.toJSON().
//
// Shape decides what is sent. What arrives is read whatever its shape:
// the first argument that is a description (an object with a string
// "sdp"; or a bare SDP string) or a candidate (an object with a string
// "candidate"; "label" and "id" are read as sdpMLineIndex and sdpMid, as
// some apps send them), looked for in the arguments and, one level down,
// under DescriptionKey or CandidateKey.
type Shape struct {
	Style Style
	// RoomKey, DescriptionKey and CandidateKey are StyleObject's keys.
	// Defaults "room", "sdp" and "candidate".
	RoomKey, DescriptionKey, CandidateKey string
}

func (s Shape) withDefaults() Shape {
	if s.RoomKey == "" {
		s.RoomKey = "room"
	}
	if s.DescriptionKey == "" {
		s.DescriptionKey = "sdp"
	}
	if s.CandidateKey == "" {
		s.CandidateKey = "candidate"
	}
	return s
}

// args returns the arguments of an outgoing event carrying payload, under
// key for StyleObject.
func (s Shape) args(room, key string, payload json.RawMessage) []any {
	switch s.Style {
	case StyleRoomFirst:
		return []any{room, payload}
	case StyleBare:
		return []any{payload}
	}
	return []any{map[string]any{s.RoomKey: room, key: payload}}
}

// description is an RTCSessionDescriptionInit.
type description struct {
	Type string `json:"type"`
	SDP  string `json:"sdp"`
}

// candidate is an RTCIceCandidateInit.
type candidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex,omitempty"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// maxDepth bounds the search for a payload inside an argument.
const maxDepth = 2

// findDescription returns the session description in an event's
// arguments; kind ("offer" or "answer") is the type of one given without.
func (s Shape) findDescription(args []json.RawMessage, kind string) (description, error) {
	for _, a := range args {
		if d, ok := s.description(a, kind, 0); ok {
			return d, nil
		}
	}
	return description{}, fmt.Errorf("%w: no session description in %s", ErrBadPayload, abbreviate(args))
}

func (s Shape) description(a json.RawMessage, kind string, depth int) (description, bool) {
	a = bytes.TrimSpace(a)
	if len(a) == 0 {
		return description{}, false
	}
	switch a[0] {
	case '"':
		var sdp string
		if json.Unmarshal(a, &sdp) == nil && strings.HasPrefix(sdp, "v=0") {
			return description{Type: kind, SDP: sdp}, true
		}
	case '{':
		var obj map[string]json.RawMessage
		if json.Unmarshal(a, &obj) != nil {
			return description{}, false
		}
		var d description
		if json.Unmarshal(obj["sdp"], &d.SDP) == nil && strings.HasPrefix(d.SDP, "v=0") {
			if json.Unmarshal(obj["type"], &d.Type) != nil || d.Type == "" {
				d.Type = kind
			}
			switch d.Type {
			case "offer", "answer", "pranswer":
				return d, true
			}
			return description{}, false
		}
		if depth < maxDepth {
			for _, k := range []string{s.DescriptionKey, "description", "sdp"} {
				if v, ok := obj[k]; ok {
					if d, ok := s.description(v, kind, depth+1); ok {
						return d, true
					}
				}
			}
		}
	}
	return description{}, false
}

// findCandidate returns the ICE candidate in an event's arguments.
func (s Shape) findCandidate(args []json.RawMessage) (candidate, error) {
	for _, a := range args {
		if c, ok := s.candidate(a, 0); ok {
			return c, nil
		}
	}
	return candidate{}, fmt.Errorf("%w: no ICE candidate in %s", ErrBadPayload, abbreviate(args))
}

func (s Shape) candidate(a json.RawMessage, depth int) (candidate, bool) {
	a = bytes.TrimSpace(a)
	if len(a) == 0 || a[0] != '{' {
		return candidate{}, false
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(a, &obj) != nil {
		return candidate{}, false
	}
	var c candidate
	if json.Unmarshal(obj["candidate"], &c.Candidate) == nil {
		if json.Unmarshal(a, &c) != nil {
			return candidate{}, false
		}
		if c.SDPMLineIndex == nil {
			var label uint16
			if json.Unmarshal(obj["label"], &label) == nil {
				c.SDPMLineIndex = &label
			}
		}
		if c.SDPMid == nil {
			var id string
			if json.Unmarshal(obj["id"], &id) == nil {
				c.SDPMid = &id
			}
		}
		return c, true
	}
	if depth < maxDepth {
		for _, k := range []string{s.CandidateKey, "candidate", "ice"} {
			if v, ok := obj[k]; ok {
				if c, ok := s.candidate(v, depth+1); ok {
					return c, true
				}
			}
		}
	}
	return candidate{}, false
}

// abbreviate quotes the start of args for an error message.
func abbreviate(args []json.RawMessage) string {
	b, _ := json.Marshal(args)
	return fmt.Sprintf("%.80q", b)
}
