//go:build linux

package procs

import "syscall"

// sysProcAttr puts a child in its own process group, so that it and anything
// it starts are stopped together, and kills it should the parent die.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
