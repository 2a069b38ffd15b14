package coturntest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A started coturn answers STUN on 127.0.0.1, logs its configuration, and
// is gone once its test has ended.
func TestStartAndStop(t *testing.T) {
	var s *Server
	t.Run("run", func(t *testing.T) {
		s = Start(t, Options{Secret: []byte("x")})
		require.Contains(t, s.Addr, "127.0.0.1:")
		assert.Equal(t, []string{"turn:" + s.Addr + "?transport=udp"}, s.URLs())
		s.WaitLog(t, time.Second, "SQLite DB connection success")
	})
	require.NotNil(t, s)
	assert.Error(t, s.waitReady(nil, 300*time.Millisecond), "still answering after its test ended")
}
