package testlog

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeT records what is logged to it.
type fakeT struct {
	testing.TB
	logs []string
}

func (f *fakeT) Log(args ...any) { f.logs = append(f.logs, args[0].(string)) }

// Without DIALTONE_DEBUG there is no logger; with it, debug records reach
// the test's log, one line each.
func TestLogger(t *testing.T) {
	t.Setenv(Env, "")
	assert.Nil(t, Logger(t))

	t.Setenv(Env, "1")
	f := &fakeT{}
	l := Logger(f)
	require.NotNil(t, l)
	l.Debug("hello", "n", 1)
	require.Len(t, f.logs, 1)
	assert.Contains(t, f.logs[0], "level=DEBUG msg=hello n=1")
	assert.NotContains(t, f.logs[0], "\n")
}
