package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/tpc"
	"github.com/concordtx/concord/travel"
	"github.com/concordtx/concord/wal"
)

// The dump decodes the records Concord writes: a coordinator's decisions and
// a file store's reservations are shown as such, not as bytes.
func TestLogDumpDescribesConcordRecords(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "coordinator")
	l, err := wal.Open(wal.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []tpc.Record{
		{Type: tpc.RecBegin, TxID: "trip-1", Participants: []string{"flights", "hotels"}},
		{Type: tpc.RecCommit, TxID: "trip-1", Participants: []string{"flights", "hotels"},
			Votes: []concord.Vote{concord.VoteYes, concord.VoteReadOnly}, Outcome: concord.OutcomeCommitted},
		{Type: tpc.RecEnd, TxID: "trip-1", Outcome: concord.OutcomeCommitted},
	} {
		b, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(uint8(r.Type), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd("log", "dump", dir)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	for _, want := range []string{
		"begin trip-1 participants flights,hotels",
		"commit trip-1 votes flights=yes,hotels=read-only outcome committed",
		"end trip-1 outcome committed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	_, out, _ = runCmd("log", "dump", "--json", dir)
	var first dumpRecord
	if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &first); err != nil || first.Record != "begin trip-1 participants flights,hotels" {
		t.Errorf("--json first line %q decodes to %+v (%v)", out, first, err)
	}

	// A participant's file store, written through its own API.
	sdir := filepath.Join(t.TempDir(), "flights")
	st, err := travel.OpenFileStore(travel.StoreConfig{Service: travel.Flights, Dir: sdir,
		Stock: []travel.Stock{{SKU: "FL100", Capacity: 10}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if res, err := st.Prepare(ctx, "trip-2", travel.Request{SKU: "FL100", Quantity: 2}.Payload(), participant.PrepareInfo{}); err != nil || res.Vote != concord.VoteYes {
		t.Fatalf("prepare: %+v %v", res, err)
	}
	if err := st.Commit(ctx, "trip-2"); err != nil {
		t.Fatal(err)
	}
	if res, err := st.Prepare(ctx, "trip-3", travel.Request{SKU: "FL100", Quantity: 99}.Payload(), participant.PrepareInfo{}); err != nil || res.Vote != concord.VoteNo {
		t.Fatalf("prepare: %+v %v", res, err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCmd("log", "dump", filepath.Join(sdir, "store", "wal"))
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	for _, want := range []string{
		`prepared trip-2 payload {"sku":"FL100","quantity":2}`,
		"commit trip-2",
		"abort trip-3 reason",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
