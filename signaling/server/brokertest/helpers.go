package brokertest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/dialtone-dev/dialtone/signaling/server"
)

// connect attaches an in-process client for user to s, consumes its
// `ready` and closes it at the end of the test.
func connect(t testing.TB, s *server.Server, user string, opts server.LocalOptions) *server.LocalConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	lc, err := s.ConnectLocal(ctx, user, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = lc.Close() })
	require.Equal(t, signaling.TypeReady, recv(t, lc).Type)
	return lc
}

// recv waits for the next message on tr.
func recv(t testing.TB, tr signaling.Transport) signaling.Message {
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

// recvType waits for the next message and checks its type.
func recvType(t testing.TB, tr signaling.Transport, typ signaling.Type) signaling.Message {
	t.Helper()
	m := recv(t, tr)
	require.Equal(t, typ, m.Type, "message %+v data %s", m, m.Data)
	return m
}

// recvError waits for an `error` message and returns its data.
func recvError(t testing.TB, tr signaling.Transport) signaling.Error {
	t.Helper()
	m := recvType(t, tr, signaling.TypeError)
	var e signaling.Error
	require.NoError(t, m.Unmarshal(&e))
	return e
}

// noMessage checks that nothing arrives on tr for d. Use it after a
// synchronising round trip, so that d bounds a negative check, not a race.
func noMessage(t testing.TB, tr signaling.Transport, d time.Duration) {
	t.Helper()
	select {
	case m := <-tr.Incoming():
		require.FailNow(t, "unexpected message", "%+v %s", m, m.Data)
	case <-time.After(d):
	}
}

// send sends m on tr.
func send(t testing.TB, tr signaling.Transport, m signaling.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, tr.Send(ctx, m))
}

// msg builds a message of type typ to user `to` in call `call` with data
// encoded as JSON.
func msg(t testing.TB, typ signaling.Type, to, call string, data any) signaling.Message {
	t.Helper()
	m, err := signaling.NewMessage(typ, to, call, data)
	require.NoError(t, err)
	return m
}

// waitStatus waits for the next status of state st on tr.
func waitStatus(t testing.TB, tr signaling.Transport, st signaling.State) signaling.Status {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case s, ok := <-tr.Status():
			require.True(t, ok, "status closed while waiting for %v", st)
			if s.State == st {
				return s
			}
		case <-deadline:
			require.FailNow(t, "no status", "%v", st)
		}
	}
}
