package call

import "errors"

// Sentinel errors; branch on them with errors.Is.
var (
	// ErrBusy: the phone already has a live call (Dial), or the peer was
	// busy.
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
	// ErrNoDTMF: the peer did not negotiate RFC 4733 telephone events.
	ErrNoDTMF = errors.New("call: peer does not support DTMF events")
)
