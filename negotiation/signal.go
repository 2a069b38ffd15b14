package negotiation

import "github.com/pion/webrtc/v4"

// Signal is one negotiation message for the far side: either a session
// description or one trickled ICE candidate. It is exactly the `data` of a
// `signal` wire message, so the call layer marshals it as JSON unchanged.
type Signal struct {
	Description *webrtc.SessionDescription `json:"description,omitempty"`
	Candidate   *webrtc.ICECandidateInit   `json:"candidate,omitempty"`
}
