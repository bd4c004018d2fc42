//go:build linux

package procs

import "syscall"

// SysProcAttr puts a child in its own process group, so that it and anything
// it starts are stopped together, and kills it should the parent die.
func SysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
