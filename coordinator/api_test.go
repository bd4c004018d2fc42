package coordinator_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/testutil"
	"github.com/concordtx/concord/wire"
)

// Every malformed submission is refused with a status and a message that
// names the problem, and runs nothing.
func TestSubmitBadRequests(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	e.opts.MaxBranches = 2
	e.opts.MaxBodyBytes = 4096
	e.start()
	big := `{"branches":[{"participant":"flights","payload":{"pad":"` + strings.Repeat("x", 5000) + `"}}]}`
	cases := []struct {
		name, body string
		code       int
		want       string
	}{
		{"malformed JSON", `{"branches":[`, 400, "malformed JSON"},
		{"not JSON", `hello`, 400, "malformed JSON"},
		{"empty body", ``, 400, "empty body"},
		{"unknown field", `{"branches":[{"participant":"flights"}],"colour":"red"}`, 400, "colour"},
		{"trailing data", `{"branches":[{"participant":"flights"}]} {}`, 400, "after the JSON value"},
		{"no branches", `{"branches":[]}`, 400, "no branches"},
		{"branches missing", `{"id":"a"}`, 400, "no branches"},
		{"too many branches", `{"branches":[{"participant":"flights"},{"participant":"hotels"},{"participant":"cars"}]}`, 400, "3 branches, at most 2"},
		{"unknown participant", `{"branches":[{"participant":"trains"}]}`, 400, `unknown participant "trains"`},
		{"empty participant", `{"branches":[{"participant":""}]}`, 400, "participant is empty"},
		{"duplicate participant", `{"branches":[{"participant":"flights"},{"participant":"flights"}]}`, 400, `"flights" appears twice`},
		{"bad id", `{"id":"a b","branches":[{"participant":"flights"}]}`, 400, "bad transaction id"},
		{"long id", `{"id":"` + strings.Repeat("a", 65) + `","branches":[{"participant":"flights"}]}`, 400, "at most 64"},
		{"negative timeout", `{"timeout_ms":-1,"branches":[{"participant":"flights"}]}`, 400, "timeout_ms -1 is negative"},
		{"timeout too long", `{"timeout_ms":60001,"branches":[{"participant":"flights"}]}`, 400, "above the maximum 60000"},
		{"timeout not a number", `{"timeout_ms":"soon","branches":[{"participant":"flights"}]}`, 400, "malformed JSON"},
		{"oversized body", big, 413, "too large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := e.post(wire.PathTransactions, tc.body)
			if code != tc.code {
				t.Fatalf("status %d, want %d: %s", code, tc.code, body)
			}
			var er wire.ErrorResponse
			if err := json.Unmarshal(body, &er); err != nil || !strings.Contains(er.Error, tc.want) {
				t.Fatalf("error %q does not say %q", body, tc.want)
			}
		})
	}
	for _, p := range e.parts {
		if n := p.Count(wire.PathPrepare); n != 0 {
			t.Fatalf("%s got %d PREPAREs from refused requests", p.Name, n)
		}
	}
	if s := e.c.Stats(); s.Submitted != 0 || s.LogAppends != 0 {
		t.Fatalf("refused requests were admitted or logged: %+v", s)
	}
}

// Wrong methods get 405 with Allow; unknown paths and ids 404; bad ids and
// filters 400.
func TestMethodsAndPaths(t *testing.T) {
	e := newEnv(t, "flights")
	e.start()
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{http.MethodPut, wire.PathTransactions, 405},
		{http.MethodDelete, wire.PathTransactions, 405},
		{http.MethodPost, wire.TransactionPath("x1"), 405},
		{http.MethodPost, wire.OutcomePath("x1"), 405},
		{http.MethodPost, wire.PathHealth, 405},
		{http.MethodGet, wire.TransactionPath("nope"), 404},
		{http.MethodGet, wire.TransactionPath("bad%20id"), 400},
		{http.MethodGet, wire.OutcomePath("bad%20id"), 400},
		{http.MethodGet, "/v2/other", 404},
		{http.MethodGet, wire.PathTransactions + "?state=weird", 400},
		{http.MethodGet, wire.PathTransactions + "?limit=0", 400},
		{http.MethodGet, wire.PathTransactions + "?limit=many", 400},
		{http.MethodGet, wire.PathHealth, 200},
		{http.MethodGet, wire.PathTransactions + "?state=all&limit=5", 200},
	} {
		req, _ := http.NewRequest(tc.method, e.url+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var er wire.ErrorResponse
		json.NewDecoder(resp.Body).Decode(&er)
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, resp.StatusCode, tc.code)
		}
		if tc.code == 405 && resp.Header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", tc.method, tc.path)
		}
		if tc.code >= 400 && er.Error == "" {
			t.Errorf("%s %s: no error message", tc.method, tc.path)
		}
	}
	// A transaction the coordinator never heard of is aborted (presumed abort).
	if o := e.outcome("never-heard-of"); o != concord.OutcomeAborted {
		t.Fatalf("unknown transaction outcome %v, want aborted", o)
	}
}

// The same id with the same body runs once and answers the same; with a
// different body it is a conflict; without an id one is generated.
func TestIdempotentSubmit(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	e.start()
	req := wire.SubmitRequest{ID: "trip-idem", Branches: branches("flights", "hotels")}
	first := e.submit(req)
	// The same body with other whitespace in the payload is the same request.
	req2 := req
	req2.Branches = []wire.Branch{
		{Participant: "flights", Payload: json.RawMessage(`{ "sku": "flights-1",  "quantity": 1 }`)},
		{Participant: "hotels", Payload: json.RawMessage(`{"sku":"hotels-1","quantity":1}`)},
	}
	second := e.submit(req2)
	if first.Outcome != concord.OutcomeCommitted || second.Outcome != first.Outcome || second.ID != first.ID {
		t.Fatalf("first %+v, second %+v", first, second)
	}
	for _, p := range e.parts {
		if n := p.Count(wire.PathPrepare); n != 1 {
			t.Fatalf("%s prepared %d times, want 1", p.Name, n)
		}
	}
	other := req
	other.Branches = branches("flights")
	b, _ := json.Marshal(other)
	if code, body := e.post(wire.PathTransactions, string(b)); code != http.StatusConflict {
		t.Fatalf("different body: status %d, want 409: %s", code, body)
	}
	// timeout_ms is not part of what makes a request (docs/protocol.md):
	// another one gets the first answer, and nothing runs again.
	other = req
	other.TimeoutMS = 3000
	if r := e.submit(other); r.Outcome != first.Outcome {
		t.Fatalf("different timeout: %+v, the first answer %+v", r, first)
	}
	for _, p := range e.parts {
		if n := p.Count(wire.PathPrepare); n != 1 {
			t.Fatalf("%s prepared %d times after a different timeout, want 1", p.Name, n)
		}
	}
	gen := e.submit(wire.SubmitRequest{Branches: branches("flights")})
	if err := concord.ValidateTxID(gen.ID); err != nil || gen.Outcome != concord.OutcomeCommitted {
		t.Fatalf("generated id %q (%v), outcome %v", gen.ID, err, gen.Outcome)
	}
}

// A resubmission while the first is still running waits for the same
// outcome and starts nothing new.
func TestIdempotentSubmitWhileRunning(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	seen := make(chan testutil.Seen, 16)
	e.parts["hotels"].Notify(seen)
	e.parts["hotels"].SetPathMode(wire.PathPrepare, testutil.Slow)
	e.start()
	req := wire.SubmitRequest{ID: "trip-twice", Branches: branches("flights", "hotels")}
	a := e.submitAsync(req)
	waitSeen(t, seen, wire.PathPrepare)
	b := e.submitAsync(req)
	eventually(t, "the second caller waiting", func() bool { return e.c.Stats().Submitted == 1 && len(b) == 0 })
	other := req
	other.Branches = branches("flights")
	body, _ := json.Marshal(other)
	if code, _ := e.post(wire.PathTransactions, string(body)); code != http.StatusConflict {
		t.Fatalf("different body while running: status %d, want 409", code)
	}
	e.parts["hotels"].Release()
	ra, rb := <-a, <-b
	if ra.err != nil || rb.err != nil {
		t.Fatal(ra.err, rb.err)
	}
	if ra.resp.Outcome != concord.OutcomeCommitted || rb.resp.Outcome != ra.resp.Outcome {
		t.Fatalf("outcomes %v and %v", ra.resp.Outcome, rb.resp.Outcome)
	}
	if n := e.parts["hotels"].Count(wire.PathPrepare); n != 1 {
		t.Fatalf("hotels prepared %d times", n)
	}
	if s := e.c.Stats(); s.Submitted != 1 {
		t.Fatalf("%d transactions admitted, want 1", s.Submitted)
	}
}

// The list endpoint filters by state and bounds its answer.
func TestList(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	e.parts["hotels"].SetPathMode(wire.PathCommit, testutil.Down)
	e.start()
	e.submit(wire.SubmitRequest{ID: "a-commit", Branches: branches("flights", "hotels")})
	e.parts["flights"].SetVote(voteNoFor("full"))
	e.submit(wire.SubmitRequest{ID: "b-abort", Branches: branches("flights", "hotels")})
	list := func(q string) []wire.TxStatus {
		code, body := e.get(wire.PathTransactions + q)
		if code != 200 {
			t.Fatalf("list %s: %d %s", q, code, body)
		}
		var l wire.TxList
		if err := json.Unmarshal(body, &l); err != nil {
			t.Fatal(err)
		}
		return l.Transactions
	}
	eventually(t, "hotels' failed COMMIT recorded", func() bool { return e.status("a-commit").Branches[1].LastError != "" })
	// The abort is answered once flights votes no; hotels' vote and the
	// ABORT it is sent come after, and the transaction is pending until then.
	eventually(t, "b-abort finished", func() bool { return e.status("b-abort").Done })
	if l := list("?state=pending"); len(l) != 1 || l[0].ID != "a-commit" || l[0].Branches[1].Acknowledged {
		t.Fatalf("pending: %+v", l)
	}
	if l := list(""); len(l) != 1 {
		t.Fatalf("default (pending): %+v", l)
	}
	if l := list("?state=aborted"); len(l) != 1 || l[0].ID != "b-abort" {
		t.Fatalf("aborted: %+v", l)
	}
	if l := list("?state=committed"); len(l) != 1 || l[0].ID != "a-commit" {
		t.Fatalf("committed: %+v", l)
	}
	if l := list("?state=all"); len(l) != 2 {
		t.Fatalf("all: %+v", l)
	}
	if l := list("?state=all&limit=1"); len(l) != 1 || l[0].ID != "a-commit" {
		t.Fatalf("all, limit 1: %+v", l)
	}
}
