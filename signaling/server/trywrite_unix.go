//go:build unix

package server

import (
	"errors"
	"os"
	"syscall"
)

const canTryWrite = true

// rawWriter writes to a socket without waiting. It is not safe for
// concurrent use (wsWriter.mu guards it); the function handed to
// RawConn.Write is made once, so a write allocates nothing.
type rawWriter struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool
	b   []byte
	n   int
	err error
}

func newRawWriter(rc syscall.RawConn) *rawWriter {
	w := &rawWriter{rc: rc}
	w.fn = w.writeFD
	return w
}

// tryWrite writes what the socket takes of b now, without waiting, and
// returns how much that was.
func (w *rawWriter) tryWrite(b []byte) (int, error) {
	w.b, w.n, w.err = b, 0, nil
	err := w.rc.Write(w.fn)
	n, werr := w.n, w.err
	w.b, w.err = nil, nil
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return n, nil // a write of the writer goroutine timed out; it will fail the conn
	}
	if err != nil {
		return n, err
	}
	return n, werr
}

func (w *rawWriter) writeFD(fd uintptr) bool {
	for w.n < len(w.b) {
		k, err := syscall.Write(int(fd), w.b[w.n:])
		if k > 0 {
			w.n += k
		}
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return true
		case err != nil:
			w.err = err
			return true
		case k <= 0:
			return true
		}
	}
	return true // never wait for the socket
}
