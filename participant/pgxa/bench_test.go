package pgxa_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
)

// BenchmarkPrepareCommit measures one participant's share of a two-phase
// commit on PostgreSQL: Prepare (work, PREPARE TRANSACTION) then COMMIT
// PREPARED, each transaction on its own row, from 4×GOMAXPROCS goroutines.
func BenchmarkPrepareCommit(b *testing.B) {
	e := newEnv(b)
	r, _ := e.open(b, "bench", 0)
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			id := concord.TxID(fmt.Sprintf("b-%d", i))
			res, err := r.Prepare(ctx, id, op{K: fmt.Sprintf("k%d", i), Add: 1}.payload(), participant.PrepareInfo{})
			if err != nil || res.Vote != concord.VoteYes {
				b.Errorf("prepare: %v %v", res, err)
				return
			}
			if err := r.Commit(ctx, id); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
