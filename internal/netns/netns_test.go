package netns

import (
	"net"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// In the namespace only loopback is up: 127.0.0.1 listens, and no other
// interface has an address. The parent sees the child pass, and the
// environment it was given.
func TestRun(t *testing.T) {
	Run(t, func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		require.NoError(t, l.Close())
		if os.Getenv(Env) == "off" {
			return
		}
		assert.Equal(t, "yes", os.Getenv("NETNS_TEST_EXTRA"))
		ifs, err := net.Interfaces()
		require.NoError(t, err)
		for _, i := range ifs {
			if i.Flags&net.FlagLoopback != 0 {
				continue
			}
			addrs, err := i.Addrs()
			require.NoError(t, err)
			assert.Empty(t, addrs, "interface %s in the namespace", i.Name)
		}
	}, "NETNS_TEST_EXTRA=yes")
}
