package server_test

import (
	"testing"

	"github.com/dialtone-dev/dialtone/signaling/server"
	"github.com/dialtone-dev/dialtone/signaling/server/brokertest"
)

func TestMemoryBroker(t *testing.T) {
	brokertest.TestBroker(t, func(*testing.T) (server.Broker, server.Broker) {
		b := server.NewMemoryBroker()
		return b, b
	})
}
