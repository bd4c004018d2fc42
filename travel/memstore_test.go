package travel

import (
	"errors"
	"strings"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
)

func TestMemStoreResourceContract(t *testing.T) {
	st, err := NewMemStore([]Stock{{"A", 5}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	prep := func(id concord.TxID, q int64) participant.PrepareResult {
		t.Helper()
		res, err := st.Prepare(ctx, id, Request{SKU: "A", Quantity: q}.Payload(), participant.PrepareInfo{})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := prep("big", 6); res.Vote != concord.VoteNo {
		t.Fatalf("over capacity: %+v", res)
	}
	// A refused id stays refused, even once it would fit.
	if res := prep("big", 1); res.Vote != concord.VoteNo {
		t.Fatalf("repeated prepare of a refused id: %+v", res)
	}
	// An abort before the prepare makes that late prepare a no.
	if err := st.Abort(ctx, "late"); err != nil {
		t.Fatal(err)
	}
	if res := prep("late", 1); res.Vote != concord.VoteNo {
		t.Fatalf("late prepare after abort: %+v", res)
	}
	if r, err := st.Reservation(ctx, "big"); err != nil || r.State != StateAborted || !strings.Contains(r.Reason, "not enough left") {
		t.Fatalf("refused reservation: %+v, %v", r, err)
	}
	if res := prep("ok", 2); res.Vote != concord.VoteYes {
		t.Fatalf("prepare: %+v", res)
	}
	ids, err := st.Recover(ctx)
	if err != nil || len(ids) != 1 || ids[0].ID != "ok" {
		t.Fatalf("recover: %v, %v", ids, err)
	}
	if err := st.Commit(ctx, "nobody"); !errors.Is(err, participant.ErrUnknownTx) {
		t.Fatalf("commit unknown: %v", err)
	}
	if err := st.Commit(ctx, "late"); !errors.Is(err, participant.ErrAlreadyDecided) {
		t.Fatalf("commit aborted: %v", err)
	}
	if err := st.Commit(ctx, "ok"); err != nil {
		t.Fatal(err)
	}
	if err := st.Abort(ctx, "ok"); !errors.Is(err, participant.ErrAlreadyDecided) {
		t.Fatalf("abort committed: %v", err)
	}
	out, reason, err := st.CommitOnePhase(ctx, "one", Request{SKU: "A", Quantity: 3}.Payload(), participant.PrepareInfo{})
	if err != nil || out != concord.OutcomeCommitted {
		t.Fatalf("one phase: %v %q %v", out, reason, err)
	}
	out, reason, err = st.CommitOnePhase(ctx, "two", Request{SKU: "A", Quantity: 1}.Payload(), participant.PrepareInfo{})
	if err != nil || out != concord.OutcomeAborted || !strings.Contains(reason, ErrNotEnough.Error()) {
		t.Fatalf("one phase sold out: %v %q %v", out, reason, err)
	}
	if got := st.Inventory().Items()[0]; got != (Item{"A", 5, 0, 0, 5}) {
		t.Fatalf("end state %+v", got)
	}
}
