package bench

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/concordtx/concord/wire"
)

// procStats is what the bench reads from a process's GET /v1/stats: the
// coordinator's and a travel service's answers share these fields.
type procStats struct {
	// Coordinator: HTTP requests to participants, and outcomes.
	Requests  int64 `json:"requests"`
	Committed int64 `json:"committed"`
	// Participant: requests received, by kind.
	Server struct {
		PrepareRequests uint64 `json:"prepare_requests"`
		CommitRequests  uint64 `json:"commit_requests"`
		AbortRequests   uint64 `json:"abort_requests"`
	} `json:"server"`
	Log struct {
		Syncs int64 `json:"syncs"`
	} `json:"log"`
	Runtime wire.RuntimeStats `json:"runtime"`
}

// snapshot is every process's stats at one moment; a process that did not
// answer is missing.
type snapshot map[string]procStats

const coordinatorName = "coordinator"

// readStats reads GET /v1/stats of the coordinator and every known service.
func readStats(ctx context.Context, hc *http.Client, c *cluster) snapshot {
	s := snapshot{}
	read := func(name, base string) {
		var st procStats
		if err := wire.Do(ctx, hc, http.MethodGet, strings.TrimRight(base, "/")+wire.PathStats, nil, &st); err == nil {
			s[name] = st
		}
	}
	read(coordinatorName, c.coordURL)
	for name, u := range c.services {
		read(name, u)
	}
	return s
}

// loadAverage reads the 1-minute load average, or -1 where there is none.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}
