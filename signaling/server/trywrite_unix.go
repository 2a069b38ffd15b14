//go:build unix

package server

import (
	"errors"
	"os"
	"syscall"
)

const canTryWrite = true

// tryWrite writes what the socket takes of b now, without waiting, and
// returns how much that was.
func tryWrite(rc syscall.RawConn, b []byte) (int, error) {
	var n int
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for n < len(b) {
			k, err := syscall.Write(int(fd), b[n:])
			if k > 0 {
				n += k
			}
			switch {
			case err == syscall.EINTR:
				continue
			case err == syscall.EAGAIN:
				return true
			case err != nil:
				werr = err
				return true
			case k <= 0:
				return true
			}
		}
		return true // never wait for the socket
	})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return n, nil // a write of the writer goroutine timed out; it will fail the conn
	}
	if err != nil {
		return n, err
	}
	return n, werr
}
