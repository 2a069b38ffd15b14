package mailbox

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestOrderAndNoLossWithLateReader(t *testing.T) {
	m := New[int]()
	const n = 10000
	for i := range n {
		require.True(t, m.Put(i))
	}
	m.Close()
	assert.False(t, m.Put(-1), "put after close must be refused")
	got := 0
	for v := range m.Out() {
		require.Equal(t, got, v)
		got++
	}
	assert.Equal(t, n, got)
}

func TestPutNeverBlocksWithoutReader(t *testing.T) {
	m := New[[]byte]()
	t.Cleanup(m.Abandon)
	done := make(chan struct{})
	go func() {
		for range 1000 {
			m.Put(make([]byte, 16))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Put blocked with no reader")
	}
	assert.GreaterOrEqual(t, m.Len(), 999)
}

func TestAbandonEndsGoroutine(t *testing.T) {
	m := New[int]()
	m.Put(1)
	m.Put(2)
	m.Abandon()
	assert.True(t, m.Drained(), "Abandon returns once the goroutine has ended")
	m.Abandon() // idempotent
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-m.Out():
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("Out not closed after Abandon")
		}
	}
}

func TestDrained(t *testing.T) {
	m := New[int]()
	assert.False(t, m.Drained())
	m.Put(1)
	m.Close()
	assert.False(t, m.Drained(), "an unread item is left")
	for range m.Out() {
	}
	assert.True(t, m.Drained())

	empty := New[int]()
	empty.Close()
	assert.True(t, empty.Drained(), "closed, empty and never read")
}
