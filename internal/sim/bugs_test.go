package sim

import (
	"slices"
	"strings"
	"testing"
)

// TestCheckerBites switches on, one at a time, a deliberately broken
// behaviour of the drivers and asserts that the checker reports it within a
// bounded number of seeds, naming an invariant the bug breaks. Each bug
// runs the same seeds TestSimulation passes with every bug off.
func TestCheckerBites(t *testing.T) {
	const maxSeeds = 300
	cases := []struct {
		name  string
		bugs  Bugs
		store StoreKind
		want  []string // invariants the bug may be caught by
	}{
		{"commit sent before the decision is durable", Bugs{CommitBeforeDurable: true}, FileStore,
			[]string{"stability", "validity", "agreement"}},
		{"participant forgets its prepared state on restart", Bugs{ForgetPreparedOnRestart: true}, FileStore,
			[]string{"no-unilateral-abort", "agreement"}},
		{"timeout aborts after the commit decision", Bugs{AbortAfterCommitTimeout: true}, FileStore,
			[]string{"monotonic", "stability", "agreement"}},
		{"committed transaction forgotten and compacted before every ack", Bugs{ForgetCommittedEarly: true}, FileStore,
			[]string{"presumption", "agreement", "liveness"}},
		{"participant accepts a prepare after it saw the abort", Bugs{AcceptPrepareAfterAbort: true}, FileStore,
			[]string{"no-hanging", "stability"}}, // (a late one-phase PREPARE commits after the ABORT was acknowledged)
		{"store votes yes and acknowledges commits before they are durable", Bugs{UnforcedStore: true}, SimStore,
			[]string{"durability", "no-unilateral-abort", "agreement"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			opts := Options{Bugs: c.bugs, Store: c.store}
			for seed := uint64(1); seed <= maxSeeds; seed++ {
				opts.Seed = seed
				r, err := Run(opts)
				if err != nil {
					t.Fatal(err)
				}
				if len(r.Violations) == 0 {
					continue
				}
				v := r.Violations[0]
				if !slices.Contains(c.want, v.Invariant) {
					t.Fatalf("seed %d: caught as %q, want one of %v: %s\n%s", seed, v.Invariant, c.want, v, traceTail(t, opts, seed, 40))
				}
				t.Logf("caught at seed %d: %s", seed, v)
				tr := traceTail(t, opts, seed, 40)
				if !strings.Contains(tr, "VIOLATION "+v.String()) {
					t.Errorf("the replayed trace of seed %d does not end with its violation:\n%s", seed, tr)
				}
				return
			}
			t.Fatalf("not caught in %d seeds", maxSeeds)
		})
	}
}

// TestDeterministic runs seeds twice and compares their traces: a seed
// replays exactly.
func TestDeterministic(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		a, err := Run(Options{Seed: seed, Trace: true})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Run(Options{Seed: seed, Trace: true})
		if !slices.Equal(a.Trace, b.Trace) {
			i := 0
			for i < len(a.Trace) && i < len(b.Trace) && a.Trace[i] == b.Trace[i] {
				i++
			}
			t.Fatalf("seed %d: traces differ at line %d of %d/%d", seed, i, len(a.Trace), len(b.Trace))
		}
		if len(a.Trace) < 50 {
			t.Fatalf("seed %d: trace of only %d lines", seed, len(a.Trace))
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	bad := []Options{
		{Participants: 9}, {Transactions: -1}, {FaultWindow: -1}, {Store: 7},
		{Faults: &Faults{Crash: 1.5}},
		{Faults: &Faults{Net: NetFaults{Drop: -0.1}}},
		{Faults: &Faults{Net: NetFaults{MinDelay: 2, MaxDelay: 1}}},
		{Faults: &Faults{RestartMax: -1}},
		{Bugs: Bugs{UnforcedStore: true}},
	}
	for _, o := range bad {
		if _, err := Run(o); err == nil {
			t.Errorf("Run(%+v) accepted bad options", o)
		}
	}
}
