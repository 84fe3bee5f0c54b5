//go:build linux

package k8scluster

import (
	"os/exec"
	"syscall"
)

// setProcAttrs puts the child in its own process group (so Stop can signal
// the whole group) and has the kernel SIGKILL it when the thread that
// started it dies. startProcess keeps that thread alive (LockOSThread) for
// the child's whole life, so in practice the child dies with the test
// process, even when `go test` is killed.
func setProcAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,
		Pdeathsig: syscall.SIGKILL,
	}
}

// signalGroup sends sig to the child's process group.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.Process == nil {
		return
	}
	if err := syscall.Kill(-cmd.Process.Pid, sig); err != nil {
		_ = cmd.Process.Signal(sig)
	}
}

// processAlive reports whether a process with this pid exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
