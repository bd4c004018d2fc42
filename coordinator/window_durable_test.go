package coordinator_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/testutil"
	"github.com/concordtx/concord/wire"
)

// prepares counts the transactions PREPAREd at every participant of e.
func prepares(e *env) int {
	n := 0
	for _, p := range e.parts {
		n += p.Count(wire.PathPrepare)
	}
	return n
}

// resubmitSame submits req again and checks it is answered as first (same
// outcome and votes) without a PREPARE sent.
func resubmitSame(t *testing.T, e *env, req wire.SubmitRequest, first wire.SubmitResponse) {
	t.Helper()
	before := prepares(e)
	b, _ := json.Marshal(req)
	code, body := e.post(wire.PathTransactions, string(b))
	if code != http.StatusOK {
		t.Fatalf("resubmission of %s: status %d: %s (the first answer was %v)", req.ID, code, body, first.Outcome)
	}
	var r wire.SubmitResponse
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	if r.Outcome != first.Outcome || len(r.Branches) != len(first.Branches) {
		t.Fatalf("resubmission of %s answered %+v, the first time %+v", req.ID, r, first)
	}
	for i := range r.Branches {
		if r.Branches[i].Participant != first.Branches[i].Participant || r.Branches[i].Vote != first.Branches[i].Vote {
			t.Fatalf("resubmission of %s answered %+v, the first time %+v", req.ID, r, first)
		}
	}
	if n := prepares(e) - before; n != 0 {
		t.Fatalf("the resubmission of %s sent %d PREPAREs: it ran again", req.ID, n)
	}
}

// A committed transaction whose COMMIT is acknowledged late has its END
// in a later segment than its BEGIN, request and COMMIT records. Once
// compaction deletes those, only the END is in the log; an identical
// resubmission after a restart must still be answered as the first time
// (a 409 tells the client its own retry conflicts, and it may book again
// under a new id), with nothing prepared again.
func TestResubmitAfterCompactionLeftOnlyTheEnd(t *testing.T) {
	e := newEnv(t, "flights", "hotels", "cars")
	e.opts.SegmentSize = 2048
	e.start()

	const id = "trip-late-ack"
	req := wire.SubmitRequest{ID: id, Branches: branches("flights", "cars")}
	e.parts["cars"].SetPathMode(wire.PathCommit, testutil.Down)
	first := e.submit(req)
	if first.Outcome != concord.OutcomeCommitted {
		t.Fatalf("first attempt: %+v", first)
	}
	runMany(t, e, "other", 150) // its BEGIN and COMMIT are now in an old segment
	e.parts["cars"].SetPathMode(wire.PathCommit, testutil.Normal)
	eventually(t, "the late acknowledgement", func() bool {
		e.clock.Advance(10 * time.Second) // past the COMMIT's backoff
		return e.c.Stats().Live == 0
	})
	if err := e.c.Compact(); err != nil {
		t.Fatal(err)
	}
	if s := e.c.Stats().Log.Segments; s > 2 {
		t.Fatalf("%d segments left after compaction: the test needs the BEGIN gone", s)
	}
	e.restart()
	resubmitSame(t, e, req, first)
	if o := e.outcome(id); o != concord.OutcomeCommitted {
		t.Fatalf("outcome of %s: %v", id, o)
	}
}

// A committed, fully acknowledged transaction is remembered for the
// idempotency window across compactions and restarts: its status and
// outcome stay committed and an identical resubmission is answered without
// running it; a different request under its id gets 409. Past the window
// the id is forgotten, which status and outcome queries say as such, not
// as "aborted".
func TestFinishedRememberedForTheWindow(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	e.opts.SegmentSize = 2048
	e.opts.IdempotencyWindow = 24 * time.Hour
	e.start()

	const id = "trip-window"
	req := wire.SubmitRequest{ID: id, Branches: branches("flights", "hotels")}
	first := e.submit(req)
	if first.Outcome != concord.OutcomeCommitted {
		t.Fatalf("first attempt: %+v", first)
	}
	eventually(t, "the acknowledgements", func() bool { return e.c.Stats().Live == 0 })
	runMany(t, e, "other", 150)
	eventually(t, "the others finished", func() bool { return e.c.Stats().Live == 0 })
	if err := e.c.Compact(); err != nil {
		t.Fatal(err)
	}
	e.restart()
	e.clock.Advance(23 * time.Hour) // inside the window; compaction runs meanwhile
	if err := e.c.Compact(); err != nil {
		t.Fatal(err)
	}
	e.restart()

	if st := e.status(id); st.State != "committed" || !st.Done {
		t.Fatalf("status of %s 23 hours on: %+v", id, st)
	}
	if o := e.outcome(id); o != concord.OutcomeCommitted {
		t.Fatalf("outcome of %s 23 hours on: %v, want committed", id, o)
	}
	resubmitSame(t, e, req, first)
	other := wire.SubmitRequest{ID: id, Branches: branches("flights")}
	b, _ := json.Marshal(other)
	before := prepares(e)
	if code, body := e.post(wire.PathTransactions, string(b)); code != http.StatusConflict {
		t.Fatalf("a different request under %s: status %d: %s, want 409", id, code, body)
	}
	if n := prepares(e) - before; n != 0 {
		t.Fatalf("the different request sent %d PREPAREs", n)
	}

	e.clock.Advance(time.Hour + time.Second) // past the window
	code, body := e.get(wire.TransactionPath(id))
	var er wire.ErrorResponse
	json.Unmarshal(body, &er)
	if code != http.StatusNotFound || er.State != wire.StateForgotten {
		t.Fatalf("status of %s past the window: %d %s, want 404 with state %q", id, code, body, wire.StateForgotten)
	}
	code, body = e.get(wire.OutcomePath(id))
	var o wire.OutcomeResponse
	json.Unmarshal(body, &o)
	if code != http.StatusOK || !o.Forgotten || o.Outcome != concord.OutcomeAborted {
		t.Fatalf("outcome of %s past the window: %d %s, want forgotten (presumed aborted for participants)", id, code, body)
	}
	// Expiry removes it from the file too: after a restart it stays
	// forgotten.
	if err := e.c.Compact(); err != nil {
		t.Fatal(err)
	}
	e.restart()
	if code, _ := e.get(wire.TransactionPath(id)); code != http.StatusNotFound {
		t.Fatalf("status of %s past the window after a restart: %d", id, code)
	}
}

// A client that re-serialises its request on retry (members in another
// order, other white space, 1.0 for 1, the branches in another order,
// another timeout) sends the same request: it is answered as the first
// time, before and after a restart, and nothing runs again.
func TestReserialisedResubmissionIsTheSame(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	e.start()
	first := `{"id":"trip-re","timeout_ms":5000,"branches":[` +
		`{"participant":"flights","payload":{"sku":"F-1","quantity":1,"who":{"first":"Ada","last":"L"}}},` +
		`{"participant":"hotels","payload":{"sku":"H-1","nights":2}}]}`
	again := `{ "branches" : [ {"payload": {"nights": 2.0, "sku": "H\u002d1"}, "participant": "hotels"},` + "\n" +
		`{"payload":{"who":{"last":"L","first":"Ada"},"quantity":1e0,"sku":"F-1"},"participant":"flights"} ],` +
		` "timeout_ms": 9000, "id": "trip-re" }`
	code, body := e.post(wire.PathTransactions, first)
	if code != http.StatusOK {
		t.Fatalf("first: %d %s", code, body)
	}
	var r1 wire.SubmitResponse
	json.Unmarshal(body, &r1)
	for _, restart := range []bool{false, true} {
		if restart {
			eventually(t, "the acknowledgements", func() bool { return e.c.Stats().Live == 0 })
			e.restart()
		}
		before := prepares(e)
		code, body := e.post(wire.PathTransactions, again)
		if code != http.StatusOK {
			t.Fatalf("re-serialised resubmission (restart %v): %d %s; the first answer was %v", restart, code, body, r1.Outcome)
		}
		var r wire.SubmitResponse
		json.Unmarshal(body, &r)
		if r.Outcome != r1.Outcome || prepares(e) != before {
			t.Fatalf("re-serialised resubmission (restart %v): %+v and %d PREPAREs, first %+v", restart, r, prepares(e)-before, r1)
		}
	}
	changed := strings.Replace(again, `"nights": 2.0`, `"nights": 3`, 1)
	if code, body := e.post(wire.PathTransactions, changed); code != http.StatusConflict {
		t.Fatalf("a changed payload under the same id: %d %s, want 409", code, body)
	}
}
