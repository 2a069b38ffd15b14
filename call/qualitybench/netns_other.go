//go:build !linux

package main

import (
	"errors"
	"os/exec"
)

func isolate(cmd *exec.Cmd) {}

func inNetns(pid int, f func() error) error {
	return errors.New("the Chromium peer needs Linux network namespaces")
}
