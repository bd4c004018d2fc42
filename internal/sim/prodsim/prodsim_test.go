package prodsim

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concordtx/concord/internal/testutil/race"
)

var (
	flagSeeds = flag.Int("seeds", 0, "how many seeds TestProdSimulation runs (0: 2000, 100 under -race; PRODSIM_SEEDS overrides)")
	flagFirst = flag.Uint64("first", 1, "first seed TestProdSimulation runs")
	flagSeed  = flag.Int64("seed", -1, "replay this one seed and print its trace")
	flagLong  = flag.Duration("long", 0, "soak: run seeds for this long instead of -seeds")
)

func seedCount() int {
	if *flagSeeds > 0 {
		return *flagSeeds
	}
	if s := os.Getenv("PRODSIM_SEEDS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	if race.Enabled {
		return 100
	}
	return 2000
}

// runOne runs one seed in its own synctest bubble. Seeds run one at a
// time, with the sync.Pools emptied between them: Pebble (the
// coordinator's remembered set) keeps objects holding channels in a
// package-level sync.Pool, and a channel made in one bubble is fatal to
// use from another.
func runOne(t *testing.T, opts Options) Result {
	var r Result
	synctest.Test(t, func(t *testing.T) { r = Run(opts) })
	runtime.GC() // a pool's objects survive one collection, in its victim cache
	runtime.GC()
	return r
}

// total is the sum of many runs.
type total struct {
	mu                                                      sync.Mutex
	seeds, txs, committed, crashes, partitions, resubmitted int
	conflicts, compactions, snapshots, refused, violations  int
	messages, dropped, duplicated                           int
	failed                                                  []Result
}

func (s *total) add(r Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seeds++
	s.txs += r.Transactions
	s.committed += r.Committed
	s.crashes += r.Crashes
	s.partitions += r.Partitions
	s.resubmitted += r.Resubmissions
	s.conflicts += r.Conflicts
	s.compactions += r.Compactions
	s.snapshots += r.Snapshots
	s.refused += len(r.Refused)
	s.messages += r.Messages
	s.dropped += r.Dropped
	s.duplicated += r.Duplicated
	if len(r.Violations) > 0 {
		s.violations++
		s.failed = append(s.failed, r)
	}
}

func (s *total) String() string {
	return fmt.Sprintf("%d seeds, %d transactions (%d committed), %d crashes, %d partitions, %d resubmissions (%d 409s to changed bodies), %d compactions, %d snapshots, %d refusals after damage at rest, %d messages (%d dropped, %d duplicated), %d violations",
		s.seeds, s.txs, s.committed, s.crashes, s.partitions, s.resubmitted, s.conflicts, s.compactions, s.snapshots, s.refused, s.messages, s.dropped, s.duplicated, s.violations)
}

func replayCommand(seed uint64) string {
	return fmt.Sprintf("go test ./internal/sim/prodsim -run 'TestProdSimulation$' -seed %d", seed)
}

// TestProdSimulation runs the production coordinator and participants
// under simulated time, network, disks and crashes for many seeds and fails
// on any broken invariant, naming the command that replays the seed. With
// -seed it replays one seed and prints its trace.
func TestProdSimulation(t *testing.T) {
	if *flagSeed < 0 && os.Getenv("CONCORD_PRODSIM") == "" {
		// It finds defects still open (docs/operations.md, "Simulation of
		// the production code", lists them): until they are fixed the
		// default test run leaves it out rather than fail on them.
		t.Skip("the production simulation runs with CONCORD_PRODSIM=1 (or -seed N); " +
			"it still finds open defects, listed in docs/operations.md")
	}
	if *flagSeed >= 0 {
		r := runOne(t, Options{Seed: uint64(*flagSeed), Trace: true})
		fmt.Println(strings.Join(r.Trace, "\n"))
		fmt.Printf("seed %d: faults %+v\n", r.Seed, r.Faults)
		fmt.Printf("seed %d: %d transactions at %d participants (%d committed, %d aborted, %d unknown), %d crashes, %d partitions, %d resubmissions, %d compactions, %d snapshots, %d messages, %s simulated, trace hash %x\n",
			r.Seed, r.Transactions, r.Participants, r.Committed, r.Aborted, r.Unknown, r.Crashes, r.Partitions, r.Resubmissions, r.Compactions, r.Snapshots, r.Messages, r.SimTime, r.TraceHash)
		for _, s := range r.Refused {
			fmt.Printf("seed %d: refused: %s\n", r.Seed, s)
		}
		for _, v := range r.Violations {
			t.Errorf("seed %d: %s", r.Seed, v)
		}
		return
	}
	start := time.Now()
	var tot total
	n := seedCount()
	t.Run("seeds", func(t *testing.T) {
		for i := range n {
			if *flagLong > 0 && time.Since(start) > *flagLong {
				break
			}
			if *flagLong > 0 {
				n = i + 1
			}
			seed := *flagFirst + uint64(i)
			t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
				r := runOne(t, Options{Seed: seed, Trace: true})
				if len(r.Violations) == 0 {
					r.Trace = nil // only failing runs keep theirs
				}
				tot.add(r)
			})
		}
	})
	fmt.Printf("prodsim: %s in %s\n", &tot, time.Since(start).Round(time.Millisecond))
	kinds := map[string]int{}
	for _, r := range tot.failed {
		kinds[r.Violations[0].Invariant]++
	}
	if len(kinds) > 0 {
		t.Errorf("failing seeds by their first violated invariant: %v", kinds)
	}
	shown := map[string]int{}
	for _, r := range tot.failed {
		v := r.Violations[0]
		if shown[v.Invariant]++; shown[v.Invariant] > 3 {
			continue // three seeds of each kind
		}
		t.Errorf("seed %d: %s\nreplay: %s", r.Seed, v, replayCommand(r.Seed))
		if shown[v.Invariant] == 1 {
			t.Logf("seed %d: its trace (a replay may differ), %s:\n%s", r.Seed, traceScope(v), strings.Join(traceOf(r.Trace, v), "\n"))
		}
	}
}

// traceOf picks the lines of a failing run's trace that explain v: those
// of its transaction and every crash, restart, partition and heal, or the
// last 60 lines for a violation of no one transaction.
func traceOf(trace []string, v Violation) []string {
	if v.Tx == "" {
		return trace[max(0, len(trace)-60):]
	}
	var out []string
	for _, l := range trace {
		if strings.Contains(l, " "+string(v.Tx)+" ") || strings.Contains(l, string(v.Tx)+":") {
			out = append(out, l)
			continue
		}
		for _, k := range []string{"CRASH", "RESTART", "REFUSES", "HEAL", "PARTITION", "MEND"} {
			if strings.Contains(l, k) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

func traceScope(v Violation) string {
	if v.Tx == "" {
		return "its last 60 lines"
	}
	return "the lines of " + string(v.Tx) + " and every crash, restart and partition"
}

var flagReplay = flag.Int("replay", 0, "TestProdReplay: run each of -seeds seeds (from -first) this many times and report how often its trace replays identically")

// TestProdReplay measures how often a seed replays exactly: goroutine
// scheduling inside a synctest bubble is not fully deterministic, so two
// runs of one seed may draw their random choices in different orders. It
// runs only with -replay.
func TestProdReplay(t *testing.T) {
	if *flagReplay <= 0 {
		t.Skip("measurement: run with -replay N")
	}
	seeds := *flagSeeds
	if seeds == 0 {
		seeds = 20
	}
	same, runs, allSame := 0, 0, 0
	for i := range seeds {
		seed := *flagFirst + uint64(i)
		first := runOne(t, Options{Seed: seed})
		all := true
		for range *flagReplay - 1 {
			r := runOne(t, Options{Seed: seed})
			runs++
			if r.TraceHash == first.TraceHash {
				same++
			} else {
				all = false
			}
		}
		if all {
			allSame++
		}
	}
	fmt.Printf("prodsim replay: %d of %d reruns had the first run's trace hash; %d of %d seeds replayed identically every time (%d runs each)\n",
		same, runs, allSame, seeds, *flagReplay)
}
