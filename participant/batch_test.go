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

// batching makes a Resource a BatchResource that loops over the single
// calls, and records the size of every batch call and the single calls the
// server made itself.
type batching struct {
	participant.Resource
	mu       sync.Mutex
	prepares []int // sizes of the PrepareBatch calls
	commits  []int // sizes of the CommitBatch calls
	single   int   // Prepare and Commit calls not made through a batch
	inBatch  bool
}

func (b *batching) Prepare(ctx context.Context, id concord.TxID, payload json.RawMessage) (participant.PrepareResult, error) {
	b.count()
	return b.Resource.Prepare(ctx, id, payload)
}

func (b *batching) Commit(ctx context.Context, id concord.TxID) error {
	b.count()
	return b.Resource.Commit(ctx, id)
}

func (b *batching) count() {
	b.mu.Lock()
	if !b.inBatch {
		b.single++
	}
	b.mu.Unlock()
}

func (b *batching) PrepareBatch(ctx context.Context, calls []participant.PrepareCall) {
	b.mu.Lock()
	b.prepares = append(b.prepares, len(calls))
	b.inBatch = true
	b.mu.Unlock()
	for i := range calls {
		calls[i].Result, calls[i].Err = b.Resource.Prepare(ctx, calls[i].ID, calls[i].Payload)
	}
	b.mu.Lock()
	b.inBatch = false
	b.mu.Unlock()
}

func (b *batching) CommitBatch(ctx context.Context, calls []participant.CommitCall) {
	b.mu.Lock()
	b.commits = append(b.commits, len(calls))
	b.inBatch = true
	b.mu.Unlock()
	for i := range calls {
		calls[i].Err = b.Resource.Commit(ctx, calls[i].ID)
	}
	b.mu.Lock()
	b.inBatch = false
	b.mu.Unlock()
}

// TestServerBatchesCalls checks that over a BatchResource the prepares of
// one request are one PrepareBatch call and its commits one CommitBatch
// call, with every vote and acknowledgement as from single calls, while an
// abort still goes through Abort.
func TestServerBatchesCalls(t *testing.T) {
	mem := participanttest.NewMemResource()
	res := &batching{Resource: mem}
	srv, err := participant.NewServer(participant.Options{Resource: res, Clock: participanttest.NewFakeClock(time.Unix(0, 0))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
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
