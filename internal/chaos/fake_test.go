//go:build unix

package chaos

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var fake struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// buildFake builds testdata/fakeconcord, a small stand-in for the concord
// binary with the same command lines, APIs and failpoints, once per test
// binary.
func buildFake(t *testing.T) string {
	t.Helper()
	fake.once.Do(func() {
		fake.dir, fake.err = os.MkdirTemp("", "chaos-fake-")
		if fake.err != nil {
			return
		}
		fake.bin = filepath.Join(fake.dir, "fakeconcord")
		out, err := exec.Command("go", "build", "-o", fake.bin, "./testdata/fakeconcord").CombinedOutput()
		if err != nil {
			fake.err = fmt.Errorf("go build fakeconcord: %v\n%s", err, out)
		}
	})
	if fake.err != nil {
		t.Fatal(fake.err)
	}
	return fake.bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fake.dir != "" {
		os.RemoveAll(fake.dir)
	}
	os.Exit(code)
}

func TestRunAgainstFake(t *testing.T) {
	bin := buildFake(t)
	var progress bytes.Buffer
	sum, err := Run(context.Background(), Options{
		Binary: bin, Dir: t.TempDir(), Seed: 3, Duration: 3 * time.Second, ScarceCapacity: 3,
		FaultEvery: 250 * time.Millisecond, Progress: &progress, ProgressEvery: time.Second,
	})
	if err != nil {
		t.Fatalf("run: %v\nprogress:\n%s", err, progress.String())
	}
	var text bytes.Buffer
	sum.WriteText(&text, "rerun")
	t.Logf("progress:\n%s\nsummary:\n%s", progress.String(), text.String())
	if !sum.Pass {
		t.Fatalf("violations against a correct system:\n%s", strings.Join(sum.Violations, "\n"))
	}
	if sum.KillsTotal == 0 || sum.Committed == 0 || sum.AbortedNo == 0 {
		t.Fatalf("a run without kills or without both outcomes proves little:\n%s", text.String())
	}
}

// TestRunCatchesAForgetfulParticipant shows that the checker bites: services
// that forget their committed reservations when they restart must produce
// violations. (Forgetting prepared state is a bug too, but a kill lands in
// the short window between a yes vote and the COMMIT too rarely for a
// deterministic test; the simulator covers it.)
func TestRunCatchesAForgetfulParticipant(t *testing.T) {
	bin := buildFake(t)
	var progress bytes.Buffer
	sum, err := Run(context.Background(), Options{
		Binary: bin, Dir: t.TempDir(), Seed: 5, Duration: 4 * time.Second,
		FaultEvery: 250 * time.Millisecond, SettleTimeout: 2 * time.Second,
		Progress: &progress, ParticipantArgs: []string{"--bug", "forget-committed"},
	})
	if err != nil {
		t.Fatalf("run: %v\nprogress:\n%s", err, progress.String())
	}
	if sum.Kills["flights"]+sum.Kills["hotels"]+sum.Kills["cars"]+sum.GracefulStops == 0 {
		t.Fatal("no service was restarted: the schedule of this seed cannot show the bug")
	}
	if sum.Pass || len(sum.Violations) == 0 {
		var text bytes.Buffer
		sum.WriteText(&text, "rerun")
		t.Fatalf("no violation found in a system that loses committed state:\n%s", text.String())
	}
	t.Logf("%d violations, e.g. %s", len(sum.Violations), sum.Violations[0])
}

// TestRunReportsAProcessThatCannotRestart: a coordinator that does not come
// back on its own data directory is a violation, not a harness error.
func TestRunReportsAProcessThatCannotRestart(t *testing.T) {
	bin := buildFake(t)
	var progress bytes.Buffer
	sum, err := Run(context.Background(), Options{
		Binary: bin, Dir: t.TempDir(), Seed: 11, Duration: 20 * time.Second,
		FaultEvery: 200 * time.Millisecond, Progress: &progress,
		CoordinatorArgs: []string{"--bug", "no-restart"},
	})
	if err != nil {
		t.Fatalf("run: %v\nprogress:\n%s", err, progress.String())
	}
	if sum.Pass || !strings.Contains(strings.Join(sum.Violations, "\n"), "coordinator did not come back") {
		t.Fatalf("violations %q, want the coordinator's failed restart", sum.Violations)
	}
}
