package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/travel"
	"github.com/concordtx/concord/wire"
)

// fakeBookCoordinator answers POST /v1/transactions with the outcome answer
// returns for the decoded request, and records the requests.
func fakeBookCoordinator(t *testing.T, answer func(wire.SubmitRequest) (int, any)) (*httptest.Server, *[]wire.SubmitRequest) {
	t.Helper()
	var got []wire.SubmitRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != wire.PathTransactions {
			wire.WriteError(w, http.StatusNotFound, "unexpected "+r.Method+" "+r.URL.Path)
			return
		}
		var req wire.SubmitRequest
		if err := wire.DecodeRequest(w, r, 0, &req); err != nil {
			wire.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		got = append(got, req)
		code, body := answer(req)
		wire.WriteJSON(w, code, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

// votesFor answers every branch with vote yes, except the named one.
func votesFor(req wire.SubmitRequest, no string) wire.SubmitResponse {
	resp := wire.SubmitResponse{ID: req.ID, Outcome: concord.OutcomeCommitted}
	if resp.ID == "" {
		resp.ID = "generated-1"
	}
	for _, b := range req.Branches {
		br := wire.BranchResult{Participant: b.Participant, Vote: concord.VoteYes}
		if b.Participant == no {
			br.Vote, br.Reason = concord.VoteNo, "not enough left: FL100 has 0 available, 2 asked"
			resp.Outcome, resp.Reason = concord.OutcomeAborted, no+" voted no"
		}
		resp.Branches = append(resp.Branches, br)
	}
	return resp
}

func TestBookCommitted(t *testing.T) {
	srv, got := fakeBookCoordinator(t, func(r wire.SubmitRequest) (int, any) { return 200, votesFor(r, "") })
	var out, errb bytes.Buffer
	code := run([]string{"book", "--coordinator", srv.URL + "/", "--flight", "FL100", "--hotel", "H-PARIS", "--car", "C-ECON", "--quantity", "2", "--id", "trip-1"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errb.String())
	}
	if len(*got) != 1 {
		t.Fatalf("%d requests", len(*got))
	}
	req := (*got)[0]
	if req.ID != "trip-1" || req.TimeoutMS != 5000 || len(req.Branches) != 3 {
		t.Fatalf("request %+v", req)
	}
	for i, want := range []struct{ p, sku string }{{"flights", "FL100"}, {"hotels", "H-PARIS"}, {"cars", "C-ECON"}} {
		r, err := travel.DecodeRequest(req.Branches[i].Payload)
		if req.Branches[i].Participant != want.p || err != nil || r != (travel.Request{SKU: want.sku, Quantity: 2}) {
			t.Errorf("branch %d: %s %s %v", i, req.Branches[i].Participant, req.Branches[i].Payload, err)
		}
	}
	for _, s := range []string{"transaction trip-1: committed", "flights", "FL100 x2", "H-PARIS x2", "yes"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output lacks %q:\n%s", s, out.String())
		}
	}
}

func TestBookAborted(t *testing.T) {
	srv, got := fakeBookCoordinator(t, func(r wire.SubmitRequest) (int, any) { return 200, votesFor(r, "flights") })
	var out, errb bytes.Buffer
	code := run([]string{"book", "--coordinator", srv.URL, "--flight", "FL100", "--car", "C-SUV", "--json"}, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", code, errb.String())
	}
	if len((*got)[0].Branches) != 2 {
		t.Fatalf("branches %+v", (*got)[0].Branches)
	}
	var resp wire.SubmitResponse
	if err := json.Unmarshal(out.Bytes(), &resp); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out.String())
	}
	if resp.Outcome != concord.OutcomeAborted || resp.Branches[0].Vote != concord.VoteNo || resp.ID == "" || resp.ID != (*got)[0].ID {
		t.Fatalf("answer %+v", resp)
	}
}

func TestBookErrors(t *testing.T) {
	srv500, _ := fakeBookCoordinator(t, func(wire.SubmitRequest) (int, any) {
		return 500, wire.ErrorResponse{Error: "log poisoned"}
	})
	srv400, _ := fakeBookCoordinator(t, func(wire.SubmitRequest) (int, any) {
		return 400, wire.ErrorResponse{Error: `unknown participant "cars"`}
	})
	pending, _ := fakeBookCoordinator(t, func(r wire.SubmitRequest) (int, any) {
		resp := votesFor(r, "")
		resp.Outcome = concord.OutcomePending
		return 200, resp
	})
	// A port that was just free: nothing listens there.
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	cases := []struct {
		args    []string
		mention string
	}{
		{[]string{"--coordinator", srv500.URL, "--flight", "FL100"}, "log poisoned"},
		{[]string{"--coordinator", srv400.URL, "--car", "C-ECON"}, `unknown participant \"cars\"`},
		{[]string{"--coordinator", pending.URL, "--car", "C-ECON"}, `outcome "pending"`},
		{[]string{"--coordinator", closed.URL, "--flight", "FL100"}, "POST " + closed.URL + "/v1/transactions"},
		{[]string{"--coordinator", "127.0.0.1:7070", "--flight", "FL100"}, "not an http"},
		{[]string{"--flight", "FL100", "--quantity", "0"}, "--quantity 0"},
		{[]string{"--flight", "FL 100"}, "--flight: SKU"},
		{[]string{"--flight", "FL100", "--id", "bad id"}, "--id: bad transaction id"},
		{[]string{"--flight", "FL100", "--timeout", "-1s"}, "--timeout"},
		{[]string{}, "nothing to book"},
		{[]string{"--flight", "FL100", "extra"}, `unexpected argument "extra"`},
		{[]string{"--frobnicate"}, "flag provided but not defined"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := run(append([]string{"book"}, c.args...), &out, &errb)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2", c.args, code)
		}
		if !strings.Contains(errb.String(), strings.ReplaceAll(c.mention, `\"`, `"`)) && !strings.Contains(errb.String(), c.mention) {
			t.Errorf("%v: stderr does not mention %q:\n%s", c.args, c.mention, errb.String())
		}
	}
}

// TestBookAgainstRealServices books through a real coordinator and the
// three travel services: a trip that fits commits (exit 0) and is held
// confirmed at every service, the same id again books nothing twice, and a
// trip that does not fit aborts (exit 1) with the service's reason.
func TestBookAgainstRealServices(t *testing.T) {
	cl, err := startDemoCluster(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.close()
	coord := cl.coord.URL()
	for range 2 {
		var out, errb bytes.Buffer
		code := run([]string{"book", "--coordinator", coord, "--flight", "FL100", "--hotel", "H-PARIS", "--car", "C-ECON", "--quantity", "2", "--id", "trip-real"}, &out, &errb)
		if code != 0 || !strings.Contains(out.String(), "trip-real: committed") {
			t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
		}
	}
	// The answer comes once the decision is durable; the COMMITs reach
	// the services right after. Wait for the coordinator to see every
	// acknowledgement (real sockets: nothing to wait on but its state).
	deadline := time.Now().Add(10 * time.Second)
	for st, err := cl.coord.Status("trip-real"); err != nil || !st.Done; st, err = cl.coord.Status("trip-real") {
		if time.Now().After(deadline) {
			t.Fatalf("trip-real never finished: %+v, %v", st, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, name := range travel.ServiceNames() {
		_, st := cl.services[name].current()
		r, err := st.Reservation(t.Context(), "trip-real")
		if err != nil || r.State != travel.StateCommitted || r.Quantity != 2 {
			t.Errorf("%s: %+v, %v", name, r, err)
		}
		items, _ := st.Items(t.Context())
		if items[0].Confirmed != 2 {
			t.Errorf("%s: %+v after booking the same id twice", name, items[0])
		}
	}
	var out, errb bytes.Buffer
	code := run([]string{"book", "--coordinator", coord, "--flight", "FL300", "--car", "C-ECON", "--quantity", "7"}, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "aborted") || !strings.Contains(out.String(), "not enough left: FL300 has 6 available, 7 asked") {
		t.Fatalf("sold out: exit %d\n%s%s", code, out.String(), errb.String())
	}
	// A lone service decides in one phase: its refusal still shows in its row.
	out.Reset()
	code = run([]string{"book", "--coordinator", coord, "--flight", "FL300", "--quantity", "7"}, &out, &errb)
	if code != 1 || !regexp.MustCompile(`flights\s+FL300 x7\s+no\s+not enough left`).MatchString(out.String()) {
		t.Fatalf("one-phase sold out: exit %d\n%s%s", code, out.String(), errb.String())
	}
}
