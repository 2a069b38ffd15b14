package socketio_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/internal/testenv"
)

// The Node side of the tests: testdata/server.js on Socket.IO 4, installed
// by `npm ci` from testdata/package-lock.json into testdata/node_modules
// (git-ignored) once per test binary. npmDoneEnv tells a child test
// process (the browser test's, in a network namespace without the npm
// registry) that its parent installed it.
const npmDoneEnv = "DIALTONE_SOCKETIO_NPM_DONE"

var npmOnce struct {
	sync.Once
	err error
	out []byte
}

// nodeModules installs the server's packages, or skips (fails in CI)
// without node and npm.
func nodeModules(t *testing.T) {
	t.Helper()
	testenv.Program(t, "node")
	if os.Getenv(npmDoneEnv) == "1" {
		return
	}
	npm := testenv.Program(t, "npm")
	npmOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error")
		cmd.Dir = "testdata"
		npmOnce.out, npmOnce.err = cmd.CombinedOutput()
	})
	require.NoError(t, npmOnce.err, "npm ci in testdata:\n%s", npmOnce.out)
}

// startNode runs testdata/server.js on a free port of 127.0.0.1 and
// returns its base URL; t.Cleanup stops it.
func startNode(t *testing.T) string {
	t.Helper()
	nodeModules(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "node", filepath.Join("testdata", "server.js"), "0")
	cmd.Stderr = &testWriter{t: t, prefix: "node: "}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	waited := make(chan struct{})
	go func() {
		defer close(waited)
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		cancel()
		<-waited
	})
	first := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		first <- line
	}()
	var line string
	select {
	case line = <-first:
	case <-time.After(15 * time.Second):
		t.Fatal("the Node server did not start in 15 s")
	}
	var addr struct {
		Port int `json:"port"`
	}
	require.NoError(t, json.Unmarshal([]byte(line), &addr), "the Node server's first line: %q", line)
	return fmt.Sprintf("http://127.0.0.1:%d", addr.Port)
}

// testWriter logs a process's output through t, line by line, until the
// test ends.
type testWriter struct {
	t      *testing.T
	prefix string
	mu     sync.Mutex
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		w.t.Log(w.prefix + l)
	}
	return len(b), nil
}
