//go:build unix && !linux

package procs

import "syscall"

// SysProcAttr puts a child in its own process group, so that it and anything
// it starts are killed together.
func SysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
