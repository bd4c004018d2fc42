package chaos

import "github.com/concordtx/concord/internal/procs"

// The process-group and log plumbing is shared with concord bench, which
// starts the same processes (internal/procs).
var (
	sysProcAttr = procs.SysProcAttr
	signalGroup = procs.SignalGroup
	killGroup   = procs.KillGroup
	logTail     = procs.LogTail
	lastLines   = procs.LastLines
	freePort    = procs.FreeAddr
)
