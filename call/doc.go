// Package call is dialtone's user-facing API: a Phone registers a user
// with a signaling server and places and takes voice calls; a Call is one
// call's state machine, timers, events and statistics.
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
// # Testing
//
// Package calltest runs phones in one process against a real signaling
// server core, with WebRTC on loopback or a simulated network and virtual
// audio devices.
package call
