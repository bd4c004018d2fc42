package coordinator_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/testutil"
	"github.com/concordtx/concord/wire"
)

func voteNoFor(reason string) func(concord.TxID, json.RawMessage) (concord.Vote, string) {
	return func(concord.TxID, json.RawMessage) (concord.Vote, string) { return concord.VoteNo, reason }
}

// All three vote yes: committed for the client, committed at every
// participant, and the transaction ends with every acknowledgement in.
func TestCommitAllYes(t *testing.T) {
	e := newEnv(t, "flights", "hotels", "cars")
	e.start()
	resp := e.submit(wire.SubmitRequest{ID: "trip-1", Branches: branches("flights", "hotels", "cars")})
	if resp.Outcome != concord.OutcomeCommitted {
		t.Fatalf("outcome %v (%s), want committed", resp.Outcome, resp.Reason)
	}
	if len(resp.Branches) != 3 {
		t.Fatalf("branches %+v, want 3", resp.Branches)
	}
	for _, b := range resp.Branches {
		if b.Vote != concord.VoteYes {
			t.Errorf("%s voted %v, want yes", b.Participant, b.Vote)
		}
	}
	eventually(t, "every acknowledgement", func() bool { return e.status("trip-1").Done })
	for name, p := range e.parts {
		if s := p.State("trip-1"); s != "committed" {
			t.Errorf("%s holds %q, want committed", name, s)
		}
	}
	st := e.status("trip-1")
	if st.State != "committed" {
		t.Fatalf("state %q, want committed", st.State)
	}
	for _, b := range st.Branches {
		if !b.Acknowledged {
			t.Errorf("%s not acknowledged in %+v", b.Participant, st)
		}
	}
	if o := e.outcome("trip-1"); o != concord.OutcomeCommitted {
		t.Fatalf("outcome endpoint says %v, want committed", o)
	}
}

// One no vote aborts: the reason names the participant, the yes voters get
// ABORT, the no voter gets nothing more.
func TestAbortOnNoVote(t *testing.T) {
	e := newEnv(t, "flights", "hotels", "cars")
	e.parts["hotels"].SetVote(voteNoFor("H-PARIS sold out"))
	e.start()
	resp := e.submit(wire.SubmitRequest{ID: "trip-no", Branches: branches("flights", "hotels", "cars")})
	if resp.Outcome != concord.OutcomeAborted {
		t.Fatalf("outcome %v, want aborted", resp.Outcome)
	}
	if !strings.Contains(resp.Reason, "hotels") || !strings.Contains(resp.Reason, "sold out") {
		t.Fatalf("reason %q does not name hotels and why", resp.Reason)
	}
	eventually(t, "aborts delivered", func() bool {
		return e.parts["flights"].State("trip-no") == "aborted" && e.parts["cars"].State("trip-no") == "aborted"
	})
	if n := e.parts["hotels"].Count(wire.PathAbort); n != 0 {
		t.Fatalf("the no voter got %d ABORTs, want 0", n)
	}
	if o := e.outcome("trip-no"); o != concord.OutcomeAborted {
		t.Fatalf("outcome endpoint says %v", o)
	}
}

// A participant that never answers: the deadline aborts the transaction,
// its vote is recorded as timeout, and the others are told to abort.
func TestPrepareTimeoutAborts(t *testing.T) {
	e := newEnv(t, "flights", "hotels", "cars")
	seen := make(chan testutil.Seen, 16)
	e.parts["cars"].Notify(seen)
	e.parts["cars"].SetPathMode(wire.PathPrepare, testutil.Silent)
	e.start()
	res := e.submitAsync(wire.SubmitRequest{ID: "trip-slow", TimeoutMS: 2000, Branches: branches("flights", "hotels", "cars")})
	waitSeen(t, seen, wire.PathPrepare)
	eventually(t, "the two yes votes", func() bool {
		st := e.status("trip-slow")
		return st.Branches[0].Vote == concord.VoteYes && st.Branches[1].Vote == concord.VoteYes
	})
	if st := e.status("trip-slow"); st.State != "preparing" {
		t.Fatalf("before the deadline state is %q, want preparing", st.State)
	}
	if o := e.outcome("trip-slow"); o != concord.OutcomePending {
		t.Fatalf("in-doubt answer before the deadline %v, want pending", o)
	}
	e.clock.Advance(1999 * time.Millisecond)
	if st := e.status("trip-slow"); st.State != "preparing" {
		t.Fatalf("1 ms before the deadline state is %q, want preparing", st.State)
	}
	e.clock.Advance(time.Millisecond)
	r := <-res
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.resp.Outcome != concord.OutcomeAborted || !strings.Contains(r.resp.Reason, "cars") {
		t.Fatalf("got %v (%q), want aborted naming cars", r.resp.Outcome, r.resp.Reason)
	}
	if v := r.resp.Branches[2].Vote; v != concord.VoteTimeout {
		t.Fatalf("cars vote %v, want timeout", v)
	}
	eventually(t, "aborts delivered", func() bool {
		return e.parts["flights"].State("trip-slow") == "aborted" && e.parts["hotels"].State("trip-slow") == "aborted"
	})
	waitSeen(t, seen, wire.PathAbort) // the silent one is told too: it may be prepared
}

// A participant whose connection drops is recorded unreachable: abort.
func TestUnreachableAborts(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	e.parts["hotels"].SetMode(testutil.Down)
	e.start()
	resp := e.submit(wire.SubmitRequest{ID: "trip-down", Branches: branches("flights", "hotels")})
	if resp.Outcome != concord.OutcomeAborted {
		t.Fatalf("outcome %v, want aborted", resp.Outcome)
	}
	if v := resp.Branches[1].Vote; v != concord.VoteUnreachable {
		t.Fatalf("hotels vote %v, want unreachable", v)
	}
	eventually(t, "flights aborted", func() bool { return e.parts["flights"].State("trip-down") == "aborted" })
}

// A slow participant that answers before the deadline commits.
func TestSlowParticipantInTime(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	seen := make(chan testutil.Seen, 16)
	e.parts["hotels"].Notify(seen)
	e.parts["hotels"].SetPathMode(wire.PathPrepare, testutil.Slow)
	e.start()
	res := e.submitAsync(wire.SubmitRequest{ID: "trip-late", Branches: branches("flights", "hotels")})
	waitSeen(t, seen, wire.PathPrepare)
	e.clock.Advance(4 * time.Second) // the default deadline is 5 s
	e.parts["hotels"].Release()
	r := <-res
	if r.err != nil || r.resp.Outcome != concord.OutcomeCommitted {
		t.Fatalf("got %+v, %v; want committed", r.resp, r.err)
	}
}

// A slow participant that answers after the deadline: the transaction is
// already aborted and the late yes changes nothing; the ABORT reaches it.
func TestSlowParticipantTooLate(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	seen := make(chan testutil.Seen, 16)
	e.parts["hotels"].Notify(seen)
	e.parts["hotels"].SetPathMode(wire.PathPrepare, testutil.Slow)
	e.start()
	res := e.submitAsync(wire.SubmitRequest{ID: "trip-toolate", Branches: branches("flights", "hotels")})
	waitSeen(t, seen, wire.PathPrepare)
	e.clock.Advance(5 * time.Second)
	r := <-res
	if r.err != nil || r.resp.Outcome != concord.OutcomeAborted {
		t.Fatalf("got %+v, %v; want aborted", r.resp, r.err)
	}
	waitSeen(t, seen, wire.PathAbort)
	// The double reports a request when it arrives, before handling it:
	// wait until the ABORT is applied, so the PREPARE comes after it.
	eventually(t, "hotels applied the ABORT", func() bool { return e.parts["hotels"].State("trip-toolate") == "aborted" })
	e.parts["hotels"].Release() // the late PREPARE is now refused: it was aborted first
	eventually(t, "the late vote handled", func() bool { return e.c.Stats().Votes >= 2 })
	if st := e.status("trip-toolate"); st.State != "aborted" || st.Branches[1].Vote != concord.VoteTimeout {
		t.Fatalf("status after the late vote %+v", st)
	}
	if s := e.parts["hotels"].State("trip-toolate"); s != "aborted" {
		t.Fatalf("hotels holds %q, want aborted", s)
	}
}

// Read-only voters leave after phase 1: no COMMIT to them; all read-only
// commits with no phase 2 at all.
func TestReadOnly(t *testing.T) {
	e := newEnv(t, "flights", "hotels", "cars")
	ro := func(concord.TxID, json.RawMessage) (concord.Vote, string) { return concord.VoteReadOnly, "" }
	e.parts["cars"].SetVote(ro)
	e.start()
	resp := e.submit(wire.SubmitRequest{ID: "trip-ro", Branches: branches("flights", "hotels", "cars")})
	if resp.Outcome != concord.OutcomeCommitted {
		t.Fatalf("outcome %v, want committed", resp.Outcome)
	}
	eventually(t, "done", func() bool { return e.status("trip-ro").Done })
	if n := e.parts["cars"].Count(wire.PathCommit); n != 0 {
		t.Fatalf("read-only voter got %d COMMITs", n)
	}
	e.parts["flights"].SetVote(ro)
	e.parts["hotels"].SetVote(ro)
	resp = e.submit(wire.SubmitRequest{ID: "trip-allro", Branches: branches("flights", "hotels", "cars")})
	if resp.Outcome != concord.OutcomeCommitted || !e.status("trip-allro").Done {
		t.Fatalf("all read-only: %+v", resp)
	}
	for name, p := range e.parts {
		if n := p.Count(wire.PathCommit) + p.Count(wire.PathAbort); name != "flights" && name != "hotels" && n != 0 {
			t.Fatalf("%s got %d phase-2 messages", name, n)
		}
	}
}

// One participant: one message with one_phase set, outcome from its answer.
func TestOnePhase(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	seen := make(chan testutil.Seen, 16)
	e.parts["flights"].Notify(seen)
	defer drain(seen)()
	e.start()
	before := e.c.Stats()
	resp := e.submit(wire.SubmitRequest{ID: "solo", Branches: branches("flights")})
	if resp.Outcome != concord.OutcomeCommitted {
		t.Fatalf("outcome %v, want committed", resp.Outcome)
	}
	if s := e.parts["flights"].State("solo"); s != "committed" {
		t.Fatalf("flights holds %q", s)
	}
	after := e.c.Stats()
	if n := after.ForcedAppends - before.ForcedAppends; n != 0 {
		t.Fatalf("%d forced writes for a one-phase commit, want 0", n)
	}
	if !e.status("solo").Done {
		t.Fatal("one-phase transaction not done")
	}
	e.parts["hotels"].SetVote(voteNoFor("full"))
	resp = e.submit(wire.SubmitRequest{ID: "solo-no", Branches: branches("hotels")})
	if resp.Outcome != concord.OutcomeAborted {
		t.Fatalf("one-phase no: outcome %v", resp.Outcome)
	}
}

// A one-phase participant that does not answer in time: the coordinator
// cannot decide alone; it sends ABORT and the participant's answer decides.
// Here the participant had committed, so the outcome is committed.
func TestOnePhaseTimeoutParticipantCommitted(t *testing.T) {
	e := newEnv(t, "flights")
	seen := make(chan testutil.Seen, 16)
	p := e.parts["flights"]
	p.Notify(seen)
	p.SetPathMode(wire.PathPrepare, testutil.Silent)
	e.start()
	res := e.submitAsync(wire.SubmitRequest{ID: "solo-late", TimeoutMS: 1000, Branches: branches("flights")})
	waitSeen(t, seen, wire.PathPrepare)
	p.SetState("solo-late", "committed") // it committed, but its answer is lost
	e.clock.Advance(time.Second)
	waitSeen(t, seen, wire.PathAbort)
	r := <-res
	if r.err != nil || r.resp.Outcome != concord.OutcomeCommitted {
		t.Fatalf("got %+v, %v; want committed (the participant held it)", r.resp, r.err)
	}
	if o := e.outcome("solo-late"); o != concord.OutcomeCommitted {
		t.Fatalf("outcome endpoint %v", o)
	}
}

// A PREPARE answer voting twice on one transaction is malformed, even
// when both votes are yes: the transaction aborts as with no answer.
// Duplicate acknowledgements, and answers about transactions never asked,
// change nothing.
func TestDuplicateAnswers(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	e.parts["flights"].SetMode(testutil.Duplicate)
	e.parts["hotels"].SetMode(testutil.Duplicate)
	e.start()
	resp := e.submit(wire.SubmitRequest{ID: "dup", Branches: branches("flights", "hotels")})
	if resp.Outcome != concord.OutcomeAborted || !strings.Contains(resp.Reason, "malformed") {
		t.Fatalf("two votes each: %+v, want aborted with the votes counted as none", resp)
	}
	if code, _ := e.get(wire.TransactionPath("never-asked")); code != 404 {
		t.Fatalf("a transaction named only in a duplicate answer exists: %d", code)
	}

	// Votes once each, then every acknowledgement twice.
	for _, p := range e.parts {
		p.SetMode(testutil.Normal)
	}
	e.parts["hotels"].SetPathMode(wire.PathCommit, testutil.Down)
	resp = e.submit(wire.SubmitRequest{ID: "dup-ack", Branches: branches("flights", "hotels")})
	if resp.Outcome != concord.OutcomeCommitted {
		t.Fatalf("outcome %v", resp.Outcome)
	}
	e.parts["flights"].SetMode(testutil.Duplicate)
	e.parts["hotels"].SetMode(testutil.Duplicate)
	e.parts["hotels"].SetPathMode(wire.PathCommit, testutil.Normal)
	eventually(t, "done", func() bool {
		e.clock.Advance(10 * time.Second) // past the COMMIT's backoff
		return e.status("dup-ack").Done
	})
	if st := e.status("dup-ack"); st.State != "committed" {
		t.Fatalf("dup-ack: %+v", st)
	}
}

// At low load nothing waits to be batched: one transaction at a time sends
// each message at once, in a request of its own.
func TestNoBatchingDelayAtLowLoad(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	e.start()
	for i := 0; i < 5; i++ {
		id := concord.TxID("alone-" + string(rune('a'+i)))
		if r := e.submit(wire.SubmitRequest{ID: id, Branches: branches("flights", "hotels")}); r.Outcome != concord.OutcomeCommitted {
			t.Fatalf("%+v", r)
		}
		eventually(t, "done", func() bool { return e.status(id).Done })
	}
	for _, p := range e.parts {
		for _, path := range []string{wire.PathPrepare, wire.PathCommit} {
			if p.Requests(path) != 5 || p.Count(path) != 5 {
				t.Fatalf("%s %s: %d messages in %d requests, want 5 in 5", p.Name, path, p.Count(path), p.Requests(path))
			}
		}
	}
}
