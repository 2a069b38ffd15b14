package socketio

import "errors"

// Sentinel errors. Callers branch on them with errors.Is. Failures to
// reach the server wrap signaling.ErrConnect and a lost connection
// signaling.ErrDisconnected, as the WebSocket transport's do.
var (
	// ErrBadPacket is wrapped by every error about a malformed Engine.IO or
	// Socket.IO packet from the server.
	ErrBadPacket = errors.New("socketio: malformed packet")
	// ErrBinary is returned for binary events and acknowledgements, which
	// carry attachments this package does not take.
	ErrBinary = errors.New("socketio: binary packets are not supported")
	// ErrConnectRefused means the server answered the namespace CONNECT
	// with CONNECT_ERROR (its middleware refused the client); the server's
	// message is wrapped with it.
	ErrConnectRefused = errors.New("socketio: connection refused by the server")
	// ErrServerDisconnect means the server disconnected the socket (a
	// DISCONNECT packet or an Engine.IO close).
	ErrServerDisconnect = errors.New("socketio: disconnected by the server")
	// ErrPingTimeout means the server's pings stopped: nothing arrived for
	// its ping interval plus its ping timeout.
	ErrPingTimeout = errors.New("socketio: ping timeout")
	// ErrBadPayload is wrapped by errors about an event whose arguments do
	// not have the shape configured for it.
	ErrBadPayload = errors.New("socketio: unexpected event payload")
	// ErrUnsupported is returned by Room.Send for the messages a
	// room-relay server has no event for (dialtone rooms, mute).
	ErrUnsupported = errors.New("socketio: not supported by a room-relay server")
)
