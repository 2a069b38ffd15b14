// Package servertest makes an in-process signaling link misbehave for
// tests: a Link in front of a signaling.Transport (typically a
// *server.LocalConn from Server.ConnectLocal) delays, drops and reorders
// its messages both ways as Faults say, like a bad network. It keeps such
// test hooks out of package server's API.
package servertest
