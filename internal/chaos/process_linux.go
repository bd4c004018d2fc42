//go:build linux

package chaos

import "syscall"

// sysProcAttr puts a child in its own process group, so that it and anything
// it starts are killed together, and kills it should the runner die.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
