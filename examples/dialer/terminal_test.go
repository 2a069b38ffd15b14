package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Only a terminal is a terminal: /dev/null is a character device but not
// one, and neither is a pipe, a file or a buffer.
func TestIsTerminal(t *testing.T) {
	null, err := os.Open(os.DevNull)
	require.NoError(t, err)
	defer null.Close()
	assert.False(t, isTerminal(null), "/dev/null")

	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	assert.False(t, isTerminal(r), "a pipe")

	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	require.NoError(t, err)
	defer f.Close()
	assert.False(t, isTerminal(f), "a file")
	assert.False(t, isTerminal(&bytes.Buffer{}), "a buffer")
}

// On /dev/null (a character device but no terminal) the keyboard leaves
// the terminal mode alone and reads lines: end of input at once.
func TestKeyboardOnDevNull(t *testing.T) {
	null, err := os.Open(os.DevNull)
	require.NoError(t, err)
	defer null.Close()
	k := newKeyboard(null, true, func() { t.Error("interrupted") })
	defer k.restore()
	assert.False(t, k.raw())
	select {
	case _, ok := <-k.keys:
		assert.False(t, ok, "no keys from /dev/null")
	case <-time.After(5 * time.Second):
		t.Fatal("keys not closed at the end of /dev/null")
	}
}

func TestCRLF(t *testing.T) {
	var b bytes.Buffer
	n, err := crlf{&b}.Write([]byte("one\ntwo\n"))
	require.NoError(t, err)
	assert.Equal(t, 8, n)
	assert.Equal(t, "one\r\ntwo\r\n", b.String())
	assert.Equal(t, &b, onTerminal(&b), "not a terminal: unchanged")
}
