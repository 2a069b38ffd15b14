package audio

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestDelayLine(t *testing.T) {
	const delay = 20 * time.Millisecond
	n, period := Samples(delay), Samples(DefaultPeriod)
	l := NewDelayLine(delay)
	in := make([]int16, 50*period)
	_, _ = (&counter{}).ReadPCM(in)
	var got []int16
	buf := make([]int16, period)
	for i := 0; i+period <= len(in); i += period {
		_, _ = l.WritePCM(in[i : i+period])
		_, _ = l.ReadPCM(buf)
		got = append(got, buf...)
	}
	assert.Equal(t, make([]int16, n), got[:n], "the delay's silence first")
	assert.Equal(t, in[:len(got)-n], got[n:], "then the input, unchanged")
	assert.Equal(t, n, l.Len())

	// A stalled reader: the line stays bounded and keeps the newest audio.
	for range 100 {
		_, _ = l.WritePCM(in[:period])
	}
	assert.Equal(t, n+Samples(DelayLineSlack), l.Len())
	// A stalled writer: silence, no block.
	for range 100 {
		k, err := l.ReadPCM(buf)
		assert.Equal(t, period, k)
		assert.NoError(t, err)
	}
	assert.Equal(t, 0, l.Len())
	assert.Equal(t, make([]int16, period), buf)

	// Reset: the full delay of silence again, nothing of before.
	_, _ = l.WritePCM(in[:period])
	l.Reset()
	assert.Equal(t, n, l.Len())
	_, _ = l.WritePCM(in[period : 2*period])
	out := make([]int16, n+period)
	_, _ = l.ReadPCM(out)
	assert.Equal(t, make([]int16, n), out[:n])
	assert.Equal(t, in[period:2*period], out[n:])
}

// A write longer than the whole line keeps only its newest samples.
func TestDelayLineLongWrite(t *testing.T) {
	l := NewDelayLine(10 * time.Millisecond)
	long := make([]int16, Samples(time.Second))
	_, _ = (&counter{}).ReadPCM(long)
	k, err := l.WritePCM(long)
	assert.NoError(t, err)
	assert.Equal(t, len(long), k)
	keep := Samples(10*time.Millisecond + DelayLineSlack)
	assert.Equal(t, keep, l.Len())
	out := make([]int16, keep)
	_, _ = l.ReadPCM(out)
	assert.Equal(t, long[len(long)-keep:], out)
}
