package call

import "time"

// RoomEventKind tells what a RoomEvent reports.
type RoomEventKind int

// The kinds of event a Room reports. Member events carry the member as it
// is after the change in RoomEvent.Member.
const (
	// MemberJoined: a member joined the room. The members already there
	// when Join returned come first, one event each, in joining order.
	MemberJoined RoomEventKind = iota + 1
	// MemberLeft: a member left (Reason ReasonLeft) or the server removed
	// it after its connection stayed lost (ReasonGone). Its peer
	// connection is closed; nothing more is heard from it.
	MemberLeft
	// MemberConnected: the media path with the member is up: each hears
	// the other from now on.
	MemberConnected
	// MemberTalking and MemberStoppedTalking follow the member's voice
	// activity in the audio received from it (Level: its level in dBov).
	MemberTalking
	MemberStoppedTalking
	// MemberMuted and MemberUnmuted: the member muted or unmuted its
	// microphone (the server's member-updated).
	MemberMuted
	MemberUnmuted
	// MemberReconnecting: the network path to the member was lost and ICE
	// restarts on that peer connection alone; MemberReconnected: it is
	// back.
	MemberReconnecting
	MemberReconnected
	// MemberFailed: the peer connection with the member failed (it did
	// not connect within Config.ConnectTimeout, or ICE restarts did not
	// bring it back; Err says why). The member stays in the room, unheard,
	// while the pair starts over: the later joiner of the two makes a new
	// peer connection after 1 s, then after 2, 4, ... up to 30 s between
	// failed attempts, for as long as both are in the room. MemberConnected
	// follows when one connects. (A new peer connection that replaces one
	// still working on this side is MemberReconnecting, then
	// MemberReconnected.)
	MemberFailed
	// MemberStats: a periodic sample (Config.StatsInterval) of the stream
	// exchanged with the member.
	MemberStats
	// MemberText: the member sent Text (Room.SendText) on the data
	// channel.
	MemberText
	// RoomReconnecting: the signaling connection was lost; the media with
	// the members carries on. RoomReconnected: it is back and the
	// membership was taken back (members that changed meanwhile are
	// reported as MemberLeft and MemberJoined just before it).
	RoomReconnecting
	RoomReconnected
	// RoomEnded is the last event: Reason (and Err) say why.
	RoomEnded
)

var roomEventNames = [...]string{"", "member-joined", "member-left", "member-connected", "member-talking",
	"member-stopped-talking", "member-muted", "member-unmuted", "member-reconnecting", "member-reconnected",
	"member-failed", "member-stats", "member-text", "room-reconnecting", "room-reconnected", "room-ended"}

func (k RoomEventKind) String() string {
	if k > 0 && int(k) < len(roomEventNames) {
		return roomEventNames[k]
	}
	return "unknown"
}

// RoomEvent is one thing that happened in a room. Room.Events delivers
// every event from Join on, in order, however late or slowly the
// subscriber reads.
type RoomEvent struct {
	Kind RoomEventKind
	Time time.Time
	// Member is the member concerned (member events), as it is after the
	// change.
	Member Member
	// Reason: why a member left (MemberLeft) or the room ended (RoomEnded).
	Reason Reason
	// Err: what failed (MemberFailed, RoomEnded with a failure).
	Err error
	// Level is the member's level in dBov (MemberTalking,
	// MemberStoppedTalking).
	Level float64
	Stats Stats  // MemberStats
	Text  string // MemberText
}

// Member is another member of a room, as Room.Members and RoomEvent show
// it.
type Member struct {
	// User is the member's authenticated user ID.
	User string
	// DisplayName is the name the member joined with.
	DisplayName string
	// Muted: the member has muted its microphone.
	Muted bool
	// Connected: the media path with the member is up.
	Connected bool
	// Talking: voice is heard from the member now.
	Talking bool
	// Level is the level of the member's audio last played, in dBov.
	Level float64
	// Volume is the gain its audio is mixed with (Room.SetVolume; 1 by
	// default).
	Volume float64
}
