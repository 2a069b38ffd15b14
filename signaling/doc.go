// Package signaling defines dialtone's signaling wire protocol and the client
// side of it: one JSON envelope ([Message]) carrying every message type of the
// protocol, typed payloads for the types that have one, a size-limited
// [Decode] that never panics on network input, the [Transport] interface the
// call layer talks to, and a WebSocket implementation of it ([Dial]) with
// keepalive and automatic reconnection.
//
// The server side (authentication, routing, presence, push, pending invites,
// relay credentials, limits) lives in package signaling/server, which also
// offers an in-process Transport attached to the same server core, so tests
// that run in one process exercise the real routing rules.
//
// # Readiness
//
// A transport-level connection is not readiness. A Transport is usable only
// after the server has sent [TypeReady], which carries the authenticated user
// ID and the relay (ICE server) configuration. [Dial] returns only after
// `ready` (or fails after [DialConfig.ReadyTimeout], default 10 s).
//
// The wire format is documented with an example of every message in
// PROTOCOL.md beside this file.
package signaling
