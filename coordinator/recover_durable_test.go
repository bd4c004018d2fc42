package coordinator_test

import (
	"context"
	"errors"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/wal/memfs"
	"github.com/concordtx/concord/wire"
)

// A log record that was written but never synced (the process died, or its
// fsync failed) is still read back from the page cache by the next process.
// If recovery acts on it — re-driving a COMMIT — before it is durable, a
// power loss afterwards takes the decision away while participants have
// committed: the next coordinator presumes abort.
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
	// a new one recovers the decision and re-drives it.
	e.c.Close()
	e.c = nil
	e.start()
	eventually(t, "the re-driven commit", func() bool {
		return e.parts["flights"].State("t1") == "committed" && e.parts["hotels"].State("t1") == "committed"
	})

	// Power loss, and a third coordinator: the decision that participants
	// acted on must still be there.
	e.restart()
	if o := e.outcome("t1"); o != concord.OutcomeCommitted {
		t.Fatalf("outcome of t1 after the power loss: %v; both participants committed it", o)
	}
}
