package participant_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/participanttest"
	"github.com/concordtx/concord/wire"
)

// batching makes a OnePhaseResource a BatchResource and
// OnePhaseBatchResource that loops over the single calls, and records the
// size of every batch call and the single calls the server made itself.
type batching struct {
	participant.OnePhaseResource
	mu       sync.Mutex
	prepares []int // sizes of the PrepareBatch calls
	commits  []int // sizes of the CommitBatch calls
	onePhase []int // sizes of the CommitOnePhaseBatch calls
	single   int   // Prepare, Commit and CommitOnePhase calls not made through a batch
	inBatch  bool
}

func (b *batching) Prepare(ctx context.Context, id concord.TxID, payload json.RawMessage, info participant.PrepareInfo) (participant.PrepareResult, error) {
	b.count()
	return b.OnePhaseResource.Prepare(ctx, id, payload, info)
}

func (b *batching) Commit(ctx context.Context, id concord.TxID) error {
	b.count()
	return b.OnePhaseResource.Commit(ctx, id)
}

func (b *batching) CommitOnePhase(ctx context.Context, id concord.TxID, payload json.RawMessage, info participant.PrepareInfo) (concord.Outcome, string, error) {
	b.count()
	return b.OnePhaseResource.CommitOnePhase(ctx, id, payload, info)
}

func (b *batching) count() {
	b.mu.Lock()
	if !b.inBatch {
		b.single++
	}
	b.mu.Unlock()
}

// batchCall records a batch call of n calls in sizes and runs fn, whose
// single calls are then not counted as the server's own.
func (b *batching) batchCall(sizes *[]int, n int, fn func()) {
	b.mu.Lock()
	*sizes = append(*sizes, n)
	b.inBatch = true
	b.mu.Unlock()
	fn()
	b.mu.Lock()
	b.inBatch = false
	b.mu.Unlock()
}

func (b *batching) PrepareBatch(ctx context.Context, calls []participant.PrepareCall) {
	b.batchCall(&b.prepares, len(calls), func() {
		for i := range calls {
			calls[i].Result, calls[i].Err = b.OnePhaseResource.Prepare(ctx, calls[i].ID, calls[i].Payload, calls[i].Info)
		}
	})
}

func (b *batching) CommitBatch(ctx context.Context, calls []participant.CommitCall) {
	b.batchCall(&b.commits, len(calls), func() {
		for i := range calls {
			calls[i].Err = b.OnePhaseResource.Commit(ctx, calls[i].ID)
		}
	})
}

func (b *batching) CommitOnePhaseBatch(ctx context.Context, calls []participant.OnePhaseCall) {
	b.batchCall(&b.onePhase, len(calls), func() {
		for i := range calls {
			c := &calls[i]
			c.Outcome, c.Reason, c.Err = b.OnePhaseResource.CommitOnePhase(ctx, c.ID, c.Payload, c.Info)
		}
	})
}

// startBatching starts a server over a batching in-memory resource, closed
// when the test ends.
func startBatching(t *testing.T) (*participant.Server, *batching) {
	t.Helper()
	res := &batching{OnePhaseResource: participanttest.NewMemResource()}
	srv, err := participant.NewServer(participant.Options{Resource: res, Clock: participanttest.NewFakeClock(time.Unix(0, 0))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return srv, res
}

// TestServerBatchesCalls checks that over a BatchResource the prepares of
// one request are one PrepareBatch call and its commits one CommitBatch
// call, with every vote and acknowledgement as from single calls, while an
// abort still goes through Abort.
func TestServerBatchesCalls(t *testing.T) {
	srv, res := startBatching(t)
	ctx := context.Background()
	var txs []wire.PrepareTx
	var ids []concord.TxID
	for i := range 5 {
		id := concord.TxID(fmt.Sprintf("b%d", i))
		ids = append(ids, id)
		txs = append(txs, wire.PrepareTx{ID: id, Payload: participanttest.YesPayload(i)})
	}
	txs = append(txs, wire.PrepareTx{ID: "no", Payload: participanttest.NoPayload(9)})
	prep, err := srv.Prepare(ctx, wire.PrepareRequest{Transactions: txs})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range prep.Votes {
		want := concord.VoteYes
		if i == 5 {
			want = concord.VoteNo
		}
		if v.ID != txs[i].ID || v.Vote != want {
			t.Fatalf("vote %d = %+v, want %s for %s", i, v, want, txs[i].ID)
		}
	}
	dec, err := srv.Commit(ctx, ids[:4])
	if err != nil || len(dec.Acknowledged) != 4 {
		t.Fatalf("commit = %+v, %v", dec, err)
	}
	if dec, err := srv.Abort(ctx, ids[4:]); err != nil || len(dec.Acknowledged) != 1 {
		t.Fatalf("abort = %+v, %v", dec, err)
	}
	res.mu.Lock()
	defer res.mu.Unlock()
	if fmt.Sprint(res.prepares) != "[6]" || fmt.Sprint(res.commits) != "[4]" || res.single != 0 {
		t.Fatalf("batch calls: prepares %v, commits %v, single calls %d; want [6], [4], 0", res.prepares, res.commits, res.single)
	}
}

// TestServerBatchesOnePhaseCalls checks that over a OnePhaseBatchResource
// the one-phase commits of one request are one CommitOnePhaseBatch call,
// each answered with its outcome, and that a two-phase prepare in the same
// request still goes through PrepareBatch.
func TestServerBatchesOnePhaseCalls(t *testing.T) {
	srv, res := startBatching(t)
	ctx := context.Background()
	txs := []wire.PrepareTx{
		{ID: "one-a", Payload: participanttest.YesPayload(1), OnePhase: true},
		{ID: "two", Payload: participanttest.YesPayload(2)},
		{ID: "one-no", Payload: participanttest.NoPayload(3), OnePhase: true},
		{ID: "one-b", Payload: participanttest.YesPayload(4), OnePhase: true},
	}
	prep, err := srv.Prepare(ctx, wire.PrepareRequest{Transactions: txs})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		vote    concord.Vote
		outcome concord.Outcome
	}{{concord.VoteYes, concord.OutcomeCommitted}, {concord.VoteYes, concord.OutcomePending}, {concord.VoteNo, concord.OutcomeAborted}, {concord.VoteYes, concord.OutcomeCommitted}}
	for i, v := range prep.Votes {
		if v.ID != txs[i].ID || v.Vote != want[i].vote || v.Outcome != want[i].outcome {
			t.Fatalf("vote %d = %+v, want %s %s for %s", i, v, want[i].vote, want[i].outcome, txs[i].ID)
		}
	}
	res.mu.Lock()
	defer res.mu.Unlock()
	if fmt.Sprint(res.onePhase) != "[3]" || fmt.Sprint(res.prepares) != "[1]" || res.single != 0 {
		t.Fatalf("batch calls: one-phase %v, prepares %v, single calls %d; want [3], [1], 0", res.onePhase, res.prepares, res.single)
	}
}
