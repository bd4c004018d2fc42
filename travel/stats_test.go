package travel

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/wire"
)

// GET /v1/stats reports requests apart from transactions and, for the file
// store, the log's fsyncs: a prepare and a commit are each durable, so each
// costs at least one sync.
func TestServiceStats(t *testing.T) {
	st, err := OpenFileStore(StoreConfig{Service: Cars, Dir: t.TempDir(), Stock: []Stock{{"C-ECON", 10}}})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Options{Name: Cars, Store: st, Server: participant.Options{Coordinator: "http://127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	defer svc.Close()
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	stats := func() StatsResponse {
		t.Helper()
		code, body := get(t, srv.URL+wire.PathStats)
		if code != 200 {
			t.Fatalf("stats: %d %s", code, body)
		}
		var s StatsResponse
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			t.Fatalf("stats: %v in %s", err, body)
		}
		return s
	}
	before := stats()
	if before.Log == nil || before.Runtime.Goroutines == 0 {
		t.Fatalf("stats lack the log or runtime figures: %+v", before)
	}
	pc := &wire.ParticipantClient{BaseURL: srv.URL}
	req := wire.PrepareRequest{Transactions: []wire.PrepareTx{
		{ID: "t1", Payload: Request{SKU: "C-ECON", Quantity: 1}.Payload()},
		{ID: "t2", Payload: Request{SKU: "C-ECON", Quantity: 1}.Payload()},
	}}
	if _, err := pc.Prepare(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	syncsAfterPrepare := stats().Log.Syncs
	if syncsAfterPrepare <= before.Log.Syncs {
		t.Fatalf("syncs %d after a yes vote, %d before: the prepare was not synced", syncsAfterPrepare, before.Log.Syncs)
	}
	if _, err := pc.Commit(t.Context(), []concord.TxID{"t1", "t2"}); err != nil {
		t.Fatal(err)
	}
	after := stats()
	if after.Log.Syncs <= syncsAfterPrepare {
		t.Fatalf("syncs %d after the commit, %d before", after.Log.Syncs, syncsAfterPrepare)
	}
	if after.Server.PrepareRequests != 1 || after.Server.Prepares != 2 || after.Server.CommitRequests != 1 {
		t.Fatalf("server counters %+v, want 1 prepare request of 2 transactions and 1 commit request", after.Server)
	}
	if code, _ := get(t, srv.URL+wire.PathStats+"x"); code != 404 {
		t.Fatalf("unknown path: %d", code)
	}
}

// wrapped is a store that adds behaviour around another's calls.
type wrapped struct{ Store }

func (w wrapped) Unwrap() Store { return w.Store }

// A wrapper with Unwrap does not hide the log counters of the file store
// inside; a store not on a log has none.
func TestStoreLogStatsThroughWrappers(t *testing.T) {
	st, err := OpenFileStore(StoreConfig{Service: Cars, Dir: t.TempDir(), Stock: []Stock{{"C-ECON", 10}}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, ok := StoreLogStats(wrapped{wrapped{st}}); !ok {
		t.Fatal("no log counters through two wrappers")
	}
	mem, err := NewMemStore([]Stock{{"C-ECON", 1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := StoreLogStats(wrapped{mem}); ok {
		t.Fatal("a memory store reports log counters")
	}
}
