package testkit

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Proc is a process a test started with StartProc, such as the dfms
// binary as a server or a mount: its output is in Logs, and Done
// receives once what cmd.Wait returned (a reader that only looks puts
// it back).
type Proc struct {
	Name string // in messages, as "dfms server"
	Cmd  *exec.Cmd
	Logs *SyncBuffer
	Done chan error
}

// StartProc starts cmd, with its stderr and (unless cmd has one already)
// its stdout in the returned process's Logs, and waits up to timeout
// until ready reports true; it fails t with the log if the process exits
// first. When owner ends, a process still running is killed; then ended,
// if not nil, is called with whether it was.
func StartProc(t, owner testing.TB, name string, cmd *exec.Cmd, timeout time.Duration, ready func() bool, ended func(p *Proc, killed bool)) *Proc {
	t.Helper()
	p := &Proc{Name: name, Cmd: cmd, Logs: &SyncBuffer{}, Done: make(chan error, 1)}
	cmd.Stderr = p.Logs
	if cmd.Stdout == nil {
		cmd.Stdout = p.Logs
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.Done <- cmd.Wait() }()
	owner.Cleanup(func() {
		killed := cmd.ProcessState == nil
		if killed {
			cmd.Process.Kill()
			<-p.Done
		}
		if ended != nil {
			ended(p, killed)
		}
	})
	Eventually(t, timeout, func() bool {
		if ready() {
			return true
		}
		select {
		case err := <-p.Done:
			p.Done <- err
			t.Fatalf("%s exited early: %v\n%s", name, err, p.Logs)
		default:
		}
		return false
	}, "%s coming up\n%s", name, p.Logs)
	return p
}

// Wait waits up to d for the process to exit by itself, and fails t at
// once unless it exited with success.
func (p *Proc) Wait(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case err := <-p.Done:
		if err != nil {
			t.Fatalf("%s exited with %v\n%s", p.Name, err, p.Logs)
		}
	case <-time.After(d):
		t.Fatalf("%s did not stop within %v\n%s", p.Name, d, p.Logs)
	}
}

// Stop sends the process SIGTERM and waits as Wait does.
func (p *Proc) Stop(t testing.TB, d time.Duration) {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.Wait(t, d)
}
