//go:build !unix

package server

import "syscall"

// Elsewhere every message goes through the writer goroutine.
const canTryWrite = false

type rawWriter struct{}

func newRawWriter(syscall.RawConn) *rawWriter { return nil }

func (*rawWriter) tryWrite([]byte) (int, error) { return 0, nil }
