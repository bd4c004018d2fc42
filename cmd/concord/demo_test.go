package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/travel"
	"github.com/concordtx/concord/wire"
)

// TestDemoRuns runs the demo as a user would, with a small workload: it
// must exit 0 having crashed and restarted the hotel, and show the summary.
func TestDemoRuns(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"demo", "--trips", "60", "--workers", "8"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	for _, s := range []string{
		"[1/5]", "hotels CRASHED", "has not acknowledged after", "recovered in doubt from its log",
		"every service acknowledged; hotels holds it committed", "inventories (available + held + confirmed = capacity)",
		"coordinator", "commit", "forced: on disk before the yes vote", "all checks passed",
	} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output lacks %q", s)
		}
	}
	if strings.Contains(out.String(), "FAIL") {
		t.Errorf("a check failed:\n%s", out.String())
	}
	if t.Failed() {
		t.Logf("output:\n%s", out.String())
	}
}

// TestDemoJSONOnReusedData runs the demo twice on the same data directory
// with a JSON summary: the second run starts from the first one's stores and
// coordinator log, and both must pass every check.
func TestDemoJSONOnReusedData(t *testing.T) {
	dir := t.TempDir()
	for i := range 2 {
		var out, errb bytes.Buffer
		code := run([]string{"demo", "--data", dir, "--trips", "40", "--workers", "4", "--json", "--seed", "7"}, &out, &errb)
		var s demoSummary
		if err := json.Unmarshal(out.Bytes(), &s); err != nil {
			t.Fatalf("run %d: summary is not JSON: %v\n%s\nstderr:\n%s", i, err, out.String(), errb.String())
		}
		if code != 0 || !s.OK {
			t.Fatalf("run %d: exit %d, summary %s\nstderr:\n%s", i, code, out.String(), errb.String())
		}
		if !strings.Contains(errb.String(), "[5/5]") {
			t.Errorf("run %d: progress not on stderr with --json", i)
		}
		if s.Trips != 41 || s.Committed+s.Aborted != s.Trips || !s.InDoubt.CommittedAtAll || s.InDoubt.HotelAttempts < 3 {
			t.Errorf("run %d: summary %+v", i, s)
		}
		kinds := map[string]bool{}
		for _, r := range s.Records {
			kinds[r.Log+" "+r.Type] = true
		}
		for _, k := range []string{"coordinator begin", "coordinator commit", "coordinator end", "hotels prepared", "hotels commit", "flights prepared", "cars commit"} {
			if !kinds[k] {
				t.Errorf("run %d: no %s record among %+v", i, k, s.Records)
			}
		}
	}
}

// TestDemoChecksCatchViolations shows that the checks can fail: after a
// real run, a trip the client was told committed but that no service holds,
// and a reservation left held, must both be reported.
func TestDemoChecksCatchViolations(t *testing.T) {
	r := &demoRun{trips: 20, workers: 4, seed: 3, prefix: "viol", progress: io.Discard, ctx: t.Context()}
	if err := r.run(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	defer r.cl.close()
	for _, c := range r.checks {
		if !c.OK {
			t.Fatalf("a clean run failed %q: %s", c.Name, c.Detail)
		}
	}
	// A trip the client heard committed, that the services never saw.
	ghost := wire.SubmitRequest{ID: "viol-ghost", Branches: []wire.Branch{{Participant: travel.Cars, Payload: travel.Request{SKU: "C-ECON", Quantity: 1}.Payload()}}}
	r.bookings = append(r.bookings, demoBooking{req: ghost, resp: wire.SubmitResponse{ID: "viol-ghost", Outcome: concord.OutcomeCommitted}, final: concord.OutcomeCommitted})
	// A hold nobody decides.
	_, st := r.cl.services[travel.Flights].current()
	if res, err := st.Prepare(t.Context(), "viol-held", travel.Request{SKU: "FL100", Quantity: 1}.Payload(), participant.PrepareInfo{}); err != nil || res.Vote != concord.VoteYes {
		t.Fatalf("prepare: %+v, %v", res, err)
	}
	r.checks = nil
	r.check()
	failed := map[string]bool{}
	for _, c := range r.checks {
		if !c.OK {
			failed[c.Name] = true
		}
	}
	for _, want := range []string{
		"every answer matches the coordinator's log (pending answers settled)",
		"atomicity: every trip has one outcome at every service it touched",
		"conservation: available + held + confirmed = capacity, nothing left held",
	} {
		if !failed[want] {
			t.Errorf("check %q did not fail; failed: %v", want, failed)
		}
	}
	var out bytes.Buffer
	if r.summarize(&out, false) || !strings.Contains(out.String(), "SOME CHECKS FAILED") {
		t.Fatalf("summary passed with violations:\n%s", out.String())
	}
}

// TestDemoStopsWhenInterrupted: an interrupted run (its context ended, as
// on SIGINT) stops with an error instead of hanging, and shuts down cleanly.
func TestDemoStopsWhenInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r := &demoRun{trips: 20, workers: 4, seed: 3, prefix: "intr", progress: io.Discard, ctx: ctx}
	err := r.run(t.TempDir())
	if err == nil {
		t.Fatal("an interrupted run reported success")
	}
	if r.cl != nil {
		if err := r.cl.close(); err != nil {
			t.Fatalf("close after interruption: %v", err)
		}
	}
}

func TestDemoBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--trips", "3"}, {"--workers", "0"}, {"extra"}, {"--nope"}} {
		var out, errb bytes.Buffer
		if code := run(append([]string{"demo"}, args...), &out, &errb); code != 2 || errb.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q", args, code, errb.String())
		}
	}
}
