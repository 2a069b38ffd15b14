package server_test

import (
	"testing"

	"github.com/dialtone-dev/dialtone/signaling/server"
	"github.com/dialtone-dev/dialtone/signaling/server/servertest"
)

func TestMemoryBroker(t *testing.T) {
	servertest.TestBroker(t, func(*testing.T) (server.Broker, server.Broker) {
		b := server.NewMemoryBroker()
		return b, b
	})
}
