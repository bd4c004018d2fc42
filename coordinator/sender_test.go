package coordinator

import (
	"fmt"
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

// A batch sends each transaction once, whether the set is scanned or
// hashed.
func TestTxSet(t *testing.T) {
	txs := make([]*txState, 3*txSetScan)
	for i := range txs {
		txs[i] = &txState{id: concord.TxID(string(rune('a' + i)))}
	}
	var s txSet
	for i, tx := range txs {
		if !s.add(tx) {
			t.Fatalf("add %d: the first add of a transaction is refused", i)
		}
		if s.add(tx) || s.add(txs[i/2]) {
			t.Fatalf("add %d: a repeat is added", i)
		}
	}
	if len(s.txs) != len(txs) {
		t.Fatalf("%d in the set, want %d", len(s.txs), len(txs))
	}
	for i := range txs {
		if s.txs[i] != txs[i] {
			t.Fatalf("txs[%d] out of order", i)
		}
	}
}

// Votes are matched to the transactions asked, in order or not, with
// repeats kept, strangers ignored and the missing left empty.
func TestGroupVotes(t *testing.T) {
	a, b, c := &txState{id: "a"}, &txState{id: "b"}, &txState{id: "c"}
	txs := []*txState{a, b, c}
	v := func(id concord.TxID, vote concord.Vote) wire.VoteReply { return wire.VoteReply{ID: id, Vote: vote} }
	ids := func(g [][]wire.VoteReply) [][]concord.Vote {
		out := make([][]concord.Vote, len(g))
		for i, vs := range g {
			for _, x := range vs {
				if x.ID != txs[i].id {
					t.Fatalf("vote on %s grouped under %s", x.ID, txs[i].id)
				}
				out[i] = append(out[i], x.Vote)
			}
		}
		return out
	}
	yes, no := concord.VoteYes, concord.VoteNo
	for _, tc := range []struct {
		name  string
		votes []wire.VoteReply
		want  [][]concord.Vote
	}{
		{"in order", []wire.VoteReply{v("a", yes), v("b", no), v("c", yes)}, [][]concord.Vote{{yes}, {no}, {yes}}},
		{"in order but one", []wire.VoteReply{v("a", yes), v("b", no), v("x", yes)}, [][]concord.Vote{{yes}, {no}, nil}},
		{"out of order", []wire.VoteReply{v("c", yes), v("a", yes), v("b", no)}, [][]concord.Vote{{yes}, {no}, {yes}}},
		{"one missing, a stranger", []wire.VoteReply{v("a", yes), v("x", no), v("c", no)}, [][]concord.Vote{{yes}, nil, {no}}},
		{"a repeat", []wire.VoteReply{v("a", yes), v("b", yes), v("a", no), v("c", yes)}, [][]concord.Vote{{yes, no}, {yes}, {yes}}},
		{"none", nil, [][]concord.Vote{nil, nil, nil}},
	} {
		g := groupVotes(txs, tc.votes)
		if g == nil { // one each, in order
			for i := range txs {
				g = append(g, tc.votes[i:i+1])
			}
		}
		got := ids(g)
		for i := range tc.want {
			if len(got[i]) != len(tc.want[i]) || (len(got[i]) > 0 && fmt.Sprint(got[i]) != fmt.Sprint(tc.want[i])) {
				t.Errorf("%s: votes on %s = %v, want %v", tc.name, txs[i].id, got[i], tc.want[i])
			}
		}
	}
}

// Only an answer acknowledging exactly the ids asked, in order, takes the
// path that matches nothing by id.
func TestAckedInOrder(t *testing.T) {
	ids := []concord.TxID{"a", "b"}
	for _, tc := range []struct {
		resp wire.DecisionResponse
		want bool
	}{
		{wire.DecisionResponse{Acknowledged: []concord.TxID{"a", "b"}}, true},
		{wire.DecisionResponse{Acknowledged: []concord.TxID{"b", "a"}}, false},
		{wire.DecisionResponse{Acknowledged: []concord.TxID{"a"}}, false},
		{wire.DecisionResponse{Acknowledged: []concord.TxID{"a", "b"}, Failed: []wire.TxFailure{{ID: "b"}}}, false},
		{wire.DecisionResponse{Acknowledged: []concord.TxID{"a", "b", "b"}}, false},
	} {
		if got := ackedInOrder(ids, tc.resp); got != tc.want {
			t.Errorf("ackedInOrder(%v, %+v) = %v, want %v", ids, tc.resp, got, tc.want)
		}
	}
}
