//go:build !unix

package procs

import (
	"os"
	"syscall"
)

// SysProcAttr has nothing to add where process groups do not exist.
func SysProcAttr() *syscall.SysProcAttr { return nil }

// SignalGroup kills the process: without process groups and signals, every
// stop is a kill.
func SignalGroup(pid int, _ syscall.Signal) { KillGroup(pid) }

// KillGroup kills the process pid.
func KillGroup(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}
