package coordinator_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/coordinator"
	"github.com/concordtx/concord/wire"
)

// GET /v1/stats reports the counters a benchmark reads: one committed
// two-participant transaction costs requests to both participants and at
// least one log sync (its decision), and the runtime figures are there.
func TestStatsEndpoint(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	e.start()
	read := func() coordinator.StatsResponse {
		t.Helper()
		code, body := e.get(wire.PathStats)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", wire.PathStats, code, body)
		}
		var s coordinator.StatsResponse
		if err := json.Unmarshal(body, &s); err != nil {
			t.Fatalf("decode %s: %v", body, err)
		}
		return s
	}
	before := read()
	if r := e.submit(wire.SubmitRequest{Branches: branches("flights", "hotels")}); r.Outcome != concord.OutcomeCommitted {
		t.Fatalf("outcome %s: %s", r.Outcome, r.Reason)
	}
	after := read()
	if got := after.Committed - before.Committed; got != 1 {
		t.Errorf("committed went up by %d, want 1", got)
	}
	if got := after.Requests - before.Requests; got < 2 {
		t.Errorf("requests went up by %d, want at least the 2 prepares", got)
	}
	if after.Log.Syncs <= before.Log.Syncs {
		t.Errorf("log syncs %d -> %d: the commit decision was not synced", before.Log.Syncs, after.Log.Syncs)
	}
	if after.Runtime.Goroutines == 0 || after.Runtime.HeapAllocBytes == 0 {
		t.Errorf("runtime figures missing: %+v", after.Runtime)
	}
	if code, _ := e.post(wire.PathStats, "{}"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST %s: %d, want 405", wire.PathStats, code)
	}
}
