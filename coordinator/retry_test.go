package coordinator_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/testutil"
	"github.com/concordtx/concord/wire"
)

// After a commit decision the coordinator never gives up: a participant
// that cannot take the COMMIT gets it again with capped exponential backoff,
// GET shows it pending with attempts and the last error, and when it comes
// back it commits.
func TestCommitRetriedWithBackoffUntilAcknowledged(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	e.opts.RetryMin, e.opts.RetryMax = 100*time.Millisecond, 400*time.Millisecond
	hotels := e.parts["hotels"]
	hotels.SetPathMode(wire.PathCommit, testutil.Down)
	e.start()
	resp := e.submit(wire.SubmitRequest{ID: "stubborn", TimeoutMS: 1000, Branches: branches("flights", "hotels")})
	if resp.Outcome != concord.OutcomeCommitted {
		t.Fatalf("outcome %v", resp.Outcome)
	}
	wantDelays := []time.Duration{100, 200, 400, 400, 400}
	for i, d := range wantDelays {
		d *= time.Millisecond
		attempt := i + 1
		eventually(t, "failed attempt recorded", func() bool {
			b := e.status("stubborn").Branches[1]
			return b.Attempts == attempt && !b.NextRetry.IsZero()
		})
		b := e.status("stubborn").Branches[1]
		if b.Acknowledged || b.LastError == "" {
			t.Fatalf("attempt %d: %+v", attempt, b)
		}
		if got := b.NextRetry.Sub(e.clock.Now()); got != d {
			t.Fatalf("after attempt %d the next retry is in %v, want %v", attempt, got, d)
		}
		e.clock.Advance(d - time.Millisecond)
		if n := e.status("stubborn").Branches[1].Attempts; n != attempt {
			t.Fatalf("resent before its backoff passed: attempts %d", n)
		}
		if i == len(wantDelays)-1 {
			hotels.SetPathMode(wire.PathCommit, testutil.Normal)
		}
		e.clock.Advance(time.Millisecond) // past the deadline too: a commit is never aborted
	}
	eventually(t, "hotels acknowledged", func() bool { return e.status("stubborn").Done })
	if s := hotels.State("stubborn"); s != "committed" {
		t.Fatalf("hotels holds %q", s)
	}
	if n := hotels.Count(wire.PathCommit); n != len(wantDelays)+1 {
		t.Fatalf("hotels got %d COMMITs, want %d", n, len(wantDelays)+1)
	}
	if n := e.parts["flights"].Count(wire.PathCommit); n != 1 {
		t.Fatalf("flights got %d COMMITs, want 1", n)
	}
}

// A COMMIT refused by the participant (it never prepared it) is a failure
// kept visible and retried, never taken as done.
func TestCommitRefusedIsRetried(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	e.start()
	seen := make(chan testutil.Seen, 16)
	hotels := e.parts["hotels"]
	hotels.SetVote(func(id concord.TxID, _ json.RawMessage) (concord.Vote, string) {
		return concord.VoteYes, ""
	})
	hotels.Notify(seen)
	hotels.SetPathMode(wire.PathCommit, testutil.Slow)
	res := e.submitAsync(wire.SubmitRequest{ID: "forgetful", Branches: branches("flights", "hotels")})
	waitSeen(t, seen, wire.PathCommit)
	hotels.SetState("forgetful", "") // it lost the prepared state: a broken participant
	hotels.Release()
	if r := <-res; r.err != nil || r.resp.Outcome != concord.OutcomeCommitted {
		t.Fatalf("%+v %v", r.resp, r.err)
	}
	eventually(t, "refusal recorded", func() bool { return e.status("forgetful").Branches[1].LastError != "" })
	st := e.status("forgetful")
	if st.Done || st.Branches[1].Acknowledged {
		t.Fatalf("a refused COMMIT counted as acknowledged: %+v", st)
	}
}

// A graceful restart keeps a commit that is still being delivered: the new
// coordinator re-sends COMMIT and finishes it; finished transactions are
// rebuilt from the log, so resubmitting them is still idempotent.
func TestRestartRedrivesCommitAndKeepsIdempotency(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	hotels := e.parts["hotels"]
	hotels.SetPathMode(wire.PathCommit, testutil.Down)
	e.start()
	done := wire.SubmitRequest{ID: "finished-one", Branches: branches("flights")}
	if r := e.submit(done); r.Outcome != concord.OutcomeCommitted {
		t.Fatalf("%+v", r)
	}
	req := wire.SubmitRequest{ID: "in-delivery", Branches: branches("flights", "hotels")}
	if r := e.submit(req); r.Outcome != concord.OutcomeCommitted {
		t.Fatalf("%+v", r)
	}
	eventually(t, "hotels' failed COMMIT", func() bool { return e.status("in-delivery").Branches[1].Attempts == 1 })
	if err := e.c.Close(); err != nil {
		t.Fatal(err)
	}
	hotels.SetPathMode(wire.PathCommit, testutil.Normal)
	e.start()
	if st := e.status("in-delivery"); st.State != "committed" {
		t.Fatalf("after restart: %+v", st)
	}
	eventually(t, "re-driven commit acknowledged", func() bool { return e.status("in-delivery").Done })
	if s := hotels.State("in-delivery"); s != "committed" {
		t.Fatalf("hotels holds %q", s)
	}
	prepares := e.parts["flights"].Count(wire.PathPrepare)
	if r := e.submit(done); r.Outcome != concord.OutcomeCommitted || r.ID != "finished-one" {
		t.Fatalf("resubmitted after restart: %+v", r)
	}
	if r := e.submit(req); r.Outcome != concord.OutcomeCommitted {
		t.Fatalf("resubmitted after restart: %+v", r)
	}
	if n := e.parts["flights"].Count(wire.PathPrepare); n != prepares {
		t.Fatalf("resubmission after restart prepared again")
	}
	other := done
	other.Branches = branches("hotels")
	b, _ := json.Marshal(other)
	if code, _ := e.post(wire.PathTransactions, string(b)); code != http.StatusConflict {
		t.Fatalf("different body after restart: %d, want 409", code)
	}
}
