package call

import "errors"

// Sentinel errors; branch on them with errors.Is.
var (
	// ErrBusy: the phone already has a live call (Dial, Join), or the
	// peer was busy.
	ErrBusy = errors.New("call: busy")
	// ErrEnded: the call has already ended.
	ErrEnded = errors.New("call: ended")
	// ErrState: the operation does not fit the call's state (accepting an
	// outgoing call, sending text before connected, ...).
	ErrState = errors.New("call: wrong state for this operation")
	// ErrClosed: the phone is closed.
	ErrClosed = errors.New("call: phone closed")
	// ErrNoTransport: NewPhone was given no signaling transport.
	ErrNoTransport = errors.New("call: no signaling transport")
	// ErrNoPeer: Dial was given no user to call.
	ErrNoPeer = errors.New("call: no user to call")
	// ErrBadDTMF: SendDTMF was given a character that is not a DTMF digit.
	ErrBadDTMF = errors.New("call: not a DTMF digit")
	// ErrRelay: a RelayOnly call got no relay candidate: the TURN server
	// refused the credentials or did not answer (the call ends
	// ReasonRelayFailed; its Err names the relay and what it answered).
	ErrRelay = errors.New("call: no relay candidate")
	// ErrNoDTMF: the peer did not negotiate RFC 4733 telephone events.
	ErrNoDTMF = errors.New("call: peer does not support DTMF events")
	// ErrRecording: the call or room is already being recorded (Record);
	// stop that recording first.
	ErrRecording = errors.New("call: already recording")
	// ErrNotOpus: an Ogg recording was asked for, but the call's received
	// stream is not Opus (G.711 was negotiated); the WAV is recorded all
	// the same. Recording.Stop and Recording.Err report it.
	ErrNotOpus = errors.New("call: record: the far end does not send Opus; no Ogg recorded")

	// ErrInRoom: the phone is in a room (Dial, Join), or the server says
	// the user is a member of another room (Join answered `in-room`, for
	// example from another device): leave it first.
	ErrInRoom = errors.New("call: in a room")
	// ErrBadRoom: the room name is not valid (signaling.ValidRoom), or the
	// display name is not (signaling.ValidDisplayName).
	ErrBadRoom = errors.New("call: bad room name or display name")
	// ErrNoRooms: the signaling server speaks protocol version 1, which
	// has no rooms (ready.protocol < 2).
	ErrNoRooms = errors.New("call: server does not support rooms")
	// ErrRoomFull: the room has the server's maximum number of members.
	ErrRoomFull = errors.New("call: room full")
	// ErrForbidden: the server's authorisation hook refused the join.
	ErrForbidden = errors.New("call: not allowed to join this room")
	// ErrUnknownRoom: the server's authorisation hook knows no such room.
	ErrUnknownRoom = errors.New("call: no such room")
	// ErrUnavailable: the server could not reach its room store; try again.
	ErrUnavailable = errors.New("call: room service unavailable")
	// ErrNoOpus: a Janus AudioBridge carries Opus only, and this build has
	// no Opus (it needs cgo).
	ErrNoOpus = errors.New("call: this build has no Opus (it needs cgo), which a Janus AudioBridge requires")
)
