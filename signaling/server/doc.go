// Package server is dialtone's signaling server: an [http.Handler] that
// accepts WebSocket connections from authenticated users and routes
// signaling messages between them by user ID.
//
// What it does, in the order a message meets it:
//
//   - Authentication through an [Authenticator] before the WebSocket upgrade
//     (HMAC-signed expiring tokens from [NewToken]; a development mode that
//     trusts any user name, off by default), and an Origin check.
//   - One live connection per user: a new connection replaces the old one,
//     which is told so with an `error` (code "replaced") and closed.
//   - `ready` first on every connection, with the relay (ICE/TURN) config.
//   - Limits: message size, a per-connection token bucket, a bounded send
//     queue per connection (a slow consumer is cut off and never blocks
//     anyone else), read/write deadlines and ping/pong. Rejected input gets
//     an `error` message; the connection stays up unless the client keeps
//     sending rejected input (code "abusive").
//   - Routing: the server sets `from` from the connection; `invite` to a
//     connected user answers the caller `waiting`; to an unknown user
//     `offline`, or — with a [Pusher] — calls the push hook, answers
//     `waiting` or `push-failed`, and keeps the invite and every later
//     message of that call for a TTL (default 60 s) to deliver them in order
//     when the user connects.
//   - `relay` requests answered with `relay-config`: ICE servers with
//     time-limited TURN credentials in the TURN REST API format.
//   - Metrics: [Server.Metrics] serves Prometheus metrics from the server's
//     own registry.
//   - Scale-out: with a [Broker] ([NewMemoryBroker], or package
//     redisbroker) several Servers form a cluster: presence and delivery
//     across nodes, replacement of a user's connection on another node,
//     pending invites delivered when the user connects anywhere. A node
//     joins its cluster in the background and is not [Server.Ready] (HTTP
//     503 to WebSocket requests) until it has.
//   - [NewTURN]: an embedded TURN relay (pion/turn) accepting the
//     credentials the server hands out.
//
// The routing core knows nothing about WebSockets: a WebSocket connection
// and an in-process connection ([Server.ConnectLocal], for tests and
// single-process programs) are both just "conns" to it, so in-process
// tests exercise the real rules. Package servertest makes an in-process
// link lossy, slow or reordering; package brokertest checks a Broker.
package server
