package audio

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// counter is a PCM source/generator of consecutive values (wrapping), so
// order, loss and duplication are visible sample by sample.
type counter struct {
	mu   sync.Mutex
	next int16
}

func (c *counter) ReadPCM(p []int16) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range p {
		if c.next == 32767 {
			c.next = 0 // cycle 1..32767, keeping 0 for silence (as sampleValue)
		}
		c.next++
		p[i] = c.next
	}
	return len(p), nil
}

// room is the sound in a room at the manual clock's time: every device
// reading it in the same tick hears the same samples. Sample k of the
// period ending at t has value index(t)-n+k+1 (mod 2^15, never 0).
type room struct {
	clock *ManualClock
	start time.Time
}

func (r room) ReadPCM(p []int16) (int, error) {
	end := int64(r.clock.Now().Sub(r.start)) * SampleRate / int64(time.Second)
	for i := range p {
		p[i] = sampleValue(end - int64(len(p)) + int64(i) + 1)
	}
	return len(p), nil
}

func sampleValue(idx int64) int16 { return int16(idx%32767) + 1 }

// pcmLog records callback PCM in order.
type pcmLog struct {
	mu    sync.Mutex
	pcm   []int16
	calls int
}

func (l *pcmLog) capture(p []int16) {
	l.mu.Lock()
	l.pcm = append(l.pcm, p...)
	l.calls++
	l.mu.Unlock()
}

func (l *pcmLog) snapshot() ([]int16, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int16(nil), l.pcm...), l.calls
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// nextEvent waits for the next event of one of the given types, skipping others.
func nextEvent(t *testing.T, ctx context.Context, ch <-chan Event, types ...EventType) Event {
	t.Helper()
	for {
		select {
		case ev, ok := <-ch:
			require.True(t, ok, "events closed")
			for _, ty := range types {
				if ev.Type == ty {
					return ev
				}
			}
		case <-ctx.Done():
			require.FailNow(t, "timed out waiting for event", "%v", types)
		}
	}
}

// gaps counts missing and duplicated samples in a stream of sampleValue
// indices that should be consecutive.
func gaps(pcm []int16) (missing, dup int) {
	for i := 1; i < len(pcm); i++ {
		d := int(pcm[i]) - int(pcm[i-1])
		if d < -16000 {
			d += 32767
		}
		switch {
		case d > 1:
			missing += d - 1
		case d < 1:
			dup += 1 - d
		}
	}
	return missing, dup
}
