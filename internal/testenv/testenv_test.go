package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeT records what Program and Missing do to a test. Unlike a real test
// its Fatalf and Skip return, so the caller goes on.
type fakeT struct {
	testing.TB
	fatal, skip string
}

func (f *fakeT) Helper()                           {}
func (f *fakeT) Fatalf(format string, args ...any) { f.fatal = fmt.Sprintf(format, args...) }
func (f *fakeT) Skip(args ...any)                  { f.skip = fmt.Sprint(args...) }

func TestProgram(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "tool")
	assert.NoError(t, os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755))
	notExe := filepath.Join(t.TempDir(), "data")
	assert.NoError(t, os.WriteFile(notExe, nil, 0o644))
	t.Setenv("PATH", filepath.Dir(exe))

	for _, tc := range []struct {
		name, ci, full string
		want           string // "" for fail or skip
		fail, skip     bool
	}{
		{name: "tool", want: exe},
		{name: exe, want: exe},
		{name: "tool", ci: "true", want: exe},
		{name: "no-such-tool", skip: true},
		{name: "no-such-tool", ci: "false", skip: true},
		{name: "no-such-tool", ci: "true", fail: true},
		{name: "no-such-tool", full: "1", fail: true},
		{name: notExe, skip: true},
		{name: notExe, full: "1", fail: true},
		{name: "/no/such/tool", ci: "true", fail: true},
	} {
		t.Run(fmt.Sprintf("%s CI=%s FULL=%s", filepath.Base(tc.name), tc.ci, tc.full), func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			t.Setenv("DIALTONE_FULL", tc.full)
			f := &fakeT{}
			got := Program(f, tc.name)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.fail, f.fatal != "", "failed: %q", f.fatal)
			assert.Equal(t, tc.skip, f.skip != "", "skipped: %q", f.skip)
			if tc.fail || tc.skip {
				assert.Contains(t, f.fatal+f.skip, filepath.Base(tc.name))
			}
		})
	}
}
