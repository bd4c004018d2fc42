package filestore_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/filestore"
	"github.com/concordtx/concord/wal/memfs"
)

// A store holding transactions with ids made only of dots, accepted by a
// version from before they were refused, opens (from its log, and from a
// snapshot), lists them, and lets a participant.Server commit and abort
// them; only a new PREPARE of such an id is refused.
func TestDotIDsFromAnOlderVersionStillServed(t *testing.T) {
	fs := memfs.New()
	open := func() *filestore.Store {
		t.Helper()
		s, err := filestore.Open(filestore.Options{Dir: "/data", FS: fs, Machine: newCounter(10)})
		if err != nil {
			t.Fatalf("open a store holding ids made only of dots: %v", err)
		}
		return s
	}
	ctx := context.Background()
	s := open()
	restore := filestore.AsOlderVersion()
	for _, id := range []concord.TxID{".", "..", "..."} {
		if r := prepare(t, s, id, 1); r.Vote != concord.VoteYes {
			t.Fatalf("%q: vote %s", id, r.Vote)
		}
	}
	if err := s.Commit(ctx, ".."); err != nil {
		t.Fatal(err)
	}
	restore()
	if _, err := s.Prepare(ctx, "....", takePayload(1), participant.PrepareInfo{}); !errors.Is(err, concord.ErrBadTxID) {
		t.Fatalf("a new PREPARE of an id made only of dots = %v; want ErrBadTxID", err)
	}
	recovered := func(s *filestore.Store) []concord.TxID {
		t.Helper()
		txs, err := s.Recover(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []concord.TxID
		for _, tx := range txs {
			ids = append(ids, tx.ID)
		}
		slices.Sort(ids)
		return ids
	}

	s.Close()
	s = open() // from the log
	if got := recovered(s); !slices.Equal(got, []concord.TxID{".", "..."}) {
		t.Fatalf("recovered from the log %q; want . and ...", got)
	}
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open() // from the snapshot
	defer s.Close()
	if got := recovered(s); !slices.Equal(got, []concord.TxID{".", "..."}) {
		t.Fatalf("recovered from a snapshot %q; want . and ...", got)
	}

	srv, err := participant.NewServer(participant.Options{Resource: s})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if dec, err := srv.Commit(ctx, []concord.TxID{"."}); err != nil || !slices.Equal(dec.Acknowledged, []concord.TxID{"."}) {
		t.Fatalf("COMMIT of the prepared . = %+v, %v; want acknowledged", dec, err)
	}
	if dec, err := srv.Abort(ctx, []concord.TxID{"..."}); err != nil || !slices.Equal(dec.Acknowledged, []concord.TxID{"..."}) {
		t.Fatalf("ABORT of the prepared ... = %+v, %v; want acknowledged", dec, err)
	}
	if dec, err := srv.Abort(ctx, []concord.TxID{".."}); err != nil || len(dec.Failed) != 1 || dec.Failed[0].Outcome != concord.OutcomeCommitted {
		t.Fatalf("ABORT of the committed .. = %+v, %v; want a failure with outcome committed", dec, err)
	}
	if got := recovered(s); len(got) != 0 {
		t.Fatalf("still prepared: %q", got)
	}
}
