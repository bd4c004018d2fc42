//go:build unix

package chaos

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var (
	chaosSeed     = flag.Uint64("chaos.seed", 1, "seed of TestChaosRealProcesses")
	chaosDuration = flag.Duration("chaos.duration", 60*time.Second, "fault phase of TestChaosRealProcesses")
)

// TestChaosRealProcesses builds the concord binary once and runs a chaos
// run of real processes: a coordinator and the three travel services, killed
// with SIGKILL at random moments and at failpoints, their traffic cut,
// delayed, duplicated and reset, while clients book. It passes only with no
// violation and at least ten kills.
func TestChaosRealProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of real processes; run without -short")
	}
	dir, err := os.MkdirTemp("", "concord-chaos-test-")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "concord")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/concordtx/concord/cmd/concord").CombinedOutput(); err != nil {
		t.Fatalf("go build concord: %v\n%s", err, out)
	}
	var progress io.Writer = io.Discard
	if testing.Verbose() {
		progress = os.Stderr
	}
	sum, err := Run(context.Background(), Options{
		Binary: bin, Dir: filepath.Join(dir, "run"), Seed: *chaosSeed, Duration: *chaosDuration,
		FaultEvery: 1200 * time.Millisecond, Progress: progress,
	})
	if err != nil {
		t.Fatalf("chaos run could not be carried out: %v (seed %d; logs in %s)", err, *chaosSeed, dir)
	}
	var text bytes.Buffer
	sum.WriteText(&text, fmt.Sprintf("go test ./internal/chaos -run TestChaosRealProcesses -chaos.seed %d", *chaosSeed))
	var problems []string
	if !sum.Pass {
		problems = append(problems, fmt.Sprintf("%d violations", len(sum.Violations)))
	}
	if *chaosDuration >= 60*time.Second && sum.KillsTotal < 10 {
		problems = append(problems, fmt.Sprintf("only %d kills, want at least 10", sum.KillsTotal))
	}
	if !sum.Compaction.Checked || !sum.Compaction.Compacted {
		problems = append(problems, "the coordinator's log was not seen compacted")
	}
	if sum.Committed == 0 || sum.AbortedNo == 0 {
		problems = append(problems, "want committed bookings and bookings a service refused (sold out)")
	}
	if len(problems) > 0 {
		t.Fatalf("%s\n%s", strings.Join(problems, "; "), text.String())
	}
	// One line in CI's output, pass or fail.
	fmt.Printf("chaos: seed %d, %d transactions (%d committed, %d aborted), %d kills, %d/%d failpoints fired, %d partitions, %d violations\n",
		sum.Seed, sum.Transactions, sum.Committed, sum.Aborted, sum.KillsTotal, sum.FiredTotal, sumInts(sum.FailpointsArmed), sum.Partitions, len(sum.Violations))
	os.RemoveAll(dir)
}
