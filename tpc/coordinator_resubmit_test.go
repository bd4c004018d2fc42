package tpc

import (
	"testing"
	"time"

	"github.com/concordtx/concord"
)

// A transaction begun with BeginResubmittable forces every decision the
// coordinator takes itself before the outcome is reported (abort by a vote,
// by the deadline or by an operator; commit with every participant
// read-only; a one-phase plain vote), and leaves a one-phase outcome its
// participant decided unforced. Begin forces none of the same steps.
func TestResubmittableForcesItsOwnDecisions(t *testing.T) {
	now := scenarioEpoch
	two := []Branch{{Participant: "flights"}, {Participant: "hotels"}}
	one := []Branch{{Participant: "flights"}}
	vote := func(p string, v concord.Vote) func(*CoordinatorTx) Ready {
		return func(tx *CoordinatorTx) Ready { return tx.Vote(VoteEvent{Participant: p, Vote: v}, now) }
	}
	cases := []struct {
		name     string
		branches []Branch
		steps    []func(*CoordinatorTx) Ready
		outcome  concord.Outcome
		forced   bool // with BeginResubmittable
	}{
		{"abort by a no vote", two, []func(*CoordinatorTx) Ready{vote("flights", concord.VoteYes), vote("hotels", concord.VoteNo)},
			concord.OutcomeAborted, true},
		{"abort by an unreachable participant", two, []func(*CoordinatorTx) Ready{vote("hotels", concord.VoteUnreachable)},
			concord.OutcomeAborted, true},
		{"abort at the deadline", two, []func(*CoordinatorTx) Ready{vote("flights", concord.VoteYes),
			func(tx *CoordinatorTx) Ready { return tx.Tick(now.Add(2 * time.Minute)) }},
			concord.OutcomeAborted, true},
		{"operator abort", two, []func(*CoordinatorTx) Ready{func(tx *CoordinatorTx) Ready {
			rd, err := tx.Abort("operator", now)
			if err != nil {
				t.Fatal(err)
			}
			return rd
		}}, concord.OutcomeAborted, true},
		{"commit, every participant read-only", two, []func(*CoordinatorTx) Ready{vote("flights", concord.VoteReadOnly), vote("hotels", concord.VoteReadOnly)},
			concord.OutcomeCommitted, true},
		{"one phase, plain no vote", one, []func(*CoordinatorTx) Ready{vote("flights", concord.VoteNo)},
			concord.OutcomeAborted, true},
		{"one phase, plain read-only vote", one, []func(*CoordinatorTx) Ready{vote("flights", concord.VoteReadOnly)},
			concord.OutcomeCommitted, true},
		{"one phase, aborted by its participant", one, []func(*CoordinatorTx) Ready{func(tx *CoordinatorTx) Ready {
			return tx.Vote(VoteEvent{Participant: "flights", Vote: concord.VoteNo, Outcome: concord.OutcomeAborted}, now)
		}}, concord.OutcomeAborted, true},
		{"one phase, committed by its participant", one, []func(*CoordinatorTx) Ready{func(tx *CoordinatorTx) Ready {
			return tx.Vote(VoteEvent{Participant: "flights", Vote: concord.VoteYes, Outcome: concord.OutcomeCommitted}, now)
		}}, concord.OutcomeCommitted, true},
	}
	for _, tc := range cases {
		for _, resubmittable := range []bool{false, true} {
			begin, label := Begin, "Begin"
			if resubmittable {
				begin, label = BeginResubmittable, "BeginResubmittable"
			}
			t.Run(tc.name+"/"+label, func(t *testing.T) {
				chk := newChecker()
				tx, rd := begin(Config{}, "trip-7", tc.branches, now, now.Add(time.Minute))
				if err := chk.step("trip-7", rd); err != nil {
					t.Fatal(err)
				}
				if rd.MustSync {
					t.Fatal("RecBegin forced")
				}
				var decided Ready
				for _, s := range tc.steps {
					rd := s(tx)
					if err := chk.step("trip-7", rd); err != nil {
						t.Fatal(err)
					}
					if rd.Outcome != concord.OutcomePending {
						decided = rd
					}
				}
				if decided.Outcome != tc.outcome {
					t.Fatalf("outcome %v, want %v", decided.Outcome, tc.outcome)
				}
				if len(decided.Records) == 0 {
					t.Fatal("the decision writes no record")
				}
				if want := tc.forced && resubmittable; decided.MustSync != want {
					t.Fatalf("decision MustSync %v, want %v: %+v", decided.MustSync, want, decided)
				}
			})
		}
	}
}
