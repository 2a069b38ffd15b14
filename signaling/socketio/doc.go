// Package socketio carries dialtone's signaling over Socket.IO, the
// signaling channel most WebRTC apps and tutorials are built on: a client
// of the Socket.IO v4 protocol (Engine.IO 4 over a WebSocket, Socket.IO
// packet format 5, as Socket.IO 3 and 4 servers speak), and two
// signaling.Transport implementations on it that call.Phone uses
// unchanged.
//
//   - [Dial] returns a [Transport] for dialtone's own protocol carried in
//     one Socket.IO event (default "dialtone"), for a Node server that does
//     what signaling/server does: sends `ready`, stamps `from` and
//     forwards envelopes to user `to`. testdata/server.js is one.
//   - [JoinRoom] returns a [Room], the room-relay mode: it joins a room of
//     an existing app of the common shape (join a room by name; the server
//     relays offer, answer, candidate and leave events to the others in
//     the room) and translates those events to and from dialtone's call
//     messages, so a Go phone dials the app's browser pages and answers
//     them with the same Call API. Event names and payload shapes are
//     configurable ([Events], [Shape]).
//
// [Conn] is the Socket.IO connection both are built on, usable alone to
// talk to any Socket.IO server: it connects to one namespace with a
// handshake auth payload, answers the server's pings, delivers events and
// emits them. What it does not do, since signaling needs none of it: the
// HTTP long-polling transport (it speaks WebSocket only, which Socket.IO 4
// servers accept by default), binary events, acknowledgements. Both
// transports reconnect after a drop with backoff, as the WebSocket client
// does, reporting StateDown and StateUp.
//
// # Why its own protocol layer
//
// The packet layer is written here over gorilla/websocket, already
// dialtone's WebSocket library, rather than taken from the zishang520
// socket.io v3 client modules. That client is maintained and complete
// (polling, WebTransport, msgpack, reconnection), but its module requires
// the whole Socket.IO server module, quic-go, webtransport-go, resty,
// brotli, msgpack and a terminal colour library, and newer
// golang.org/x/crypto and x/net than dialtone pins; its API has no
// context on connect, and it keeps package-level loggers. The part
// signaling needs is small: an open packet, ping/pong, a namespace
// CONNECT, and EVENT packets holding JSON arrays: some 600 lines with a
// fuzzed parser that never panics on network input, goroutines owned by
// Close (goleak-checked), and nothing to add to go.mod.
//
// The tests run against a real Node Socket.IO 4 server (testdata, npm ci
// from its lockfile), with Go phones on both ends and with a page of a
// room-relay app in headless Chromium. docs/SOCKETIO.md has a full
// example of each mode.
package socketio
