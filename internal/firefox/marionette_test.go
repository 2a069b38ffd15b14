package firefox

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeMarionette accepts one connection on loopback, sends greeting and
// then hands each command to reply, writing whatever it returns (raw
// bytes) back.
func fakeMarionette(t *testing.T, greeting string, reply func(cmd []json.RawMessage) string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := io.WriteString(c, greeting); err != nil {
			return
		}
		r := bufio.NewReader(c)
		for {
			head, err := r.ReadString(':')
			if err != nil {
				return
			}
			n, err := strconv.Atoi(strings.TrimSuffix(head, ":"))
			if err != nil {
				return
			}
			buf := make([]byte, n)
			if _, err := io.ReadFull(r, buf); err != nil {
				return
			}
			var cmd []json.RawMessage
			if json.Unmarshal(buf, &cmd) != nil {
				return
			}
			if _, err := io.WriteString(c, reply(cmd)); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return ln.Addr().String()
}

func frame(s string) string { return strconv.Itoa(len(s)) + ":" + s }

const hello = `{"applicationType":"gecko","marionetteProtocol":3}`

func TestCall(t *testing.T) {
	addr := fakeMarionette(t, frame(hello), func(cmd []json.RawMessage) string {
		var id int
		_ = json.Unmarshal(cmd[1], &id)
		var name string
		_ = json.Unmarshal(cmd[2], &name)
		switch name {
		case "WebDriver:ExecuteScript":
			// A stale response first (a call that gave up), then ours.
			return frame(fmt.Sprintf(`[1,%d,null,{"value":0}]`, id-1)) +
				frame(fmt.Sprintf(`[1,%d,null,{"value":%s}]`, id, cmd[3]))
		case "WebDriver:FindElement":
			return frame(fmt.Sprintf(`[1,%d,{"error":"no such element","message":"#x","stacktrace":""},null]`, id))
		}
		return frame(fmt.Sprintf(`[1,%d,null,{}]`, id))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr)
	require.NoError(t, err)
	defer c.Close()

	var got struct {
		Value struct {
			Script string `json:"script"`
			Args   []int  `json:"args"`
		} `json:"value"`
	}
	require.NoError(t, c.Call(ctx, "WebDriver:ExecuteScript", map[string]any{"script": "return 1", "args": []int{7}}, &got))
	assert.Equal(t, "return 1", got.Value.Script, "the command's params arrived and the matching response was decoded")
	assert.Equal(t, []int{7}, got.Value.Args)

	err = c.Call(ctx, "WebDriver:FindElement", nil, nil)
	var me *Error
	require.ErrorAs(t, err, &me)
	assert.Equal(t, "no such element", me.Code)
	assert.Equal(t, "WebDriver:FindElement", me.Command)
	require.NoError(t, c.Call(ctx, "WebDriver:Navigate", nil, nil), "an error reply leaves the connection usable")
}

// A call whose context ends returns, and leaves the connection broken
// (the reply may come later, mid-stream).
func TestCallCancelled(t *testing.T) {
	addr := fakeMarionette(t, frame(hello), func([]json.RawMessage) string { return "" }) // never answers
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr)
	require.NoError(t, err)
	defer c.Close()
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	start := time.Now()
	err = c.Call(short, "WebDriver:Navigate", nil, nil)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.ErrorIs(t, c.Call(ctx, "WebDriver:Navigate", nil, nil), ErrBroken)
}

// Bad input from the peer is an error, never a panic or an allocation of
// whatever size it claims.
func TestBadInput(t *testing.T) {
	for name, greeting := range map[string]string{
		"not a length":   "abc:{}",
		"no digits":      ":{}",
		"huge length":    "999999999:{}",
		"cut short":      "50:{}",
		"not JSON":       frame("{"),
		"wrong protocol": frame(`{"applicationType":"gecko","marionetteProtocol":2}`),
	} {
		t.Run(name, func(t *testing.T) {
			addr := fakeMarionette(t, greeting, func([]json.RawMessage) string { return "" })
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			c, err := Dial(ctx, addr)
			if err == nil {
				_ = c.Close()
			}
			assert.Error(t, err)
		})
	}
	for name, resp := range map[string]string{
		"not an array":   frame(`{}`),
		"short array":    frame(`[1,1]`),
		"bad id":         frame(`[1,"x",null,{}]`),
		"bad error":      frame(`[1,1,7,null]`),
		"length too big": "10:[1,1]",
	} {
		t.Run(name, func(t *testing.T) {
			addr := fakeMarionette(t, frame(hello), func([]json.RawMessage) string { return resp })
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := Dial(ctx, addr)
			require.NoError(t, err)
			defer c.Close()
			short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
			defer cancelShort()
			assert.Error(t, c.Call(short, "WebDriver:Navigate", nil, nil))
		})
	}
}

func TestUserJS(t *testing.T) {
	path := filepath.Join(t.TempDir(), "user.js")
	require.NoError(t, writeUserJS(path, map[string]any{"b.int": 1, "a.bool": true, "c.str": `x"y`}))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "user_pref(\"a.bool\", true);\nuser_pref(\"b.int\", 1);\nuser_pref(\"c.str\", \"x\\\"y\");\n", string(b))
}

func TestStartNeedsProfile(t *testing.T) {
	_, err := Start(context.Background(), Config{})
	assert.Error(t, err)
}

// A browser that exits before Marionette listens fails Start at once.
func TestStartExits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Start(ctx, Config{Path: "/bin/false", Profile: t.TempDir()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exited before Marionette listened")
	assert.False(t, errors.Is(err, context.DeadlineExceeded))
}
