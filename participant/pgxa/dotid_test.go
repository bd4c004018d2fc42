package pgxa_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/pgxa"
)

// Transactions with ids made only of dots, prepared by a version from
// before they were refused, are listed by Recover after a crash and can be
// committed and aborted; only a new PREPARE of such an id is refused.
func TestDotIDsFromAnOlderVersionStillServed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r, pool := e.open(t, "dots", 0)
	info := participant.PrepareInfo{Deadline: time.Now().Add(time.Minute)}
	restore := pgxa.AsOlderVersion()
	for i, id := range []concord.TxID{".", ".."} {
		got, err := r.Prepare(ctx, id, op{K: "k" + string(rune('a'+i)), Add: 1}.payload(), info)
		if err != nil || got.Vote != concord.VoteYes {
			restore()
			t.Fatalf("prepare %q as an older version = %+v, %v", id, got, err)
		}
	}
	restore()
	if _, err := r.Prepare(ctx, "...", op{K: "kc", Add: 1}.payload(), info); !errors.Is(err, concord.ErrBadTxID) {
		t.Fatalf("a new PREPARE of an id made only of dots = %v; want ErrBadTxID", err)
	}
	pool.Close() // a crash: the prepared transactions stay
	r, _ = e.open(t, "dots", 0)
	txs, err := r.Recover(ctx)
	if err != nil {
		t.Fatalf("Recover with ids made only of dots prepared: %v", err)
	}
	var ids []concord.TxID
	for _, tx := range txs {
		ids = append(ids, tx.ID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []concord.TxID{".", ".."}) {
		t.Fatalf("recovered %q; want . and ..", ids)
	}
	if err := r.Commit(ctx, "."); err != nil {
		t.Fatalf("Commit of the prepared .: %v", err)
	}
	if err := r.Abort(ctx, ".."); err != nil {
		t.Fatalf("Abort of the prepared ..: %v", err)
	}
	if txs, err := r.Recover(ctx); err != nil || len(txs) != 0 {
		t.Fatalf("after commit and abort Recover = %+v, %v", txs, err)
	}
}
