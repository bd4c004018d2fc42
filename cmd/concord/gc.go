package main

import (
	"os"
	"runtime/debug"
)

// gcSettings are a process's garbage collector target (GOGC) and soft
// memory limit (GOMEMLIMIT), applied unless the environment sets them.
//
// The coordinator and the services keep small live heaps (what they
// remember of finished transactions: tens of MiB) and make their garbage
// per request, so collecting at a quarter of the default rate saves about a
// tenth of their CPU per transaction (docs/performance.md). The soft limit
// bounds the larger heap that buys: near it the collector runs as often as
// it must.
type gcSettings struct {
	percent int
	limit   int64 // bytes
}

var (
	coordinatorGC = gcSettings{percent: 400, limit: 384 << 20}
	participantGC = gcSettings{percent: 400, limit: 256 << 20}
)

// apply sets what the environment leaves unset and returns the target and
// limit in force.
func (g gcSettings) apply() (percent int, limit int64) {
	if _, set := os.LookupEnv("GOGC"); set {
		percent = debug.SetGCPercent(-1)
		debug.SetGCPercent(percent)
	} else {
		debug.SetGCPercent(g.percent)
		percent = g.percent
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(g.limit)
	}
	return percent, debug.SetMemoryLimit(-1)
}
