package testproc

import (
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ignoresTERM is a shell that survives SIGTERM.
const ignoresTERM = "trap '' TERM; echo ready; while :; do sleep 0.05; done"

// Stop ends a program that obeys SIGTERM within its grace, one that
// ignores it by SIGKILL once the grace is over, and one at once when the
// grace is zero; each has exited when Stop returns.
func TestStop(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script string
		grace  time.Duration
		min    time.Duration // Stop takes at least this long
		max    time.Duration // and at most this long
	}{
		{name: "obeys SIGTERM", script: "echo ready; exec sleep 60", grace: 5 * time.Second, max: 4 * time.Second},
		{name: "ignores SIGTERM", script: ignoresTERM, grace: 300 * time.Millisecond, min: 300 * time.Millisecond, max: 4 * time.Second},
		{name: "no grace", script: ignoresTERM, max: 4 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("/bin/sh", "-c", tc.script)
			out, err := cmd.StdoutPipe()
			require.NoError(t, err)
			p, err := Start(cmd)
			require.NoError(t, err)
			// The trap is set once the shell has said so.
			_, err = out.Read(make([]byte, 6))
			require.NoError(t, err)
			require.NoError(t, p.Err(), "running")
			start := time.Now()
			p.Stop(tc.grace)
			took := time.Since(start)
			select {
			case <-p.Exited():
			default:
				t.Fatal("Stop returned before the process exited")
			}
			assert.Error(t, p.Err(), "a signalled process exits with an error")
			assert.GreaterOrEqual(t, took, tc.min)
			assert.Less(t, took, tc.max)
		})
	}
}

// A program that exits on its own closes Exited with how it exited.
func TestExited(t *testing.T) {
	p, err := Start(exec.Command("/bin/sh", "-c", "exit 3"))
	require.NoError(t, err)
	select {
	case <-p.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("no exit seen")
	}
	var exit *exec.ExitError
	require.ErrorAs(t, p.Err(), &exit)
	assert.Equal(t, 3, exit.ExitCode())
	p.Stop(time.Second) // harmless once it has exited
}
