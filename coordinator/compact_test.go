package coordinator_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/testutil"
	"github.com/concordtx/concord/wire"
)

// runMany commits n transactions, ten at a time, so that the log is
// written in many small group commits and spans many segments.
func runMany(t *testing.T, e *env, prefix string, n int) {
	t.Helper()
	for round := 0; round < n; round += 10 {
		var wg sync.WaitGroup
		errs := make(chan error, 10)
		for i := round; i < min(n, round+10); i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				r, err := e.c.Submit(context.Background(), wire.SubmitRequest{
					ID: concord.TxID(fmt.Sprintf("%s-%04d", prefix, i)), Branches: branches("flights", "hotels")})
				if err == nil && r.Outcome != concord.OutcomeCommitted {
					err = fmt.Errorf("%s: %v %s", r.ID, r.Outcome, r.Reason)
				}
				errs <- err
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Finished transactions' records are compacted away; a commit that a
// participant does not acknowledge pins the log only until RefreshAfter,
// when its state is rewritten and the old segments go; after a crash it
// comes back from the rewritten copy and still finishes.
func TestCompactionKeepsLogBounded(t *testing.T) {
	e := newEnv(t, "flights", "hotels", "cars")
	e.opts.SegmentSize = 4096
	e.opts.RefreshAfter = time.Minute
	e.start()
	runMany(t, e, "early", 300)
	eventually(t, "all finished", func() bool { return e.c.Stats().Live == 0 })
	grown := e.c.Stats().Log.Segments
	if grown < 5 {
		t.Fatalf("only %d segments: the test needs a log that spans many", grown)
	}
	if err := e.c.Compact(); err != nil {
		t.Fatal(err)
	}
	if s := e.c.Stats().Log.Segments; s > 2 {
		t.Fatalf("%d segments after compacting a log of finished transactions (was %d)", s, grown)
	}

	// One commit is stuck: cars does not take it.
	e.parts["cars"].SetPathMode(wire.PathCommit, testutil.Down)
	if r, err := e.c.Submit(context.Background(), wire.SubmitRequest{ID: "stuck", Branches: branches("flights", "cars")}); err != nil || r.Outcome != concord.OutcomeCommitted {
		t.Fatalf("%+v %v", r, err)
	}
	eventually(t, "the stuck commit's failure", func() bool { return e.status("stuck").Branches[1].LastError != "" })
	runMany(t, e, "late", 300)
	eventually(t, "only the stuck one live", func() bool { return e.c.Stats().Live == 1 })
	if err := e.c.Compact(); err != nil {
		t.Fatal(err)
	}
	pinned := e.c.Stats().Log.Segments
	if pinned < 5 {
		t.Fatalf("%d segments: the stuck transaction should pin the log until it is refreshed", pinned)
	}
	e.clock.Advance(time.Minute) // past RefreshAfter (cars still refuses the retries)
	if err := e.c.Compact(); err != nil {
		t.Fatal(err)
	}
	if s := e.c.Stats(); s.Log.Segments > 2 || s.Refreshed != 1 {
		t.Fatalf("after refreshing the stuck transaction: %d segments (was %d), %d refreshed", s.Log.Segments, pinned, s.Refreshed)
	}

	// A crash now: the stuck commit survives through its rewritten copy.
	e.restart()
	st := e.status("stuck")
	if st.State != "committed" || st.Done {
		t.Fatalf("stuck transaction after restart: %+v", st)
	}
	e.parts["cars"].SetPathMode(wire.PathCommit, testutil.Normal)
	eventually(t, "the stuck commit finished", func() bool {
		e.clock.Advance(time.Second) // past any backoff, should the re-driven COMMIT have failed
		return e.status("stuck").Done
	})
	if s := e.parts["cars"].State("stuck"); s != "committed" {
		t.Fatalf("cars holds %q", s)
	}
	if o := e.outcome("stuck"); o != concord.OutcomeCommitted {
		t.Fatalf("outcome %v", o)
	}
}
