package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/concordtx/concord/coordinator"
	"github.com/concordtx/concord/internal/testutil"
	"github.com/concordtx/concord/wal/memfs"
	"github.com/concordtx/concord/wire"
)

// concord tx does what the console does: show with the timeline, list by
// participant, retry and abort with --json for scripts.
func TestTxOperatorCommands(t *testing.T) {
	flights := testutil.NewParticipant(t, "flights")
	hotels := testutil.NewParticipant(t, "hotels")
	c, err := coordinator.New(coordinator.Options{Dir: "/c", FS: memfs.New(), CompactInterval: time.Hour,
		RetryMin: time.Hour, RetryMax: time.Hour,
		Participants: map[string]string{"flights": flights.URL, "hotels": hotels.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ln); err != nil {
		t.Fatal(err)
	}
	url := c.URL()
	hotels.SetPathMode(wire.PathCommit, testutil.Down)
	for _, req := range []wire.SubmitRequest{
		{ID: "both", Branches: []wire.Branch{{Participant: "flights"}, {Participant: "hotels"}}},
		{ID: "alone", Branches: []wire.Branch{{Participant: "flights"}}},
	} {
		if _, err := c.Submit(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}

	deadline := time.Now().Add(10 * time.Second)
	for st, _ := c.Status("both"); len(st.Branches) < 2 || st.Branches[1].LastError == ""; st, _ = c.Status("both") {
		if time.Now().After(deadline) {
			t.Fatal("hotels' COMMIT never failed")
		}
		time.Sleep(time.Millisecond) // the COMMIT fails over a real socket: nothing to wait on
	}
	code, out, errs := runCmd("tx", "show", "both", "--coordinator", url)
	for _, want := range []string{"timeline:", "vote yes", "decision committed", "delivery-failed", "hotels"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("tx show lacks %q: exit %d\n%s%s", want, code, out, errs)
		}
	}
	code, out, _ = runCmd("tx", "show", "both", "--json", "--events", "--coordinator", url)
	var tl wire.TxTimeline
	if code != 0 || json.Unmarshal([]byte(out), &tl) != nil || len(tl.Events) == 0 || tl.Status.ID != "both" {
		t.Fatalf("tx show --json --events: exit %d: %s", code, out)
	}
	if code, _, errs := runCmd("tx", "show", "never-seen", "--coordinator", url); code != 1 || !strings.Contains(errs, "is forgotten") || !strings.Contains(errs, "not aborted") {
		t.Fatalf("tx show of an id with no record: exit %d %q, want it called forgotten", code, errs)
	}
	code, out, _ = runCmd("tx", "list", "--state", "all", "--participant", "hotels", "--coordinator", url)
	if code != 0 || !strings.Contains(out, "both") || strings.Contains(out, "alone") {
		t.Fatalf("tx list --participant hotels: exit %d:\n%s", code, out)
	}

	code, out, errs = runCmd("tx", "abort", "both", "--reason", "testing", "--json", "--coordinator", url)
	var er wire.ErrorResponse
	if code != 1 || json.Unmarshal([]byte(out), &er) != nil || !strings.Contains(er.Error, "never aborted") {
		t.Fatalf("tx abort of a commit: exit %d: %q %q", code, out, errs)
	}
	// hotels still refuses COMMIT: the resend fails again, and tx retry
	// says so (exit 1), in JSON too.
	code, out, errs = runCmd("tx", "retry", "both", "--coordinator", url)
	if code != 1 || !strings.Contains(out, "hotels: FAILED AGAIN") || !strings.Contains(out, "next retry") ||
		!strings.Contains(errs, "resend failed again: hotels") {
		t.Fatalf("tx retry while hotels is down: exit %d: %q %q", code, out, errs)
	}
	code, out, errs = runCmd("tx", "retry", "both", "--json", "--coordinator", url)
	er = wire.ErrorResponse{}
	if code != 1 || json.Unmarshal([]byte(out), &er) != nil || !strings.Contains(er.Error, "resend failed again: hotels") {
		t.Fatalf("tx retry --json while hotels is down: exit %d: %q %q", code, out, errs)
	}
	hotels.SetPathMode(wire.PathCommit, testutil.Normal)
	code, out, errs = runCmd("tx", "retry", "both", "--json", "--coordinator", url)
	var st wire.TxStatus
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.ID != "both" || st.State != "committed" || !st.Done {
		t.Fatalf("tx retry --json: exit %d: %q %q", code, out, errs)
	}
	if code, _, errs := runCmd("tx", "retry", "--reason", "x", "both"); code != 2 || !strings.Contains(errs, "reason") {
		t.Fatalf("tx retry --reason: exit %d %q, want a usage error", code, errs)
	}
}

// --log-format and --log-level: a bad value is a usage error naming it;
// json gives one JSON object a line.
func TestLogFlags(t *testing.T) {
	for _, tc := range []struct{ args, want string }{
		{"--log-format xml", `--log-format "xml"`},
		{"--log-level loud", `--log-level "loud"`},
	} {
		code, stderr := coordinatorExit(t, append([]string{"--data", t.TempDir(), "--participant", "flights=http://127.0.0.1:1"}, strings.Fields(tc.args)...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d %q", tc.args, code, stderr)
		}
	}
	var buf bytes.Buffer
	l, err := (&logFlags{format: "json", level: "debug"}).logger(&buf)
	if err != nil {
		t.Fatal(err)
	}
	l.Debug("transaction decided", "tx", "t1")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line["tx"] != "t1" || line["level"] != "DEBUG" {
		t.Fatalf("json line %q: %v", buf.String(), err)
	}
	buf.Reset()
	l, _ = (&logFlags{format: "text", level: "warn"}).logger(&buf)
	l.Info("quiet")
	l.Warn("loud", "tx", "t2")
	if s := buf.String(); strings.Contains(s, "quiet") || !strings.Contains(s, "level=WARN msg=loud tx=t2") {
		t.Fatalf("text at warn: %q", s)
	}
}

// A tx retry whose participant answers: each is reported acknowledged.
func TestTxRetryReportsAcknowledged(t *testing.T) {
	flights := testutil.NewParticipant(t, "flights")
	hotels := testutil.NewParticipant(t, "hotels")
	c, err := coordinator.New(coordinator.Options{Dir: "/c", FS: memfs.New(), CompactInterval: time.Hour,
		RetryMin: time.Hour, RetryMax: time.Hour,
		Participants: map[string]string{"flights": flights.URL, "hotels": hotels.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ln); err != nil {
		t.Fatal(err)
	}
	hotels.SetPathMode(wire.PathCommit, testutil.Down)
	if _, err := c.Submit(context.Background(), wire.SubmitRequest{ID: "t", Branches: []wire.Branch{{Participant: "flights"}, {Participant: "hotels"}}}); err != nil {
		t.Fatal(err)
	}
	// The COMMITs leave after Submit returns: wait until hotels' has
	// failed, so that there is something to resend.
	for deadline := time.Now().Add(10 * time.Second); ; {
		st, err := c.Status("t")
		if err != nil {
			t.Fatal(err)
		}
		if failed := slices.ContainsFunc(st.Branches, func(b wire.BranchStatus) bool {
			return b.Participant == "hotels" && !b.Acknowledged && b.LastError != ""
		}); failed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hotels' COMMIT never failed: %+v", st)
		}
		time.Sleep(time.Millisecond) // the sender runs on its own goroutines: poll its status
	}
	hotels.SetPathMode(wire.PathCommit, testutil.Normal)
	code, out, errs := runCmd("tx", "retry", "t", "--coordinator", c.URL())
	if code != 0 || !strings.Contains(out, "hotels: acknowledged") || strings.Contains(out, "FAILED") {
		t.Fatalf("tx retry: exit %d: %q %q", code, out, errs)
	}
}

// Every --json command that fails prints {"error": ...} on stdout, so that
// a program reading it always gets JSON.
func TestJSONCommandsPrintErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	flights := testutil.NewParticipant(t, "flights")
	c, err := coordinator.New(coordinator.Options{Dir: "/c", FS: memfs.New(), CompactInterval: time.Hour,
		Participants: map[string]string{"flights": flights.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ln); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"tx", "list", "--json", "--coordinator", down}, 1, "connect"},
		{[]string{"tx", "list", "--json", "--limit", "0"}, 2, "--limit 0"},
		{[]string{"tx", "show", "nobody", "--json", "--coordinator", c.URL()}, 1, "forgotten"},
		{[]string{"tx", "show", "nobody", "--json", "--events", "--coordinator", down}, 1, "connect"},
		{[]string{"tx", "show", "--json"}, 2, "exactly one transaction ID"},
		{[]string{"tx", "retry", "nobody", "--json", "--coordinator", c.URL()}, 1, "nobody"},
		{[]string{"tx", "abort", "nobody", "--json", "--coordinator", down}, 1, "connect"},
		{[]string{"book", "--json", "--flight", "FL100", "--coordinator", down}, bookError, "connect"},
		{[]string{"book", "--json", "--coordinator", c.URL()}, bookError, "nothing to book"},
		{[]string{"book", "--json", "--quantity", "0", "--flight", "FL100"}, bookError, "--quantity"},
		{[]string{"log", "dump", "--json", filepath.Join(t.TempDir(), "none")}, logUsage, "no such directory"},
		{[]string{"demo", "--json", "--trips", "1"}, 2, "--trips 1"},
		{[]string{"bench", "--json", "--service-procs", "-1"}, 2, "--service-procs -1"},
		{[]string{"chaos", "--json", "--seed", "x"}, chaosError, "--seed"},
	} {
		code, out, errs := runCmd(tc.args...)
		var er wire.ErrorResponse
		dec := json.NewDecoder(strings.NewReader(out))
		dec.DisallowUnknownFields()
		if code != tc.code || dec.Decode(&er) != nil || !strings.Contains(er.Error, tc.want) || dec.More() {
			t.Errorf("%v: exit %d (want %d), stdout %q (want one {\"error\"} naming %q), stderr %q", tc.args, code, tc.code, out, tc.want, errs)
		}
	}
}
