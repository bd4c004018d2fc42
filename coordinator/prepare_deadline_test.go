package coordinator_test

import (
	"testing"
	"time"

	"github.com/concordtx/concord/coordinator"
	"github.com/concordtx/concord/internal/testutil"
	"github.com/concordtx/concord/wire"
)

// Every PREPARE carries its transaction's deadline, by the coordinator's
// clock: the submit time plus timeout_ms, or the default timeout, in one
// phase and in two.
func TestPrepareCarriesDeadline(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	seen := make(chan testutil.Seen, 16)
	e.parts["flights"].Notify(seen)
	e.start()
	for _, tc := range []struct {
		req  wire.SubmitRequest
		want time.Duration
	}{
		{wire.SubmitRequest{ID: "two-phase", TimeoutMS: 3000, Branches: branches("flights", "hotels")}, 3 * time.Second},
		{wire.SubmitRequest{ID: "one-phase", Branches: branches("flights")}, coordinator.DefaultTimeout},
	} {
		start := e.clock.Now()
		a := e.submitAsync(tc.req)
		s := waitSeen(t, seen, wire.PathPrepare)
		if len(s.DeadlinesMS) != 1 || s.DeadlinesMS[0] != start.Add(tc.want).UnixMilli() {
			t.Fatalf("%s: PREPARE deadline_ms %v, want %d (submitted at %v, timeout %v)",
				tc.req.ID, s.DeadlinesMS, start.Add(tc.want).UnixMilli(), start, tc.want)
		}
		if r := <-a; r.err != nil {
			t.Fatal(r.err)
		}
	}
}
