package coordinator_test

import (
	"context"
	"strings"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/wire"
)

// concord_coordinator_compactions_total counts passes, most of which delete
// no segment, as its help and the console say; the segments deleted are
// concord_wal_segments_removed_total, also in the console's overview.
func TestCompactionMetricsSayWhatTheyCount(t *testing.T) {
	e := newEnv(t, "flights")
	e.start()
	if r, err := e.c.Submit(context.Background(), wire.SubmitRequest{ID: "one", Branches: branches("flights")}); err != nil || r.Outcome != concord.OutcomeCommitted {
		t.Fatalf("%+v %v", r, err)
	}
	eventually(t, "finished", func() bool { return e.c.Stats().Live == 0 })
	for range 3 {
		if err := e.c.Compact(); err != nil {
			t.Fatal(err)
		}
	}
	m := gather(t, e.c)
	passes, removed := m.value("concord_coordinator_compactions_total"), m.value("concord_wal_segments_removed_total")
	if passes != 3 || removed != 0 {
		t.Fatalf("3 passes over a one-segment log: compactions_total %v, segments_removed_total %v; want 3 and 0", passes, removed)
	}
	help := m["concord_coordinator_compactions_total"].GetHelp()
	if !strings.Contains(help, "passes") || !strings.Contains(help, "most delete none") {
		t.Errorf("help %q does not say that passes deleting nothing count", help)
	}
	o := e.c.Overview()
	if o.Compactions != 3 || o.LogSegmentsRemoved != 0 {
		t.Errorf("overview: %d compactions, %d segments removed", o.Compactions, o.LogSegmentsRemoved)
	}
}
