// Package testenv decides what a test does when something it needs from
// outside the Go toolchain is missing (a program such as redis-server or
// Chromium): on a developer's machine it skips, in CI it fails, so that a
// CI machine without the program cannot pass by skipping.
//
// CI means the environment variable CI is "true" (as CI services set it,
// and .ci/run sets it itself) or DIALTONE_FULL is "1" (scripts/test.sh
// installs every such program then, through scripts/deps.sh).
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Required reports whether every outside program must be present: CI=true
// or DIALTONE_FULL=1.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("DIALTONE_FULL") == "1"
}

// Program returns the path of the program name: looked up in PATH, or
// checked as it is when name contains a slash. When it is missing Program
// fails the test if [Required], and skips it otherwise.
func Program(t testing.TB, name string) string {
	t.Helper()
	var path string
	var err error
	if filepath.Base(name) != name {
		path = name
		_, err = exec.LookPath(name) // a path with a slash is only checked
	} else {
		path, err = exec.LookPath(name)
	}
	if err != nil {
		Missing(t, "%s is not installed (%v); scripts/deps.sh installs it with DIALTONE_FULL=1", name, err)
		return ""
	}
	return path
}

// Missing reports that something the test needs from its environment is
// not there: the test fails if [Required] and is skipped otherwise.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		t.Fatalf("%s (required: CI=true or DIALTONE_FULL=1)", msg)
		return
	}
	t.Skip(msg)
}
