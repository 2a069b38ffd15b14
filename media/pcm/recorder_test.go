package pcm

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRecorderKeepsCopiesInOrder(t *testing.T) {
	var r Recorder
	p := []int16{1, 2}
	_, err := r.WritePCM(p)
	require.NoError(t, err)
	p[0] = 9 // the writer reuses its buffer
	_, err = r.WritePCM([]int16{3})
	require.NoError(t, err)
	assert.Equal(t, []int16{1, 2, 3}, r.Samples())
	assert.Equal(t, 3, r.Len())
	r.Reset()
	assert.Zero(t, r.Len())
}

func TestRecorderWait(t *testing.T) {
	var r Recorder
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Wait(ctx, 4) }()
	_, _ = r.WritePCM([]int16{1, 2})
	_, _ = r.WritePCM([]int16{3, 4, 5})
	require.NoError(t, <-done)
	require.NoError(t, r.Wait(ctx, 5), "already there")

	short, cancelShort := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancelShort()
	assert.ErrorIs(t, r.Wait(short, 6), context.DeadlineExceeded)
}
