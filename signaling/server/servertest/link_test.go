package servertest

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/dialtone-dev/dialtone/signaling/server"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newServer(t *testing.T) *server.Server {
	s := server.New(server.Config{DevMode: true})
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// linked connects user to s behind a Link with faults f and consumes `ready`.
func linked(t *testing.T, s *server.Server, user string, f Faults) *Link {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	lc, err := s.ConnectLocal(ctx, user, server.LocalOptions{})
	require.NoError(t, err)
	l := NewLink(lc, f)
	t.Cleanup(func() { _ = l.Close() })
	recvType(t, l, signaling.TypeReady)
	return l
}

const waitFor = 5 * time.Second

func recv(t *testing.T, tr signaling.Transport) signaling.Message {
	t.Helper()
	select {
	case m, ok := <-tr.Incoming():
		require.True(t, ok, "incoming closed")
		return m
	case <-time.After(waitFor):
		require.FailNow(t, "no message")
	}
	return signaling.Message{}
}

func recvType(t *testing.T, tr signaling.Transport, typ signaling.Type) signaling.Message {
	t.Helper()
	m := recv(t, tr)
	require.Equal(t, typ, m.Type, "message %+v data %s", m, m.Data)
	return m
}

func send(t *testing.T, tr signaling.Transport, m signaling.Message) {
	t.Helper()
	require.NoError(t, tr.Send(context.Background(), m))
}

func msg(t *testing.T, typ signaling.Type, to, call string, data any) signaling.Message {
	t.Helper()
	m, err := signaling.NewMessage(typ, to, call, data)
	require.NoError(t, err)
	return m
}

// Drop 100 % loses everything; restoring the link restores delivery.
func TestLinkFaultsDrop(t *testing.T) {
	s := newServer(t)
	alice := linked(t, s, "alice", Faults{})
	bob := linked(t, s, "bob", Faults{})
	alice.SetFaults(Faults{Drop: 1})
	for i := 0; i < 10; i++ {
		send(t, alice, msg(t, signaling.TypeSignal, "bob", "c", nil))
	}
	alice.SetFaults(Faults{})
	send(t, alice, msg(t, signaling.TypeRinging, "bob", "c", nil))
	recvType(t, bob, signaling.TypeRinging) // the first to arrive
	assert.Equal(t, uint64(1), s.Stats().Routed)
}

// Delay and reordering hold messages back; a partial drop loses some.
func TestLinkFaultsDelayReorder(t *testing.T) {
	s := newServer(t)
	alice := linked(t, s, "alice", Faults{Delay: 30 * time.Millisecond})
	bob := linked(t, s, "bob", Faults{})
	start := time.Now()
	send(t, alice, msg(t, signaling.TypeRinging, "bob", "c", nil))
	recvType(t, bob, signaling.TypeRinging)
	assert.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond)

	alice.SetFaults(Faults{Reorder: 0.5, ReorderDelay: 30 * time.Millisecond})
	const n = 40
	for i := 0; i < n; i++ {
		send(t, alice, msg(t, signaling.TypeSignal, "bob", "c", map[string]int{"i": i}))
	}
	var order []int
	for len(order) < n {
		var v struct{ I int }
		require.NoError(t, recvType(t, bob, signaling.TypeSignal).Unmarshal(&v))
		order = append(order, v.I)
	}
	assert.False(t, sort.IntsAreSorted(order), "some messages overtaken: %v", order)

	alice.SetFaults(Faults{Drop: 0.5})
	for i := 0; i < n; i++ {
		send(t, alice, msg(t, signaling.TypeSignal, "bob", "d", nil))
	}
	alice.SetFaults(Faults{})
	send(t, alice, msg(t, signaling.TypeRinging, "bob", "end", nil))
	got := 0
	for {
		m := recv(t, bob)
		if m.Type == signaling.TypeRinging {
			break
		}
		got++
	}
	assert.Greater(t, got, 5)
	assert.Less(t, got, n-5)
}
