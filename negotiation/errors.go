package negotiation

import "errors"

// Sentinel errors. Callers branch on them with errors.Is; the negotiator wraps
// them with context.
var (
	// ErrICEFailed is reported (Config.OnFailed, Err) when ICE failed and the
	// allowed ICE restarts did not bring the connection back.
	ErrICEFailed = errors.New("negotiation: ICE failed")

	// ErrClosed is returned by calls on a closed Negotiator.
	ErrClosed = errors.New("negotiation: negotiator closed")

	// ErrEmptySignal is returned by HandleSignal for a Signal that carries
	// neither a description nor a candidate (or both).
	ErrEmptySignal = errors.New("negotiation: signal carries neither one description nor one candidate")

	// ErrInvalidDescription is returned for a session description that does
	// not parse, has an unsupported type, or lacks ICE credentials.
	ErrInvalidDescription = errors.New("negotiation: invalid session description")

	// ErrUnexpectedAnswer is returned for an answer that arrives while no
	// local offer is outstanding (for example an answer in stable).
	ErrUnexpectedAnswer = errors.New("negotiation: answer without an outstanding offer")

	// ErrInvalidCandidate is returned for an ICE candidate that does not
	// parse.
	ErrInvalidCandidate = errors.New("negotiation: invalid ICE candidate")

	// ErrUnknownMLine is returned for a candidate whose sdpMid or
	// sdpMLineIndex names no m-line of the remote description.
	ErrUnknownMLine = errors.New("negotiation: candidate for an unknown m-line")

	// ErrNilPeerConnection is returned by New without a PeerConnection.
	ErrNilPeerConnection = errors.New("negotiation: nil PeerConnection")

	// ErrNoSend is returned by New when Config.Send is nil.
	ErrNoSend = errors.New("negotiation: Config.Send is required")
)
