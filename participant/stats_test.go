package participant_test

import (
	"context"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/participanttest"
	"github.com/concordtx/concord/wire"
)

// Status counts HTTP requests (batches) apart from the transactions they
// carry, so that a benchmark can tell how well the coordinator batches.
func TestStatusCountsRequestsAndTransactions(t *testing.T) {
	srv, pc := startServer(t, participant.Options{Resource: participanttest.NewMemResource()})
	ctx := context.Background()
	ids := []concord.TxID{"tx-1", "tx-2", "tx-3"}
	req := wire.PrepareRequest{Coordinator: "http://127.0.0.1:1"}
	for _, id := range ids {
		req.Transactions = append(req.Transactions, wire.PrepareTx{ID: id})
	}
	if _, err := pc.Prepare(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.Commit(ctx, ids[:2]); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.Abort(ctx, ids[2:]); err != nil {
		t.Fatal(err)
	}
	st := srv.Status()
	if st.PrepareRequests != 1 || st.CommitRequests != 1 || st.AbortRequests != 1 {
		t.Errorf("requests prepare/commit/abort = %d/%d/%d, want 1/1/1", st.PrepareRequests, st.CommitRequests, st.AbortRequests)
	}
	if st.Prepares != 3 || st.Commits != 2 || st.Aborts != 1 {
		t.Errorf("transactions prepare/commit/abort = %d/%d/%d, want 3/2/1", st.Prepares, st.Commits, st.Aborts)
	}
	// A refused request counts as none.
	if _, err := pc.Prepare(ctx, wire.PrepareRequest{}); err == nil {
		t.Fatal("empty batch accepted")
	}
	if got := srv.Status().PrepareRequests; got != 1 {
		t.Errorf("prepare requests after a refused one = %d, want 1", got)
	}
}
