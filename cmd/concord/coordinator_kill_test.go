package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/client"
	"github.com/concordtx/concord/internal/failpoint"
	"github.com/concordtx/concord/internal/testutil"
	"github.com/concordtx/concord/wire"
)

// TestHelperCoordinatorProcess is not a test: it is the coordinator
// process that TestCoordinatorSurvivesSIGKILL starts (this test binary,
// re-executed), so that it can be killed for real.
func TestHelperCoordinatorProcess(t *testing.T) {
	args := os.Getenv("CONCORD_HELPER_COORDINATOR_ARGS")
	if args == "" {
		t.Skip("started only as a child process")
	}
	os.Exit(runCoordinator(context.Background(), strings.Split(args, "\x1f"), os.Stdout, os.Stderr))
}

// startCoordinatorProcess starts a coordinator process and returns it with
// its URL.
func startCoordinatorProcess(t *testing.T, args ...string) (*exec.Cmd, string) {
	return startCoordinatorProcessEnv(t, "", args...)
}

// startCoordinatorProcessEnv is startCoordinatorProcess with failpoints
// armed as CONCORD_FAILPOINTS says.
func startCoordinatorProcessEnv(t *testing.T, failpoints string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	return startHelperProcess(t, "Coordinator", []string{
		"CONCORD_HELPER_COORDINATOR_ARGS=" + strings.Join(args, "\x1f"),
		failpoint.EnvVar + "=" + failpoints,
	}, os.Stderr)
}

// startHelperProcess re-runs this test binary as TestHelper<role>Process
// with env added, waits for its "serving on URL" line and returns it with
// that URL; the process is killed when the test ends.
func startHelperProcess(t *testing.T, role string, env []string, stderr io.Writer) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelper"+role+"Process$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	urls := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`serving on (http://127\.0\.0\.1:\d+)`)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
				break
			}
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case u := <-urls:
		return cmd, u
	case <-time.After(30 * time.Second):
		t.Fatalf("the %s process did not start", strings.ToLower(role))
	}
	return nil, ""
}

// A coordinator process killed with SIGKILL, with one commit still being
// delivered and one transaction undecided, comes back on the same data
// directory and finishes both the right way.
func TestCoordinatorSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	flights := testutil.NewParticipant(t, "flights")
	hotels := testutil.NewParticipant(t, "hotels")
	cars := testutil.NewParticipant(t, "cars")
	hotels.SetPathMode(wire.PathCommit, testutil.Down)
	cars.SetPathMode(wire.PathPrepare, testutil.Silent)
	seen := make(chan testutil.Seen, 64)
	cars.Notify(seen)
	data := t.TempDir()
	args := []string{"--listen", "127.0.0.1:0", "--data", data, "--participant", "flights=" + flights.URL,
		"--participant", "hotels=" + hotels.URL, "--participant", "cars=" + cars.URL, "--default-timeout", "30s"}
	proc, url := startCoordinatorProcess(t, args...)
	cl, _ := client.New(client.Options{URL: url, Timeout: 10 * time.Second})
	ctx := context.Background()
	resp, err := cl.Submit(ctx, wire.SubmitRequest{ID: "kill-commit", Branches: []wire.Branch{{Participant: "flights"}, {Participant: "hotels"}}})
	if err != nil || resp.Outcome != concord.OutcomeCommitted {
		t.Fatalf("%+v %v", resp, err)
	}
	go cl.Submit(ctx, wire.SubmitRequest{ID: "kill-undecided", Branches: []wire.Branch{{Participant: "flights"}, {Participant: "cars"}}})
	for s := range seen {
		if s.Path == wire.PathPrepare {
			break
		}
	}
	if st, err := cl.Get(ctx, "kill-commit"); err != nil || st.Done {
		t.Fatalf("before the kill: %+v %v", st, err)
	}
	proc.Process.Signal(syscall.SIGKILL)
	proc.Wait()

	hotels.SetPathMode(wire.PathCommit, testutil.Normal)
	cars.SetPathMode(wire.PathPrepare, testutil.Normal)
	_, url = startCoordinatorProcess(t, args...)
	cl, _ = client.New(client.Options{URL: url, Timeout: 10 * time.Second})
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := cl.Get(ctx, "kill-commit")
		if err == nil && st.Done && hotels.State("kill-commit") == "committed" && flights.State("kill-undecided") == "aborted" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after restart: %+v %v; hotels %q, flights %q", st, err, hotels.State("kill-commit"), flights.State("kill-undecided"))
		}
		time.Sleep(5 * time.Millisecond) // a real process: poll it
	}
	if o, err := cl.Outcome(ctx, "kill-undecided"); err != nil || o != concord.OutcomeAborted {
		t.Fatalf("undecided transaction: %v %v", o, err)
	}
}

// The coordinator binary honours CONCORD_FAILPOINTS: armed at the durable
// commit decision, the process dies before any COMMIT leaves or the client
// hears anything; restarted, it delivers the commit.
func TestCoordinatorFailpointAfterDecisionSync(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	flights := testutil.NewParticipant(t, "flights")
	hotels := testutil.NewParticipant(t, "hotels")
	args := []string{"--listen", "127.0.0.1:0", "--data", t.TempDir(),
		"--participant", "flights=" + flights.URL, "--participant", "hotels=" + hotels.URL}
	proc, url := startCoordinatorProcessEnv(t, failpoint.CoordinatorAfterDecisionSync+"=crash", args...)
	cl, _ := client.New(client.Options{URL: url, Timeout: 10 * time.Second})
	ctx := context.Background()
	if resp, err := cl.Submit(ctx, wire.SubmitRequest{ID: "fp-commit", Branches: []wire.Branch{{Participant: "flights"}, {Participant: "hotels"}}}); err == nil {
		t.Fatalf("the client heard %+v from a process that died before answering", resp)
	}
	proc.Wait()
	if flights.Count(wire.PathCommit)+hotels.Count(wire.PathCommit) != 0 {
		t.Fatal("a COMMIT left before the failpoint")
	}
	_, url = startCoordinatorProcess(t, args...)
	cl, _ = client.New(client.Options{URL: url, Timeout: 10 * time.Second})
	deadline := time.Now().Add(20 * time.Second)
	for flights.State("fp-commit") != "committed" || hotels.State("fp-commit") != "committed" {
		if time.Now().After(deadline) {
			t.Fatalf("not re-driven: flights %q hotels %q", flights.State("fp-commit"), hotels.State("fp-commit"))
		}
		time.Sleep(5 * time.Millisecond) // a real process: poll it
	}
	if o, err := cl.Outcome(ctx, "fp-commit"); err != nil || o != concord.OutcomeCommitted {
		t.Fatalf("outcome %v %v", o, err)
	}
}
