package pcm

import (
	"context"
	"sync"
)

// Recorder is a [Writer] that keeps everything written to it in memory: a
// test's speaker, a headless program's capture. Wait lets a test wait for an
// amount of audio instead of sleeping. It is safe for concurrent use; the
// zero value is ready.
type Recorder struct {
	mu      sync.Mutex
	buf     []int16
	waiters []recWaiter
}

type recWaiter struct {
	n  int
	ch chan struct{}
}

// WritePCM appends a copy of p.
func (r *Recorder) WritePCM(p []int16) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = append(r.buf, p...)
	if len(r.waiters) > 0 {
		kept := r.waiters[:0]
		for _, w := range r.waiters {
			if len(r.buf) >= w.n {
				close(w.ch)
			} else {
				kept = append(kept, w)
			}
		}
		r.waiters = kept
	}
	return len(p), nil
}

// Samples returns a copy of everything recorded so far.
func (r *Recorder) Samples() []int16 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int16(nil), r.buf...)
}

// Len returns the number of samples recorded so far.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.buf)
}

// Reset discards the recording.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = nil
}

// Wait blocks until at least n samples have been recorded or ctx ends.
func (r *Recorder) Wait(ctx context.Context, n int) error {
	r.mu.Lock()
	if len(r.buf) >= n {
		r.mu.Unlock()
		return nil
	}
	w := recWaiter{n: n, ch: make(chan struct{})}
	r.waiters = append(r.waiters, w)
	r.mu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
