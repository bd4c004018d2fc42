package coordinator

import (
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/wire"
)

// Only the answer that may complete the votes, or one that aborts, is
// stepped on a goroutine of its own.
func TestMayDecide(t *testing.T) {
	yes := []wire.VoteReply{{ID: "t", Vote: concord.VoteYes}}
	tx := &txState{id: "t"}
	tx.answersLeft.Store(3)
	if mayDecide(tx, yes) || mayDecide(tx, []wire.VoteReply{{ID: "t", Vote: concord.VoteReadOnly}}) {
		t.Error("a yes with two more answers to come may decide")
	}
	if !mayDecide(tx, yes) {
		t.Error("the last yes may not decide")
	}
	other := &txState{id: "u"}
	other.answersLeft.Store(3)
	for _, vs := range [][]wire.VoteReply{nil, {{Vote: concord.VoteNo}}, {{Vote: concord.VoteUnreachable}},
		{{Vote: concord.VoteYes, Outcome: concord.OutcomeCommitted}}} {
		if !mayDecide(other, vs) {
			t.Errorf("%+v may not decide", vs)
		}
	}
	if n := other.answersLeft.Load(); n != 3 {
		t.Errorf("answers left %d after answers that decide anyway, want 3", n)
	}
	if !mayDecide(&txState{}, yes) {
		t.Error("a yes for a transaction whose answers are not counted may not decide")
	}
}
