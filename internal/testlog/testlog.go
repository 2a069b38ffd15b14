// Package testlog gives a test a *slog.Logger for the code under test
// (call.Config.Logger and the like) that writes to the test's log at debug
// level when the environment variable DIALTONE_DEBUG is set.
//
// It is off by default because pion may still log from a goroutine that
// outlives the test, which t.Log does not allow.
package testlog

import (
	"log/slog"
	"os"
	"strings"
	"testing"
)

// Env turns the logs on when it is set to anything.
const Env = "DIALTONE_DEBUG"

// Logger returns a debug-level logger writing to t with Env set, and nil
// (the code's default, which discards) without it.
func Logger(t testing.TB) *slog.Logger {
	if os.Getenv(Env) == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(writer{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// writer writes each record to t's log, one Log call per record.
type writer struct{ t testing.TB }

func (w writer) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
