package coordinator_test

import (
	"encoding/json"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/testutil"
	"github.com/concordtx/concord/wire"
)

// An outcome given for an id the client chose survives a power loss right
// after the answer. Presumed abort leaves an abort (and a commit with every
// participant read-only) unforced; if its records were lost, a resubmission
// of the same id and body would run the transaction again and, with the
// participants now willing (they forgot their no vote, their abort, or
// voted read-only and kept nothing), could come out the other way: two
// contradicting answers for one idempotency key.
func TestClientIDOutcomeSurvivesPowerLoss(t *testing.T) {
	yes := func(concord.TxID, json.RawMessage) (concord.Vote, string) { return concord.VoteYes, "" }
	ro := func(concord.TxID, json.RawMessage) (concord.Vote, string) { return concord.VoteReadOnly, "" }
	cases := []struct {
		name string
		want concord.Outcome
		// first sets the participants up for the first attempt; again,
		// after the power loss, makes a rerun come out the other way.
		first, again func(e *env)
	}{
		{"aborted by a no vote", concord.OutcomeAborted,
			func(e *env) { e.parts["hotels"].SetVote(voteNoFor("full")) },
			func(e *env) { e.parts["hotels"].SetVote(yes) }},
		{"aborted, a participant unreachable", concord.OutcomeAborted,
			func(e *env) { e.parts["hotels"].SetPathMode(wire.PathPrepare, testutil.Down) },
			func(e *env) { e.parts["hotels"].SetPathMode(wire.PathPrepare, testutil.Normal) }},
		{"committed, every participant read-only", concord.OutcomeCommitted,
			func(e *env) {
				e.parts["flights"].SetVote(ro)
				e.parts["hotels"].SetVote(ro)
			},
			func(e *env) {
				e.parts["flights"].SetVote(yes)
				e.parts["hotels"].SetVote(voteNoFor("full"))
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			const id = "trip-7"
			req := wire.SubmitRequest{ID: id, Branches: branches("flights", "hotels")}
			e := newEnv(t, "flights", "hotels")
			tc.first(e)
			e.start()
			if r := e.submit(req); r.Outcome != tc.want {
				t.Fatalf("first attempt: %v (%s), want %v", r.Outcome, r.Reason, tc.want)
			}
			// Let the ABORTs land, so that nothing in flight from the first
			// coordinator touches the participants afterwards.
			eventually(t, "the ABORTs to be delivered", func() bool {
				n := e.parts["flights"].Count(wire.PathAbort) + e.parts["hotels"].Count(wire.PathAbort)
				return int64(n) == e.c.Stats().AbortMessages
			})

			e.restart() // power loss: whatever was not synced is gone
			// The participants forget the transaction (a no vote and an
			// abort need not be kept) and would now vote the other way.
			for _, p := range e.parts {
				p.SetState(id, "")
			}
			tc.again(e)
			prepares := e.parts["flights"].Count(wire.PathPrepare) + e.parts["hotels"].Count(wire.PathPrepare)

			if r := e.submit(req); r.Outcome != tc.want {
				t.Fatalf("resubmission of %s after the power loss: %v (%s); the first answer was %v", id, r.Outcome, r.Reason, tc.want)
			}
			for name, p := range e.parts {
				if s := p.State(id); s == "committed" || s == "prepared" {
					t.Errorf("%s holds %s %q after the resubmission; it must not run again", name, id, s)
				}
			}
			if n := e.parts["flights"].Count(wire.PathPrepare) + e.parts["hotels"].Count(wire.PathPrepare); n != prepares {
				t.Errorf("%d PREPARE sent for the resubmission; the outcome on record must answer it", n-prepares)
			}
		})
	}
}
