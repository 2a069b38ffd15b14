// Package janus is a client for the Janus WebRTC gateway's API and its
// AudioBridge plugin (an audio mixer, MCU): it creates a Janus session,
// attaches plugin handles, keeps the session alive, relays trickle ICE both
// ways, claims the session back after the API connection drops, and turns
// AudioBridge rooms (create, join, mute, participants, talking, kick,
// destroy) into Go calls, events and typed errors. It is pure Go and knows
// nothing about audio: the PeerConnection to the mixer and its media are
// the caller's (package call), fed by the [negotiation.Signal]s this package
// delivers.
//
// # Transport: WebSocket
//
// The client speaks Janus's WebSocket API (subprotocol "janus-protocol")
// rather than its HTTP API with long-polling:
//
//   - events (trickled candidates, the answer, talking) are pushed on the
//     connection as they happen, where a long-poll adds a round trip per
//     batch and comes back as an object or an array;
//   - keepalives, requests and events share one connection, so a dropped
//     API connection is an event the client sees at once (the read fails),
//     and Janus's `claim` binds the session to the new connection;
//   - gorilla/websocket is already a dependency of the module.
//
// Janus destroys the sessions of a WebSocket that goes away unless its
// reclaim_session_timeout (janus.jcfg, general section) is set: with it, a
// session may be claimed back within that many seconds. The client
// reconnects by itself (Config.ReconnectTimeout) and claims its session;
// handles then receive an [EventReclaimed]. Events Janus produced while no
// connection was there are lost, which is why the AudioBridge reports the
// room's participant list afresh after a claim. When the claim fails (no
// reclaim timeout on the server, or it expired) the session ends with
// [ErrSessionLost].
//
// # Requests and replies
//
// Every request carries a transaction. Synchronous plugin requests (create,
// destroy, listparticipants, kick) are answered by "success"; asynchronous
// ones (join, configure, leave) by "ack" and later an "event" with the same
// transaction, which is the reply the caller gets. Janus's and the plugin's
// error codes become *[Error]s that match this package's sentinel errors
// with errors.Is (ErrNoSuchRoom, ErrUnauthorized, ...). Janus's session,
// handle, room and participant IDs are integers below 2^53 (JavaScript's
// safe integers); they are uint64 here and travel as JSON integers.
//
// # Trickle ICE
//
// Local candidates go to Janus as "trickle" requests. Janus's candidates
// arrive as events, and one can arrive before the answer it belongs to: the
// AudioBridge delivers the answer and the candidates as Signals in arrival
// order, and a [negotiation.Negotiator] queues candidates that precede their
// description (the same buffering calls use), so nothing here holds them.
//
// # Concurrency
//
// A Session is an actor: one goroutine owns the connection, the
// transactions and the handles, and every API call posts to it. A reader
// goroutine per connection feeds it; the keepalive ticker lives in it.
// Events for a handle are queued in an unbounded mailbox, so a slow reader
// never stalls the session. Close stops every goroutine.
package janus
