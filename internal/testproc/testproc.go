// Package testproc runs an outside program (redis-server, turnserver,
// janus) for a test and stops it: SIGTERM, then SIGKILL when it lingers,
// and always waits for it to exit so that no process or goroutine
// outlives the test.
package testproc

import (
	"os/exec"
	"syscall"
	"time"
)

// Process is a started program whose exit is watched.
type Process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // how it exited; set before exited is closed
}

// Start starts cmd (configured by the caller: arguments, directory,
// output, SysProcAttr) and watches for its exit. The caller must Stop it.
func Start(cmd *exec.Cmd) (*Process, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// Pid is the process's ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited is closed once the process has exited; Err then says how.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is what Wait returned for the process; nil until it has exited.
func (p *Process) Err() error {
	select {
	case <-p.exited:
		return p.err
	default:
		return nil
	}
}

// Kill sends SIGKILL, as a crash would, without waiting.
func (p *Process) Kill() { _ = p.cmd.Process.Signal(syscall.SIGKILL) }

// Stop ends the process and waits until it has exited: SIGTERM, then
// SIGKILL if it is still running after grace. A grace of zero or less
// kills it at once.
func (p *Process) Stop(grace time.Duration) {
	if grace <= 0 {
		p.Kill()
		<-p.exited
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		p.Kill()
		<-p.exited
	}
}
