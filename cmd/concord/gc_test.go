package main

import (
	"math"
	"os"
	"runtime/debug"
	"testing"
)

// TestGCSettings checks that the coordinator and the services collect
// garbage less often than the default, within a soft memory limit, unless
// GOGC and GOMEMLIMIT say otherwise.
func TestGCSettings(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	for _, g := range []gcSettings{coordinatorGC, participantGC} {
		for _, name := range []string{"GOGC", "GOMEMLIMIT"} {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
		if pct, limit := g.apply(); pct != g.percent || limit != g.limit {
			t.Fatalf("without GOGC and GOMEMLIMIT: %d%%, limit %d; want %d%%, limit %d", pct, limit, g.percent, g.limit)
		}
		t.Setenv("GOGC", "150")
		t.Setenv("GOMEMLIMIT", "1GiB")
		debug.SetGCPercent(150) // as the runtime read them at start
		debug.SetMemoryLimit(1 << 30)
		if pct, limit := g.apply(); pct != 150 || limit != 1<<30 {
			t.Fatalf("with GOGC=150 and GOMEMLIMIT=1GiB: %d%%, limit %d; want 150%%, limit %d", pct, limit, 1<<30)
		}
	}
}
