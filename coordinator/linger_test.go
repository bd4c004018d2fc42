package coordinator_test

import (
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/wire"
)

// The COMMITs of transactions decided within DecisionDelay of each other
// leave for a participant in one request, once the delay has passed.
func TestDecisionDelay(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	e.opts.DecisionDelay = 10 * time.Millisecond
	e.start()
	for _, id := range []concord.TxID{"trip-1", "trip-2"} {
		if r := e.submit(wire.SubmitRequest{ID: id, Branches: branches("flights", "hotels")}); r.Outcome != concord.OutcomeCommitted {
			t.Fatalf("%s: outcome %v (%s), want committed", id, r.Outcome, r.Reason)
		}
	}
	// The clock has not moved: both COMMITs are still held.
	for name, p := range e.parts {
		if n := p.Requests(wire.PathCommit); n != 0 {
			t.Fatalf("%s got %d COMMIT requests before the delay passed, want 0", name, n)
		}
	}
	e.clock.Advance(10 * time.Millisecond)
	eventually(t, "both transactions acknowledged", func() bool { return e.status("trip-1").Done && e.status("trip-2").Done })
	for name, p := range e.parts {
		if n, c := p.Requests(wire.PathCommit), p.Count(wire.PathCommit); n != 1 || c != 2 {
			t.Errorf("%s got %d COMMIT requests carrying %d transactions, want 1 carrying 2", name, n, c)
		}
		for _, id := range []concord.TxID{"trip-1", "trip-2"} {
			if s := p.State(id); s != "committed" {
				t.Errorf("%s holds %s %q, want committed", name, id, s)
			}
		}
	}
}

// As many held decisions as a batch holds leave at once, without waiting
// for the delay.
func TestDecisionDelayFullBatch(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	e.opts.DecisionDelay = time.Hour
	e.opts.MaxBatch = 2
	e.start()
	for _, id := range []concord.TxID{"trip-1", "trip-2"} {
		e.submit(wire.SubmitRequest{ID: id, Branches: branches("flights", "hotels")})
	}
	eventually(t, "a full batch of COMMITs sent without the clock moving", func() bool {
		return e.parts["flights"].Count(wire.PathCommit) == 2 && e.parts["hotels"].Count(wire.PathCommit) == 2
	})
}

// A decision still held when the coordinator stops is not lost: it is in
// the log, and the next coordinator sends it.
func TestDecisionDelayHeldAtCrash(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	e.opts.DecisionDelay = 10 * time.Millisecond
	e.start()
	if r := e.submit(wire.SubmitRequest{ID: "trip-1", Branches: branches("flights", "hotels")}); r.Outcome != concord.OutcomeCommitted {
		t.Fatalf("outcome %v (%s), want committed", r.Outcome, r.Reason)
	}
	e.restart()
	e.clock.Advance(10 * time.Millisecond)
	eventually(t, "the COMMIT sent by the next coordinator", func() bool { return e.status("trip-1").Done })
	for name, p := range e.parts {
		if s := p.State("trip-1"); s != "committed" {
			t.Errorf("%s holds %q, want committed", name, s)
		}
	}
}
