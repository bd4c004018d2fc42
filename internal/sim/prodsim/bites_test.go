package prodsim

import (
	"slices"
	"testing"
	"time"
)

// bite runs seeds with a planted bug until the checker reports a violation
// of one of the invariants the bug breaks, and fails if none of up to max
// seeds does.
func bite(t *testing.T, bugs Bugs, faults *Faults, max int, breaks ...string) {
	t.Helper()
	for seed := uint64(1); seed <= uint64(max); seed++ {
		r := runOne(t, Options{Seed: seed, Bugs: bugs, Faults: faults, Transactions: 150})
		for _, v := range r.Violations {
			if slices.Contains(breaks, v.Invariant) {
				t.Logf("seed %d (of up to %d) caught it: %s", seed, max, v)
				return
			}
		}
	}
	t.Errorf("no violation of %q in %d seeds with the bug planted", breaks, max)
}

// crashy is a fault profile of frequent crashes on a mildly faulty network.
var crashy = &Faults{
	Net:        NetFaults{MaxDelay: 5 * time.Millisecond, Drop: 0.02, Duplicate: 0.05},
	CrashEvery: 200 * time.Millisecond, RestartMax: 50 * time.Millisecond,
}

// TestProdCheckerBites plants defects in the production code through its
// test hooks and checks that the simulation catches each.
func TestProdCheckerBites(t *testing.T) {
	t.Run("BatchAnswersBeforeSync", func(t *testing.T) {
		bite(t, Bugs{BatchAnswersBeforeSync: true}, crashy, 300, "atomicity", "committed at every branch", "conservation", "durability")
	})
	t.Run("FirstVoteWins", func(t *testing.T) {
		f := *crashy
		f.Net.Malformed = 0.3
		bite(t, Bugs{FirstVoteWins: true}, &f, 100, "liveness", "committed at every branch", "no reservation held forever")
	})
}
