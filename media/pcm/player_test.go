package pcm

import (
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPlayer(t *testing.T) {
	samples := []int16{1, 2, 3}
	for _, tc := range []struct {
		name  string
		p     *Player
		reads [][]int16 // what each 5-sample read returns
		errs  []error
	}{
		{"once", NewPlayer(samples),
			[][]int16{{1, 2, 3, 0, 0}, {0, 0, 0, 0, 0}}, []error{io.EOF, io.EOF}},
		{"loop", Loop(samples),
			[][]int16{{1, 2, 3, 1, 2}, {3, 1, 2, 3, 1}}, []error{nil, nil}},
		{"empty loop ends", Loop(nil),
			[][]int16{{0, 0, 0, 0, 0}}, []error{io.EOF}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i, want := range tc.reads {
				out := []int16{9, 9, 9, 9, 9}
				n, err := tc.p.ReadPCM(out)
				assert.Equal(t, want, out, "read %d", i)
				if tc.errs[i] == nil {
					require.NoError(t, err, "read %d", i)
					assert.Equal(t, len(out), n, "read %d", i)
				} else {
					assert.ErrorIs(t, err, tc.errs[i], "read %d", i)
				}
			}
		})
	}
}

func TestPlayerSetLoopAndRewind(t *testing.T) {
	p := NewPlayer([]int16{1, 2, 3})
	out := make([]int16, 3)
	n, err := p.ReadPCM(out)
	assert.Equal(t, 3, n)
	assert.ErrorIs(t, err, io.EOF, "exactly at the end: ended")

	p.Rewind()
	p.SetLoop(true)
	out = make([]int16, 7)
	n, err = p.ReadPCM(out)
	require.NoError(t, err)
	assert.Equal(t, 7, n)
	assert.Equal(t, []int16{1, 2, 3, 1, 2, 3, 1}, out)

	p.SetLoop(false)
	n, err = p.ReadPCM(out)
	assert.Equal(t, 2, n, "plays to the end of the current pass")
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, []int16{2, 3, 0, 0, 0, 0, 0}, out)
}
