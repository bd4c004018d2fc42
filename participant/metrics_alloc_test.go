package participant

import (
	"testing"
	"time"

	"github.com/concordtx/concord/tpc"
)

// Observing a request and a resource call allocates nothing.
func TestMetricsAllocateNothing(t *testing.T) {
	m := newMetrics(&Server{})
	start := time.Now()
	if n := testing.AllocsPerRun(1000, func() {
		m.request(reqPrepare, start, 8)
		m.call(tpc.ActPrepare, start, false)
		m.call(tpc.ActCommit, start, true)
	}); n != 0 {
		t.Errorf("%v allocations, want 0", n)
	}
}
