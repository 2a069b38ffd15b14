// Package site is the HTTP side of dialtone's example signaling server: it
// mounts the signaling endpoint (/ws), a health check (/healthz), a token
// endpoint for development mode (/token), optional metrics (/metrics) and the
// embedded web phone (/) on one handler, makes the in-memory self-signed
// certificate browsers need off localhost, and runs the whole thing with a
// graceful shutdown.
//
// The package exists so that the server's main stays a flag parser: every
// decision that can be tested lives here.
package site
