package main

import (
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/failpoint"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/travel"
)

// TestFailpointStore checks that the wrapper keeps the store's answers and
// its one-phase commit, and hits the failpoints exactly after a durable yes
// vote and a durable commit (armed far past the hits here, so nothing dies).
func TestFailpointStore(t *testing.T) {
	if err := failpoint.Arm([]failpoint.Term{
		{Name: failpoint.ParticipantAfterPrepareSync, Nth: 1 << 40},
		{Name: failpoint.ParticipantAfterCommit, Nth: 1 << 40},
	}, 1); err != nil {
		t.Fatal(err)
	}
	defer failpoint.Disarm()
	mem, err := travel.NewMemStore([]travel.Stock{{SKU: "A", Capacity: 3}})
	if err != nil {
		t.Fatal(err)
	}
	st := withFailpoints(mem)
	one, ok := st.(participant.OnePhaseResource)
	if !ok {
		t.Fatal("the wrapper hides the store's one-phase commit")
	}
	ctx := t.Context()
	if r, err := st.Prepare(ctx, "no", travel.Request{SKU: "B", Quantity: 1}.Payload(), participant.PrepareInfo{}); err != nil || r.Vote != concord.VoteNo {
		t.Fatalf("prepare no: %+v, %v", r, err)
	}
	if n := failpoint.Hits(failpoint.ParticipantAfterPrepareSync); n != 0 {
		t.Fatalf("a no vote hit the prepare failpoint %d times", n)
	}
	if r, err := st.Prepare(ctx, "yes", travel.Request{SKU: "A", Quantity: 1}.Payload(), participant.PrepareInfo{}); err != nil || r.Vote != concord.VoteYes {
		t.Fatalf("prepare yes: %+v, %v", r, err)
	}
	if err := st.Commit(ctx, "unknown"); err == nil {
		t.Fatal("commit of an unknown id succeeded")
	}
	if err := st.Commit(ctx, "yes"); err != nil {
		t.Fatal(err)
	}
	if out, _, err := one.CommitOnePhase(ctx, "one", travel.Request{SKU: "A", Quantity: 1}.Payload(), participant.PrepareInfo{}); err != nil || out != concord.OutcomeCommitted {
		t.Fatalf("one phase: %v, %v", out, err)
	}
	if p, c := failpoint.Hits(failpoint.ParticipantAfterPrepareSync), failpoint.Hits(failpoint.ParticipantAfterCommit); p != 1 || c != 2 {
		t.Fatalf("hits: after-prepare-sync %d, after-commit %d; want 1 and 2", p, c)
	}
	if items, _ := st.Items(ctx); items[0].Confirmed != 2 {
		t.Fatalf("items %+v", items)
	}
}

// TestFailpointBatchStore checks that the wrapper keeps the file store's
// batch calls, and hits the failpoints once per durable yes vote and
// durable commit (one-phase ones included) of a batch.
func TestFailpointBatchStore(t *testing.T) {
	if err := failpoint.Arm([]failpoint.Term{
		{Name: failpoint.ParticipantAfterPrepareSync, Nth: 1 << 40},
		{Name: failpoint.ParticipantAfterCommit, Nth: 1 << 40},
	}, 1); err != nil {
		t.Fatal(err)
	}
	defer failpoint.Disarm()
	fs, err := travel.OpenFileStore(travel.StoreConfig{Dir: t.TempDir(), Stock: []travel.Stock{{SKU: "A", Capacity: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	batch, ok := withFailpoints(fs).(participant.BatchResource)
	if !ok {
		t.Fatal("the wrapper hides the file store's batch calls")
	}
	ctx := t.Context()
	prep := []participant.PrepareCall{
		{ID: "y1", Payload: travel.Request{SKU: "A", Quantity: 1}.Payload()},
		{ID: "no", Payload: travel.Request{SKU: "B", Quantity: 1}.Payload()},
		{ID: "y2", Payload: travel.Request{SKU: "A", Quantity: 2}.Payload()},
	}
	batch.PrepareBatch(ctx, prep)
	for i, want := range []concord.Vote{concord.VoteYes, concord.VoteNo, concord.VoteYes} {
		if prep[i].Err != nil || prep[i].Result.Vote != want {
			t.Fatalf("prepare %s: %+v, %v; want %s", prep[i].ID, prep[i].Result, prep[i].Err, want)
		}
	}
	commit := []participant.CommitCall{{ID: "y1"}, {ID: "unknown"}, {ID: "y2"}}
	batch.CommitBatch(ctx, commit)
	if commit[0].Err != nil || commit[1].Err == nil || commit[2].Err != nil {
		t.Fatalf("commits: %+v", commit)
	}
	if p, c := failpoint.Hits(failpoint.ParticipantAfterPrepareSync), failpoint.Hits(failpoint.ParticipantAfterCommit); p != 2 || c != 2 {
		t.Fatalf("hits: after-prepare-sync %d, after-commit %d; want 2 and 2", p, c)
	}
	one, ok := batch.(participant.OnePhaseBatchResource)
	if !ok {
		t.Fatal("the wrapper hides the file store's one-phase batch calls")
	}
	onePhase := []participant.OnePhaseCall{
		{ID: "o1", Payload: travel.Request{SKU: "A", Quantity: 1}.Payload()},
		{ID: "o-no", Payload: travel.Request{SKU: "A", Quantity: 5}.Payload()},
	}
	one.CommitOnePhaseBatch(ctx, onePhase)
	if onePhase[0].Outcome != concord.OutcomeCommitted || onePhase[1].Outcome != concord.OutcomeAborted {
		t.Fatalf("one-phase commits: %+v", onePhase)
	}
	if c := failpoint.Hits(failpoint.ParticipantAfterCommit); c != 3 {
		t.Fatalf("hits: after-commit %d after a one-phase batch with one commit; want 3", c)
	}
}
