// Package netns runs a test in a network namespace that has nothing but
// loopback, so that what the test starts (browsers, servers) can reach no
// network but 127.0.0.1: the test binary re-executes itself, for that one
// test, under `unshare -n` (or `unshare -r -n` without root).
//
// Without unshare, ip or the right to make a namespace the test is
// skipped, except under CI=true or DIALTONE_FULL=1 where it fails
// (internal/testenv).
package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/internal/testenv"
)

// Env is "1" in the re-executed child. Set to "off", it makes Run run the
// test where it is, without a namespace.
const Env = "DIALTONE_BROWSER_NETNS"

// Command returns how to make a loopback-only network namespace here: as
// root `unshare -n`, else through a user namespace (`unshare -r -n`). Each
// is tried by bringing lo up in a namespace it makes.
func Command() ([]string, error) {
	var errs []error
	for _, args := range [][]string{{"unshare", "-n"}, {"unshare", "-r", "-n"}} {
		probe := append(append([]string(nil), args...), "sh", "-c", "ip link set lo up")
		out, err := exec.Command(probe[0], probe[1:]...).CombinedOutput()
		if err == nil {
			return args, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out)))
	}
	return nil, errors.Join(errs...)
}

// Run runs test, the body of the top-level test t, in a loopback-only
// network namespace: it re-executes the test binary for t.Name() there,
// with lo up and env added to the environment, logs the child's output
// and fails t unless the child ran the test and passed (within 100 s). In
// the child, or with Env=off, it runs test itself.
func Run(t *testing.T, test func(t *testing.T), env ...string) {
	switch os.Getenv(Env) {
	case "1", "off":
		test(t)
		return
	}
	testenv.Program(t, "unshare")
	testenv.Program(t, "ip")
	unshare, err := Command()
	if err != nil {
		testenv.Missing(t, "cannot make a loopback-only network namespace (set %s=off to run without one): %v", Env, err)
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	args := append(append([]string(nil), unshare...), "sh", "-c", `ip link set lo up && exec "$0" "$@"`, exe,
		"-test.run=^"+t.Name()+"$", "-test.v", "-test.timeout=100s")
	ctx, cancel := context.WithTimeout(context.Background(), 110*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(append(os.Environ(), Env+"=1"), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("child test in a loopback-only network namespace (%s), %v:\n%s", strings.Join(unshare, " "), time.Since(start).Round(time.Millisecond), out)
	require.NoError(t, err, "test failed in the namespace")
	require.Contains(t, string(out), "--- PASS: "+t.Name()+" ", "the child ran the test")
}
