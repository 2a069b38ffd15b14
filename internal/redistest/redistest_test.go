package redistest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ping(addr string) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return rdb.Ping(ctx).Err()
}

// A started Redis answers on 127.0.0.1 during its test and is gone once
// the test has ended.
func TestStart(t *testing.T) {
	var addr string
	t.Run("run", func(t *testing.T) {
		addr = Start(t)
		host, _, err := net.SplitHostPort(addr)
		require.NoError(t, err)
		assert.Equal(t, "127.0.0.1", host)
		require.NoError(t, ping(addr))
	})
	require.NotEmpty(t, addr)
	assert.Error(t, ping(addr), "still answering after its test ended")
}

// StartAt on a port another program holds reports false rather than
// handing out a Redis that is not there.
func TestStartAtTaken(t *testing.T) {
	bin := Program(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	assert.False(t, StartAt(t, bin, l.Addr().String()))
}
