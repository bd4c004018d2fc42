package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concordtx/concord/internal/testutil"
	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wire"
)

// lockedBuffer is a bytes.Buffer safe to write from the command while the
// test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func coordinatorExit(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // never serve: these runs must fail before
	code := runCoordinator(ctx, args, &out, &errb)
	return code, errb.String()
}

func TestCoordinatorCommandBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--frobnicate"}, "flag provided but not defined"},
		{[]string{"--data", dir}, "no --participant"},
		{[]string{"--data", dir, "--participant", "flights"}, "want name=URL"},
		{[]string{"--data", dir, "--participant", "flights=http://127.0.0.1:1", "--participant", "flights=http://127.0.0.1:2"}, `"flights" given twice`},
		{[]string{"--data", dir, "--participant", "flights=ftp://127.0.0.1:1"}, "http://"},
		{[]string{"--data", dir, "--participant", "flights=http://127.0.0.1:1", "extra"}, `unexpected argument "extra"`},
		{[]string{"--data", dir, "--participant", "flights=http://127.0.0.1:1", "--default-timeout", "2m"}, "above MaxTimeout"},
		{[]string{"--data", dir, "--participant", "flights=http://127.0.0.1:1", "--default-timeout", "soon"}, "invalid value"},
		{[]string{"--data", dir, "--participant", "flights=http://127.0.0.1:1", "--segment-size", "100"}, "--segment-size 100: want at least 4096 bytes"},
	} {
		code, stderr := coordinatorExit(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

func TestCoordinatorCommandCannotStart(t *testing.T) {
	part := "flights=http://127.0.0.1:1"
	// A port in use.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	code, stderr := coordinatorExit(t, "--data", t.TempDir(), "--participant", part, "--listen", ln.Addr().String())
	if code != 1 || !strings.Contains(stderr, "listen on "+ln.Addr().String()) || !strings.Contains(stderr, "in use") {
		t.Errorf("port in use: exit %d, stderr %q", code, stderr)
	}
	// A data directory that cannot be created: a file is in the way.
	blocker := filepath.Join(t.TempDir(), "file")
	os.WriteFile(blocker, []byte("x"), 0o644)
	code, stderr = coordinatorExit(t, "--data", blocker, "--participant", part, "--listen", "127.0.0.1:0")
	if code != 1 || !strings.Contains(stderr, blocker) {
		t.Errorf("unwritable data dir: exit %d, stderr %q", code, stderr)
	}
	// A log holding an entry the coordinator cannot read.
	data := t.TempDir()
	l, err := wal.Open(wal.Options{Dir: filepath.Join(data, "wal")})
	if err != nil {
		t.Fatal(err)
	}
	l.Append(99, []byte("not a coordinator record"))
	l.Close()
	code, stderr = coordinatorExit(t, "--data", data, "--participant", part, "--listen", "127.0.0.1:0")
	if code != 1 || !strings.Contains(stderr, "unknown type 99") {
		t.Errorf("corrupt log: exit %d, stderr %q", code, stderr)
	}
	// A segment with garbage in place of records.
	data = t.TempDir()
	l, _ = wal.Open(wal.Options{Dir: filepath.Join(data, "wal")})
	l.Append(1, []byte("x"))
	l.Append(1, []byte("y"))
	l.Close()
	segs, _ := filepath.Glob(filepath.Join(data, "wal", "*"))
	for _, s := range segs {
		if b, err := os.ReadFile(s); err == nil && len(b) > 40 && !strings.Contains(s, "LOCK") {
			b[len(b)-30] ^= 0xff // inside the first record: valid records follow, so it is corruption, not a torn tail
			os.WriteFile(s, b, 0o644)
		}
	}
	code, stderr = coordinatorExit(t, "--data", data, "--participant", part, "--listen", "127.0.0.1:0")
	if code != 1 || !strings.Contains(stderr, "corrupt") {
		t.Errorf("damaged log: exit %d, stderr %q", code, stderr)
	}
	t.Logf("damaged log: %s", stderr)
}

// The command serves, answers the tx subcommands, and shuts down cleanly
// when told (as on SIGTERM).
func TestCoordinatorCommandServesAndStops(t *testing.T) {
	flights := testutil.NewParticipant(t, "flights")
	hotels := testutil.NewParticipant(t, "hotels")
	hotels.SetPathMode("/v1/commit", testutil.Down) // one commit stays pending
	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb lockedBuffer
	exit := make(chan int, 1)
	go func() {
		exit <- runCoordinator(ctx, []string{"--listen", "127.0.0.1:0", "--data", data,
			"--participant", "flights=" + flights.URL, "--participant", "hotels=" + hotels.URL}, &out, &errb)
	}()
	re := regexp.MustCompile(`serving on (http://127\.0\.0\.1:\d+)`)
	var url string
	deadline := time.Now().Add(10 * time.Second)
	for url == "" {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no serving line; stdout %q stderr %q", out.String(), errb.String())
		} else {
			time.Sleep(time.Millisecond) // a real process start: nothing to wait on but its output
		}
	}
	code, stdout, stderr := runCmd("book", "--coordinator", url, "--flight", "FL100", "--hotel", "H-PARIS", "--id", "trip-cli")
	if code != 0 {
		t.Fatalf("book: exit %d: %s %s", code, stdout, stderr)
	}
	code, stdout, stderr = runCmd("tx", "list", "--coordinator", url)
	if code != 0 || !strings.Contains(stdout, "trip-cli") || !strings.Contains(stdout, "committed") {
		t.Fatalf("tx list: exit %d: %q %q", code, stdout, stderr)
	}
	code, stdout, _ = runCmd("tx", "list", "--state", "aborted", "--coordinator", url)
	if code != 0 || !strings.Contains(stdout, "no aborted transactions") {
		t.Fatalf("tx list aborted: exit %d: %q", code, stdout)
	}
	code, stdout, _ = runCmd("tx", "show", "trip-cli", "--coordinator", url)
	if code != 0 || !strings.Contains(stdout, "state:  committed") || !strings.Contains(stdout, "hotels") {
		t.Fatalf("tx show: exit %d: %q", code, stdout)
	}
	code, stdout, _ = runCmd("tx", "show", "--json", "--coordinator", url, "trip-cli")
	if code != 0 || !strings.Contains(stdout, `"state": "committed"`) {
		t.Fatalf("tx show --json: exit %d: %q", code, stdout)
	}
	code, stdout, _ = runCmd("tx", "list", "--json", "--state", "all", "--coordinator", url)
	if code != 0 || !strings.Contains(stdout, `"transactions"`) {
		t.Fatalf("tx list --json: exit %d: %q", code, stdout)
	}
	if code, _, stderr = runCmd("tx", "show", "nobody", "--coordinator", url); code != 1 || !strings.Contains(stderr, "forgotten") {
		t.Fatalf("tx show unknown: exit %d: %q", code, stderr)
	}
	// hotels still refuses the commit: the resend fails again, and says so.
	if code, stdout, stderr = runCmd("tx", "retry", "trip-cli", "--coordinator", url); code != 1 ||
		!strings.Contains(stdout, "hotels: FAILED AGAIN") || !strings.Contains(stderr, "resend failed again: hotels") {
		t.Fatalf("tx retry while hotels is down: exit %d: %q %q", code, stdout, stderr)
	}
	if code, _, stderr = runCmd("tx", "abort", "trip-cli", "--coordinator", url); code != 1 || !strings.Contains(stderr, "already decided") {
		t.Fatalf("tx abort of a commit: exit %d: %q", code, stderr)
	}
	cancel()
	if code := <-exit; code != 0 {
		t.Fatalf("exit %d after the stop signal; stderr %q", code, errb.String())
	}
	if !strings.Contains(out.String(), "coordinator stopped") {
		t.Fatalf("stdout %q", out.String())
	}
}

func TestTxCommandUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"tx"}, 2, "usage: concord tx"},
		{[]string{"tx", "frob"}, 2, `unknown subcommand "frob"`},
		{[]string{"tx", "show"}, 2, "exactly one transaction ID"},
		{[]string{"tx", "show", "a", "b"}, 2, "exactly one"},
		{[]string{"tx", "show", "bad id"}, 2, "bad transaction id"},
		{[]string{"tx", "retry"}, 2, "exactly one transaction ID"},
		{[]string{"tx", "abort", "bad id"}, 2, "bad transaction id"},
		{[]string{"tx", "list", "--state", "weird"}, 2, `--state "weird"`},
		{[]string{"tx", "list", "--limit", "0"}, 2, "--limit 0"},
		{[]string{"tx", "list", "--coordinator", "nope"}, 2, "--coordinator"},
		{[]string{"tx", "list", "--coordinator", "http://127.0.0.1:1"}, 1, "concord tx list"},
	} {
		code, _, stderr := runCmd(tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

// --probe-interval reaches the coordinator: its overview reports what the
// probes saw of each participant; 0 turns them off.
func TestCoordinatorCommandProbes(t *testing.T) {
	for _, tc := range []struct{ interval, want string }{{"20ms", "ok"}, {"0", "off"}} {
		flights := testutil.NewParticipant(t, "flights")
		ctx, cancel := context.WithCancel(context.Background())
		out, errb := newLineSignal(), newLineSignal()
		exit := make(chan int, 1)
		go func() {
			exit <- runCoordinator(ctx, []string{"--listen", "127.0.0.1:0", "--data", t.TempDir(),
				"--probe-interval", tc.interval, "--participant", "flights=" + flights.URL}, out, errb)
		}()
		line := <-waitLineAsync(t, out, "serving on http://")
		if line == "" {
			t.Fatalf("no serving line; stderr %q", errb.String())
		}
		url := strings.Fields(line[strings.Index(line, "serving on ")+len("serving on "):])[0]
		var got string
		deadline := time.Now().Add(10 * time.Second)
		for got != tc.want && time.Now().Before(deadline) {
			var o wire.Overview
			if err := wire.Do(ctx, http.DefaultClient, http.MethodGet, url+wire.PathOverview, nil, &o); err != nil {
				t.Fatal(err)
			}
			got = o.Participants[0].Probe
			time.Sleep(5 * time.Millisecond) // a real coordinator probing over real sockets: nothing to wait on
		}
		cancel()
		<-exit
		if got != tc.want {
			t.Errorf("--probe-interval %s: probe %q, want %q", tc.interval, got, tc.want)
		}
	}
	if code, stderr := coordinatorExit(t, "--data", t.TempDir(), "--participant", "flights=http://127.0.0.1:1", "--probe-interval", "-1s"); code != 2 || !strings.Contains(stderr, "ProbeInterval") {
		t.Errorf("negative --probe-interval: exit %d %q", code, stderr)
	}
}
