package coordinator_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/wal/memfs"
	"github.com/concordtx/concord/wire"
)

// When the sync of a commit decision fails, the decision is not durable:
// the client is not told "committed", no COMMIT leaves, the in-doubt
// endpoint does not answer, and the coordinator stops working (the log is
// poisoned) rather than carry on. A restart on what the disk kept then
// aborts the transaction, and the participants are told so.
func TestFailedSyncStopsTheCoordinator(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	e.start()
	e.fs.FailNth(memfs.OpSync, 1, errors.New("disk on fire"))
	b := `{"id":"unlucky","branches":[{"participant":"flights"},{"participant":"hotels"}]}`
	code, body := e.post(wire.PathTransactions, b)
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "disk on fire") {
		t.Fatalf("status %d %s, want 503 naming the failure", code, body)
	}
	for _, p := range e.parts {
		if n := p.Count(wire.PathCommit); n != 0 {
			t.Fatalf("%s got a COMMIT that was never durable", p.Name)
		}
	}
	if code, _ := e.get(wire.OutcomePath("unlucky")); code != http.StatusServiceUnavailable {
		t.Fatalf("outcome endpoint answered %d on a failed log", code)
	}
	if code, _ := e.get(wire.PathHealth); code != http.StatusServiceUnavailable {
		t.Fatalf("healthz %d on a failed log", code)
	}
	if code, _ := e.post(wire.PathTransactions, `{"branches":[{"participant":"flights"}]}`); code != http.StatusServiceUnavailable {
		t.Fatalf("a halted coordinator took a new transaction: %d", code)
	}
	e.restart()
	eventually(t, "the participants told to abort", func() bool {
		for _, p := range e.parts {
			if s := p.State("unlucky"); s != "aborted" {
				if s != "prepared" {
					return false
				}
				if e.outcome("unlucky") != concord.OutcomeAborted {
					return false
				}
				p.SetState("unlucky", "aborted")
			}
		}
		return true
	})
}
