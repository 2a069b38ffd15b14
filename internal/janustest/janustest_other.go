//go:build !linux

package janustest

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/dialtone-dev/dialtone/internal/testenv"
	"github.com/pion/webrtc/v4"
)

// Server is a running Janus; on this system there is none.
type Server struct {
	URL string
	Dir string
}

// Start reports that janustest needs Linux (network namespaces): the test
// is skipped, or fails under CI.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	testenv.Missing(t, "janustest needs Linux network namespaces")
	return nil
}

// DialContext fails: there is no namespace.
func (s *Server) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return nil, errors.New("janustest: needs Linux")
}

// SettingEngine returns an empty SettingEngine.
func (s *Server) SettingEngine() *webrtc.SettingEngine { return &webrtc.SettingEngine{} }

// Kill does nothing.
func (s *Server) Kill() {}
