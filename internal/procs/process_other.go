//go:build !unix

package procs

import (
	"os"
	"syscall"
)

// sysProcAttr has nothing to add where process groups do not exist.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// signalGroup kills the process: without process groups and signals, every
// stop is a kill.
func signalGroup(pid int, _ syscall.Signal) { killGroup(pid) }

// killGroup kills the process pid.
func killGroup(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}
