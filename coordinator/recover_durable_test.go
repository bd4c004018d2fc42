package coordinator_test

import (
	"context"
	"errors"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/wal/memfs"
	"github.com/concordtx/concord/wire"
)

// A log record that was written but whose fsync failed is still read back
// from the page cache by the next process, but on Linux the kernel has
// taken those pages as clean: a new fsync succeeds and they may still never
// reach the disk. If recovery acts on it — re-driving a COMMIT — a power
// loss afterwards takes the decision away while participants have
// committed: the next coordinator presumes abort. The log's note of the
// failed sync (wal.SyncFailedFile) makes the next process cut what follows
// its last good sync: the decision, never acknowledged nor sent, is gone,
// and the transaction aborts, consistently across the power loss.
func TestRecoveryActsOnlyOnDurableRecords(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	e.start()

	// The commit decision's fsync fails: the coordinator halts, having
	// written the decision but sent no COMMIT and answered no one.
	e.fs.FailNth(memfs.OpSync, 1, errors.New("injected: disk error"))
	if _, err := e.c.Submit(context.Background(), wire.SubmitRequest{ID: "t1", Branches: branches("flights", "hotels")}); err == nil {
		t.Fatal("submit succeeded although the decision could not be synced")
	}
	for _, p := range []string{"flights", "hotels"} {
		if s := e.parts[p].State("t1"); s != "prepared" {
			t.Fatalf("%s holds %q before any COMMIT", p, s)
		}
	}

	// The process ends (no power loss: the written bytes stay readable) and
	// a new one recovers without the decision: presumed abort.
	e.c.Close()
	e.c = nil
	e.start()
	if o := e.outcome("t1"); o == concord.OutcomeCommitted {
		t.Fatalf("outcome of t1 after the restart: %v, from a decision whose sync failed", o)
	}
	for _, p := range []string{"flights", "hotels"} {
		if s := e.parts[p].State("t1"); s == "committed" {
			t.Fatalf("%s committed t1, from a decision whose sync failed", p)
		}
	}

	// Power loss, and a third coordinator: the outcome participants acted
	// on is the one it gives.
	e.restart()
	if o := e.outcome("t1"); o == concord.OutcomeCommitted {
		t.Fatalf("outcome of t1 after the power loss: %v; it was not committed before", o)
	}
}
