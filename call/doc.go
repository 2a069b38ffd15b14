// Package call is dialtone's user-facing API: a Phone registers a user
// with a signaling server and places and takes voice calls; a Call is one
// call's state machine, timers, events and statistics; a Room is a group
// call over a mesh of peer connections.
//
// A minimal caller:
//
//	tr, err := signaling.Dial(ctx, "wss://example.com/ws", signaling.DialConfig{Token: token})
//	phone, err := call.NewPhone(tr, call.Config{})
//	c, err := phone.Dial(ctx, "bob")
//	for e := range c.Events() {
//		fmt.Println(e.Kind, e.State, e.Reason)
//	}
//
// and a callee:
//
//	for c := range phone.Incoming() {
//		_ = c.Accept(ctx)
//	}
//
// # States and end reasons
//
// Outgoing: Idle → Dialing → Waiting (the callee is ringing) → Connecting
// (answered, media being set up) → Connected ⇄ Reconnecting (ICE restart
// after a network change) → Ended. Incoming: Ringing → Connecting →
// Connected → Ended. Ended carries exactly one Reason; the first one wins
// and no late message can overwrite it.
//
// # Concurrency
//
// Each Call is an actor: one goroutine owns its state, and signaling
// messages, pion callbacks, timers and method calls become events on its
// inbox, handled one at a time in order. Events are delivered through an
// unbounded queue, so Call.Events and Phone.Incoming never lose anything,
// however late or slowly they are read, and never block the actor. Every
// signaling message carries a call ID; messages for another call are
// ignored by construction. Phone.Close stops every goroutine the phone
// started.
//
// # Media
//
// The audio device's clock drives the pipeline: the capture callback feeds
// media.Sender (mute, level/VAD, Opus, RTP), and the playback callback pulls
// media.Receiver (jitter buffer, decode/FEC/PLC) mixed with call-progress
// tones. Ringback plays while Waiting; the busy or error tone plays after
// such failures and the device is released only once it has been heard
// (Call.Done). Roles in negotiation: the caller is impolite, the callee
// polite (see package negotiation).
//
// Call.Record and Room.Record tap the same callbacks: a stereo WAV with
// the microphone as sent on the left and the far end as played on the
// right, on one timeline, and an Ogg Opus copy of the received packets;
// the taps hand copies to the recording's own writer and never wait for
// it.
//
// # Rooms
//
// A Room is a group call where everyone hears everyone (PROTOCOL.md,
// "Rooms"; the server needs protocol version 2):
//
//	room, err := phone.Join(ctx, "standup", call.RoomConfig{DisplayName: "Alice"})
//	for e := range room.Events() {
//		fmt.Println(e.Kind, e.Member.User, e.Reason)
//	}
//	room.Mute(true)
//	room.SetVolume("bob", 0.5)
//	_ = room.SendText(ctx, "back in five")
//	_ = room.Leave(ctx)
//
// A Room has the habits of a Call: an actor, events that are never lost
// (RoomEnded last, with one Reason), goroutines stopped by Leave or
// Phone.Close. The server keeps the membership (join, member list, member
// events numbered by seq, which signaling.Roster applies in order) and
// relays `room-signal` between members.
//
// Policy: a phone is in at most one call or one room. While it is in a
// room, invites are answered `busy` (the caller's call ends ReasonBusy)
// and Dial fails with ErrInRoom; Join fails with ErrBusy while a call is
// live and ErrInRoom while the phone is in a room. Leave the room (or end
// the call) first.
//
// Media is a mesh: one PeerConnection per other member, run by package
// negotiation with the calls' ICE servers, SettingEngine, ICE restart and
// candidate buffering. Both members of a pair compute the roles from
// their membership sessions: the later joiner (the higher session) offers
// and is impolite, the earlier waits for its offer and is polite, so two
// members joining at once never glare. A room-signal names both sessions;
// one for an earlier membership of either side is dropped, and one that
// arrives before the member-joined that names its sender's session (it
// may cross another server node) waits for it. A pair whose peer
// connection fails (MemberFailed) starts over with a new one: the offerer
// retries after 1 s, then 2, 4, ... 30 s, and a room-signal's attempt
// number tells the other side which peer connection it belongs to.
//
// One audio session serves the whole room. The capture callback feeds one
// media.Sender writing one media.Track, and that Track is added to every
// PeerConnection: the microphone is encoded once per frame and the same
// packets go to every member, so sending costs the same for two members
// as for eight. A member whose phone has no Opus (a build without cgo)
// negotiates PCMU: the microphone is then encoded once more, in PCMU, for
// the members that negotiated it alone. Opus in-band FEC follows the member that reports the most
// loss. Each member's audio has its own media.Receiver (jitter buffer,
// decoder); the playback callback pulls them all and mixes them, each at
// its Room.SetVolume gain. Talking events and levels come from each
// member's receiver.
//
// When the signaling connection drops, the media carries on
// (RoomReconnecting); once it is back the phone sends `join` again and,
// within the server's grace (server.Config.RoomGrace), takes its
// membership back with its session: the others notice nothing
// (RoomReconnected). Past the grace the server has removed it: the join
// is a new membership, and every peer connection is set up again. A
// member whose network path breaks restarts ICE on its own peer
// connections only (MemberReconnecting, MemberReconnected).
//
// # Rooms on a Janus AudioBridge
//
// Past a handful of members a mesh costs every member one upload per peer;
// a mixing server sends each member one stream, the mix of the others.
// Phone.JoinJanus joins a room of Janus's AudioBridge plugin (package
// janus speaks its API) and returns the same Room: the same actor, events,
// Mute and Leave, the same Track and Sender (whose packets carry the RFC
// 6464 audio level Janus computes talking from) on one PeerConnection to
// the mixer, and one Receiver, for the mix, in the playback callback.
// Members, talking and muting come from Janus's events; a dropped API
// connection is claimed back (RoomReconnecting, RoomReconnected) while the
// media carries on.
//
// # Testing
//
// Package calltest runs phones in one process against a real signaling
// server core, with WebRTC on loopback or a simulated network and virtual
// audio devices.
package call
