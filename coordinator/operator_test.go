package coordinator_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/testutil"
	"github.com/concordtx/concord/wire"
)

// The operator's re-drive sends a pending COMMIT at once, without waiting
// for the backoff; it is refused for unknown or finished transactions.
func TestOperatorRetry(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	e.opts.RetryMin, e.opts.RetryMax = time.Hour, time.Hour // no retry unless asked
	e.parts["hotels"].SetPathMode(wire.PathCommit, testutil.Down)
	e.start()
	e.submit(wire.SubmitRequest{ID: "redrive", Branches: branches("flights", "hotels")})
	eventually(t, "hotels' failed COMMIT", func() bool { return e.status("redrive").Branches[1].LastError != "" })
	e.parts["hotels"].SetPathMode(wire.PathCommit, testutil.Normal)
	code, body := e.post(wire.TransactionPath("redrive")+"/retry", "")
	if code != http.StatusOK {
		t.Fatalf("retry: %d %s", code, body)
	}
	eventually(t, "the re-driven COMMIT acknowledged", func() bool { return e.status("redrive").Done })
	if code, _ := e.post(wire.TransactionPath("redrive")+"/retry", ""); code != http.StatusNotFound {
		t.Fatalf("retry of a finished transaction: %d, want 404", code)
	}
	if code, _ := e.post(wire.TransactionPath("nobody")+"/retry", ""); code != http.StatusNotFound {
		t.Fatalf("retry of an unknown transaction: %d, want 404", code)
	}
	if code, _ := e.get(wire.TransactionPath("redrive") + "/retry"); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET retry: %d, want 405", code)
	}
}

// The operator may abort a transaction still preparing, never a decided one.
func TestOperatorAbort(t *testing.T) {
	e := newEnv(t, "flights", "hotels", "cars")
	seen := make(chan testutil.Seen, 16)
	e.parts["cars"].Notify(seen)
	e.parts["cars"].SetPathMode(wire.PathPrepare, testutil.Silent)
	e.parts["hotels"].SetPathMode(wire.PathCommit, testutil.Down)
	e.start()
	res := e.submitAsync(wire.SubmitRequest{ID: "stalled", TimeoutMS: 60000, Branches: branches("flights", "cars")})
	waitSeen(t, seen, wire.PathPrepare)
	code, body := e.post(wire.TransactionPath("stalled")+"/abort", "")
	var st wire.TxStatus
	if code != http.StatusOK || json.Unmarshal(body, &st) != nil || st.State != "aborted" {
		t.Fatalf("abort: %d %s", code, body)
	}
	r := <-res
	if r.err != nil || r.resp.Outcome != concord.OutcomeAborted || !strings.Contains(r.resp.Reason, "operator abort") {
		t.Fatalf("client got %+v %v", r.resp, r.err)
	}
	e.submit(wire.SubmitRequest{ID: "decided", Branches: branches("flights", "hotels")})
	code, body = e.post(wire.TransactionPath("decided")+"/abort", "")
	if code != http.StatusConflict || !strings.Contains(string(body), "already decided") {
		t.Fatalf("abort of a commit: %d %s, want 409", code, body)
	}
	if st := e.status("decided"); st.State != "committed" {
		t.Fatalf("after a refused abort: %+v", st)
	}
}
