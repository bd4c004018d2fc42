package coordinator_test

import (
	"context"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/testutil"
	"github.com/concordtx/concord/wire"
)

// Compaction deletes the segments of finished transactions, but what
// finished them (an END, an ABORT) may not be durable yet: records not
// forced reach the disk with the next sync. A one-phase transaction whose
// BEGIN was durable and whose END was not is settled after a crash by
// asking its participant; if compaction deleted the BEGIN before the END
// was durable, the coordinator would come back knowing nothing of it and
// answer "aborted" for a transaction its participant committed.
func TestCompactionKeepsWhatAnUnsyncedEndSupersedes(t *testing.T) {
	e := newEnv(t, "flights", "hotels", "cars")
	e.opts.SegmentSize = 2048
	e.start()

	// The one-phase transaction's BEGIN is written; its answer is held.
	gate := make(chan testutil.Seen, 16)
	e.parts["cars"].Notify(gate)
	e.parts["cars"].SetMode(testutil.Slow)
	solo := make(chan wire.SubmitResponse, 1)
	go func() {
		r, err := e.c.Submit(context.Background(), wire.SubmitRequest{ID: "solo", TimeoutMS: 60_000, Branches: branches("cars")})
		if err != nil {
			t.Errorf("submit solo: %v", err)
		}
		solo <- r
	}()
	waitSeen(t, gate, wire.PathPrepare)

	// Other commits sync the BEGIN and fill many segments after it.
	runMany(t, e, "other", 150)
	eventually(t, "the others finished", func() bool { return e.c.Stats().Live == 1 })
	if s := e.c.Stats().Log.Segments; s < 5 {
		t.Fatalf("only %d segments: the test needs the BEGIN in an old one", s)
	}

	// The participant commits; the END is appended, not forced.
	stop := drain(gate)
	defer stop()
	e.parts["cars"].Release()
	e.parts["cars"].SetMode(testutil.Normal)
	if r := <-solo; r.Outcome != concord.OutcomeCommitted {
		t.Fatalf("solo: %+v", r)
	}
	if err := e.c.Compact(); err != nil {
		t.Fatal(err)
	}

	e.restart() // a power loss: what was not synced is gone
	if s := e.parts["cars"].State("solo"); s != "committed" {
		t.Fatalf("cars holds %q", s)
	}
	eventually(t, "solo settled", func() bool { return e.outcome("solo") != concord.OutcomePending })
	if o := e.outcome("solo"); o != concord.OutcomeCommitted {
		t.Fatalf("outcome of solo after the restart: %v; its participant committed it", o)
	}
}
