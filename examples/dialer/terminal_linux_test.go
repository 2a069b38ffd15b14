package main

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// On a terminal keys arrive one by one without Enter, Ctrl-C interrupts,
// and restore gives the terminal its line mode back.
func TestKeyboardOnTerminal(t *testing.T) {
	ptm, tty := openPTY(t)
	require.True(t, isTerminal(tty), "a pseudo-terminal is a terminal")
	require.True(t, lineMode(t, tty))
	interrupted := make(chan struct{})
	k := newKeyboard(tty, true, func() { close(interrupted) })
	require.True(t, k.raw())
	assert.False(t, lineMode(t, tty), "raw mode")

	_, err := ptm.Write([]byte("m"))
	require.NoError(t, err)
	select {
	case c := <-k.keys:
		assert.Equal(t, 'm', c)
	case <-time.After(5 * time.Second):
		t.Fatal("a key without Enter did not arrive")
	}
	_, err = ptm.Write([]byte{ctrlC})
	require.NoError(t, err)
	select {
	case <-interrupted:
	case <-time.After(5 * time.Second):
		t.Fatal("Ctrl-C did not interrupt")
	}

	k.restore()
	assert.True(t, lineMode(t, tty), "restored")
	require.NoError(t, ptm.Close()) // ends the reader
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-k.keys:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("the reader did not end when the terminal closed")
		}
	}
}

// openPTY opens a pseudo-terminal pair: the controlling side (what a
// terminal emulator writes keys to) and the terminal a program reads.
// Both are closed when the test ends.
func openPTY(t *testing.T) (ptm, tty *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ptm.Close() })
	require.NoError(t, unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	require.NoError(t, err)
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tty.Close() })
	return ptm, tty
}

// lineMode reports whether the terminal reads lines (canonical mode) with
// echo, as a shell leaves it.
func lineMode(t *testing.T, tty *os.File) bool {
	t.Helper()
	st, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	require.NoError(t, err)
	return st.Lflag&unix.ICANON != 0 && st.Lflag&unix.ECHO != 0
}
