package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestBenchRuns builds the binary, lets concord bench start the coordinator
// and the three services as processes, and runs a tiny count through each
// phase. It checks the run's accounting, not its speed: every transaction
// is answered, the abort mix aborts, and the counters read from the
// processes show requests and fsyncs (a commit that cost no fsync would not
// be durable).
func TestBenchRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts four processes")
	}
	bin := filepath.Join(t.TempDir(), "concord")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var out, errb bytes.Buffer
	code := run([]string{"bench", "--binary", bin, "--dir", t.TempDir(), "--count", "20",
		"--concurrency", "1,4", "--participants", "1,3", "--abort-ratio", "0.5", "--floor-samples", "5", "--json"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit status %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	var res struct {
		Started bool `json:"started_processes"`
		Floor   *struct {
			Fsync  int64 `json:"fsync_ns"`
			Commit int64 `json:"commit_ns"`
		} `json:"floor"`
		Phases []struct {
			Concurrency   int     `json:"concurrency"`
			Participants  int     `json:"participants"`
			Committed     int64   `json:"committed"`
			Aborted       int64   `json:"aborted"`
			Errors        int64   `json:"errors"`
			RequestsPerTx float64 `json:"participant_requests_per_tx"`
			Fsyncs        struct {
				Coordinator  float64 `json:"coordinator"`
				Participants float64 `json:"participants"`
			} `json:"fsyncs_per_tx"`
			Latency struct {
				P50 float64 `json:"p50_ms"`
			} `json:"latency"`
		} `json:"phases"`
		ServiceProcs int `json:"service_procs"`
		Runtime      map[string]struct {
			End struct {
				GOMAXPROCS int `json:"gomaxprocs"`
			} `json:"end"`
		} `json:"runtime"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("decode %s: %v", out.String(), err)
	}
	if !res.Started || res.Floor == nil || res.Floor.Fsync <= 0 || res.Floor.Commit <= res.Floor.Fsync {
		t.Fatalf("started %v, floor %+v", res.Started, res.Floor)
	}
	if len(res.Phases) != 4 {
		t.Fatalf("%d phases, want 4 (2 concurrencies x 2 participant counts)", len(res.Phases))
	}
	var aborted int64
	for _, p := range res.Phases {
		if p.Committed+p.Aborted != 20 || p.Errors != 0 {
			t.Errorf("phase %d clients/%d parts: %d committed + %d aborted, %d errors; want 20 answered",
				p.Concurrency, p.Participants, p.Committed, p.Aborted, p.Errors)
		}
		aborted += p.Aborted
		if p.RequestsPerTx <= 0 || p.Latency.P50 <= 0 {
			t.Errorf("phase %+v: no requests or latency measured", p)
		}
		if p.Committed > 0 && p.Fsyncs.Participants <= 0 {
			t.Errorf("phase %+v: commits without a participant fsync", p)
		}
		if p.Committed > 0 && p.Participants > 1 && p.Fsyncs.Coordinator <= 0 {
			t.Errorf("phase %+v: two-phase commits without a coordinator fsync", p)
		}
	}
	if aborted == 0 {
		t.Error("abort ratio 0.5 aborted nothing")
	}
	for _, name := range []string{"coordinator", "flights", "hotels", "cars"} {
		if _, ok := res.Runtime[name]; !ok {
			t.Errorf("no runtime figures for %s", name)
		}
	}
	// The services run with --service-procs (default 1) processors; the
	// coordinator with Go's default.
	if res.ServiceProcs != 1 {
		t.Errorf("service_procs %d, want the default 1", res.ServiceProcs)
	}
	for _, name := range []string{"flights", "hotels", "cars"} {
		if got := res.Runtime[name].End.GOMAXPROCS; got != 1 {
			t.Errorf("%s ran with GOMAXPROCS %d, want 1", name, got)
		}
	}
	if got, want := res.Runtime["coordinator"].End.GOMAXPROCS, runtime.GOMAXPROCS(0); got != want {
		t.Errorf("coordinator ran with GOMAXPROCS %d, want Go's default %d", got, want)
	}
	if !strings.Contains(errb.String(), "phase: 4 clients, 3 participant(s), 20 transactions") {
		t.Errorf("progress lacks the phase lines:\n%s", errb.String())
	}
}

// Bad flags exit 2 with a message naming the problem.
func TestBenchBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--participants", "4"}, "participants 4 is outside 1..3"},
		{[]string{"--concurrency", "x"}, "not a whole number"},
		{[]string{"--abort-ratio", "2"}, "abort ratio 2 is outside 0..1"},
		{[]string{"--coordinator", "ftp://x"}, "want http://host:port"},
		{[]string{"--count", "-1"}, "count -1 is negative"},
		{[]string{"--service-procs", "-1"}, "--service-procs -1: want 0"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"bench", "--dir", t.TempDir()}, tc.args...), &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errb.String(), tc.want)
		}
	}
}
