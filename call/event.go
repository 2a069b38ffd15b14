package call

import "time"

// EventKind tells which fields of an Event are set.
type EventKind int

// The kinds of event a Call reports.
const (
	// EventState: the call moved to Event.State; when that is Ended,
	// Event.Reason says why.
	EventState EventKind = iota + 1
	// EventStats: a periodic Event.Stats sample (Config.StatsInterval).
	EventStats
	// EventTalking: the local (Event.Remote false) or remote (true) party
	// started (Event.Talking true) or stopped talking.
	EventTalking
	// EventDTMF: the peer sent DTMF digit Event.Digit.
	EventDTMF
	// EventText: the peer sent Event.Text over the call's data channel.
	EventText
)

func (k EventKind) String() string {
	switch k {
	case EventState:
		return "state"
	case EventStats:
		return "stats"
	case EventTalking:
		return "talking"
	case EventDTMF:
		return "dtmf"
	case EventText:
		return "text"
	}
	return "unknown"
}

// Event is one thing that happened to a call. Call.Events delivers every
// event from the call's creation on, in order, however late or slowly the
// subscriber reads.
type Event struct {
	Kind EventKind
	Time time.Time

	State  State  // EventState
	Reason Reason // EventState when State is Ended
	Err    error  // EventState when State is Ended with ReasonError (or a wrapped cause)

	Stats Stats // EventStats

	Remote  bool    // EventTalking: whose voice
	Talking bool    // EventTalking
	Level   float64 // EventTalking: level in dBov at the change

	Digit rune   // EventDTMF
	Text  string // EventText
}
