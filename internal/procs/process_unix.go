//go:build unix

package procs

import "syscall"

// SignalGroup sends sig to the process group led by pid.
func SignalGroup(pid int, sig syscall.Signal) { _ = syscall.Kill(-pid, sig) }

// KillGroup kills whatever is left of the process group led by pid.
func KillGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }
