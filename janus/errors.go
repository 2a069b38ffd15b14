package janus

import (
	"errors"
	"fmt"
	"strings"
)

// Errors a caller branches on. Janus's own and the AudioBridge's error codes
// are reported as *Error values that match these with errors.Is.
var (
	// ErrNoSuchRoom: the room does not exist (AudioBridge 485).
	ErrNoSuchRoom = errors.New("janus: no such room")
	// ErrRoomExists: a room with that ID exists already (AudioBridge 486).
	ErrRoomExists = errors.New("janus: room exists")
	// ErrUnauthorized: wrong PIN or secret (AudioBridge 489, Janus 403), or
	// a missing one (AudioBridge 483 naming it).
	ErrUnauthorized = errors.New("janus: unauthorized (wrong pin or secret)")
	// ErrNotJoined: the request needs a joined participant (AudioBridge 487).
	ErrNotJoined = errors.New("janus: not in a room")
	// ErrAlreadyJoined: the handle is in a room already (AudioBridge 491).
	ErrAlreadyJoined = errors.New("janus: already in a room")
	// ErrIDExists: a participant with that ID is in the room (AudioBridge 490).
	ErrIDExists = errors.New("janus: participant ID taken")
	// ErrNoSuchParticipant: no participant with that ID (AudioBridge 492).
	ErrNoSuchParticipant = errors.New("janus: no such participant")
	// ErrInvalidRequest: Janus rejected the request's form (AudioBridge
	// 481-484, 493, Janus 452-457, 464-467).
	ErrInvalidRequest = errors.New("janus: invalid request")
	// ErrNoSuchSession: the session does not exist on the server (Janus 458).
	ErrNoSuchSession = errors.New("janus: no such session")
	// ErrNoSuchHandle: the handle does not exist on the server (Janus 459).
	ErrNoSuchHandle = errors.New("janus: no such handle")
	// ErrNoSuchPlugin: the plugin is not loaded on the server (Janus 460).
	ErrNoSuchPlugin = errors.New("janus: no such plugin")

	// ErrDisconnected: the API connection dropped before the request was
	// answered; Janus may or may not have carried it out.
	ErrDisconnected = errors.New("janus: API connection lost before the reply")
	// ErrSessionLost: the API connection dropped and the session could not
	// be claimed back (no reconnection within Config.ReconnectTimeout, or
	// the server had destroyed it).
	ErrSessionLost = errors.New("janus: session lost")
	// ErrSessionTimeout: Janus timed the session out (no request within its
	// session_timeout).
	ErrSessionTimeout = errors.New("janus: session timed out on the server")
	// ErrDetached: the handle was detached (by Close or by Janus).
	ErrDetached = errors.New("janus: handle detached")
	// ErrClosed: the session was closed.
	ErrClosed = errors.New("janus: session closed")
	// ErrProtocol: the server's reply could not be understood.
	ErrProtocol = errors.New("janus: unexpected reply")
)

// Error is an error reported by Janus or by a plugin: its numeric code and
// its text. It matches the sentinel error of its code with errors.Is.
type Error struct {
	Code   int
	Reason string
}

func (e *Error) Error() string {
	if s := e.Unwrap(); s != nil {
		return fmt.Sprintf("%v (Janus %d: %s)", s, e.Code, e.Reason)
	}
	return fmt.Sprintf("janus: error %d: %s", e.Code, e.Reason)
}

// Unwrap returns the sentinel error of e's code, if it has one.
func (e *Error) Unwrap() error {
	switch e.Code {
	case 485:
		return ErrNoSuchRoom
	case 486:
		return ErrRoomExists
	case 489, 403, 405:
		return ErrUnauthorized
	case 487:
		return ErrNotJoined
	case 491:
		return ErrAlreadyJoined
	case 490:
		return ErrIDExists
	case 492:
		return ErrNoSuchParticipant
	case 483:
		// The AudioBridge asks for a room's PIN or secret as a mandatory
		// element: missing, it is as unauthorized as a wrong one.
		if strings.Contains(e.Reason, "(pin)") || strings.Contains(e.Reason, "(secret)") {
			return ErrUnauthorized
		}
		return ErrInvalidRequest
	case 481, 482, 484, 493, 452, 453, 454, 455, 456, 457, 464, 465, 466, 467:
		return ErrInvalidRequest
	case 458:
		return ErrNoSuchSession
	case 459:
		return ErrNoSuchHandle
	case 460:
		return ErrNoSuchPlugin
	}
	return nil
}
