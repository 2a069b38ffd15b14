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
//   - Limits that belong to the user and the address, not the connection
//     (see limits.go): a message budget per user kept across reconnects (a
//     sender over it is slowed down, and only past RateWait answered
//     `rate-limited`, keeping its connection); an inbound budget per
//     recipient, so no sender can get another user cut off; connection
//     count and rate per address; message size and time, read/write
//     deadlines and ping/pong; a bounded send queue per connection.
//     Malformed or forbidden input gets an `error` and counts as a strike;
//     a user who keeps sending it is closed as "abusive". Credentials that
//     expire ([ExpiringAuthenticator], [TokenAuth]) end their connection
//     ("token-expired"); [Server.Revoke] ends a user's connections.
//   - Routing: the server sets `from` from the connection; `invite` to a
//     connected user answers the caller `waiting`; to an unknown user
//     `offline` (other messages to an unknown user are dropped without an
//     answer, so presence cannot be probed), or — with a [Pusher] — calls the push hook, answers
//     `waiting` or `push-failed`, and keeps the invite and every later
//     message of that call for a TTL (default 60 s) to deliver them in order
//     when the user connects.
//   - Rooms (group calls over a mesh, protocol version 2; see room.go):
//     membership kept in a room store (the Broker in a cluster), a size
//     limit (MaxRoomSize) checked atomically with the join, an
//     authorisation hook (RoomJoin), member-joined/left/updated told to
//     every member, a grace (RoomGrace) before a member whose connection
//     is lost is removed, and `room-signal` relayed only between members
//     of the same room.
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
