package call

// State is where a call is in its life. Outgoing calls go
// Idle → Dialing → Waiting → Connecting → Connected → Ended; incoming calls
// go Ringing → Connecting → Connected → Ended. Reconnecting is entered from
// Connected while ICE restarts after a network change and left for
// Connected again or Ended (ice-failed).
type State int

// The states of a call.
const (
	Idle State = iota
	Dialing
	Waiting
	Ringing
	Connecting
	Connected
	Reconnecting
	Ended
)

var stateNames = [...]string{"idle", "dialing", "waiting", "ringing", "connecting", "connected", "reconnecting", "ended"}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// Reason says why a call ended. Every ended call carries exactly one, and a
// terminal failure is never overwritten by a late event for the same call.
type Reason string

// The end reasons. They travel on the wire in `hangup` messages too.
const (
	ReasonHangup         Reason = "hangup"          // we hung up
	ReasonRemoteHangup   Reason = "remote-hangup"   // the peer hung up
	ReasonDeclined       Reason = "declined"        // the callee declined (either side reports it)
	ReasonBusy           Reason = "busy"            // the callee already had a call
	ReasonOffline        Reason = "offline"         // the callee was not connected and could not be woken
	ReasonPushFailed     Reason = "push-failed"     // the server's push hook failed
	ReasonNoAnswer       Reason = "no-answer"       // nobody answered within RingTimeout
	ReasonCancelled      Reason = "cancelled"       // the caller gave up before an answer
	ReasonConnectTimeout Reason = "connect-timeout" // accepted, but media never connected within ConnectTimeout
	ReasonICEFailed      Reason = "ice-failed"      // the network path failed and ICE restarts did not bring it back
	ReasonRelayFailed    Reason = "relay-failed"    // RelayOnly, and the TURN relay gave no allocation (refused credentials, unreachable); Err names the relay
	ReasonSignalingLost  Reason = "signaling-lost"  // the signaling connection was lost while the call needed it
	ReasonUnauthorized   Reason = "unauthorized"    // the server refused us
	ReasonError          Reason = "error"           // anything else; the call's Err says what
)

// The reasons a room ends (Room.Reason) or a member leaves it
// (MemberLeft), besides ReasonSignalingLost, ReasonUnauthorized,
// ReasonConnectTimeout (the server never answered the join) and
// ReasonError.
const (
	ReasonLeft Reason = "left" // Room.Leave or Phone.Close; a member that sent `leave`
	ReasonGone Reason = "gone" // the connection stayed lost past the server's grace: the server removed the member
	// In a Janus room (Phone.JoinJanus):
	ReasonKicked    Reason = "kicked"    // the room's admin removed us (or a member)
	ReasonDestroyed Reason = "destroyed" // the room was destroyed
)
