package tpc

import (
	"fmt"
	"testing"
	"time"

	"github.com/concordtx/concord"
)

// TestParticipantRetainsNewest checks that exactly the Retain most recently
// decided transactions are remembered, oldest forgotten first, also once
// the record of decided transactions has wrapped around several times.
func TestParticipantRetainsNewest(t *testing.T) {
	const retain = 5
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	p := NewParticipant(ParticipantConfig{Retain: retain})
	id := func(i int) concord.TxID { return concord.TxID(fmt.Sprintf("tx-%d", i)) }
	var req uint64
	for i := range 4*retain + 2 {
		req++
		p.Prepare(req, id(i), nil, false, "", now)
		p.Done(ParticipantResult{Kind: ActPrepare, ID: id(i), Vote: concord.VoteReadOnly}, now)
		for j := 0; j <= i; j++ {
			_, ok := p.Lookup(id(j))
			if want := j > i-retain; ok != want {
				t.Fatalf("after deciding %s: Lookup(%s) = %v, want %v", id(i), id(j), ok, want)
			}
		}
		if want := min(i+1, retain); p.Len() != want {
			t.Fatalf("after deciding %s: Len() = %d, want %d", id(i), p.Len(), want)
		}
	}
}

// TestParticipantInDoubtSet checks the in-doubt set as transactions leave
// it in an order other than the one they joined it in.
func TestParticipantInDoubtSet(t *testing.T) {
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	p := NewParticipant(ParticipantConfig{InDoubtAfter: time.Second})
	id := func(i int) concord.TxID { return concord.TxID(fmt.Sprintf("tx-%d", i)) }
	var req uint64
	const n = 8
	for i := range n {
		req++
		p.Prepare(req, id(i), nil, false, "", now)
		p.Done(ParticipantResult{Kind: ActPrepare, ID: id(i), Vote: concord.VoteYes}, now)
	}
	left := map[concord.TxID]bool{}
	for i := range n {
		left[id(i)] = true
	}
	for _, i := range []int{3, 0, 7, 4} {
		req++
		p.Commit(req, id(i), now)
		delete(left, id(i))
		got := p.InDoubt()
		if len(got) != len(left) {
			t.Fatalf("after committing %s: %d in doubt, want %d", id(i), len(got), len(left))
		}
		for _, s := range got {
			if !left[s.ID] || s.State != PartPrepared {
				t.Fatalf("after committing %s: %s in doubt in state %s", id(i), s.ID, s.State)
			}
		}
	}
	// A failed commit puts one back; Tick then asks about every one left.
	p.Done(ParticipantResult{Kind: ActCommit, ID: id(7), Err: PErrFailed}, now)
	left[id(7)] = true
	rd := p.Tick(now.Add(time.Hour))
	if len(rd.Actions) != len(left) {
		t.Fatalf("Tick asked %d actions, want %d", len(rd.Actions), len(left))
	}
	for i, a := range rd.Actions {
		if a.Kind != ActQuery || !left[a.ID] || (i > 0 && rd.Actions[i-1].ID >= a.ID) {
			t.Fatalf("Tick action %d: %s %s", i, a.Kind, a.ID)
		}
	}
}

// TestParticipantResultNamesItsTransaction checks that a result made by
// ParticipantAction.Result is applied as one naming the transaction by id
// would be: to the transaction the machine holds for that id now, also
// after the one the action was about has left the table, and on another
// machine.
func TestParticipantResultNamesItsTransaction(t *testing.T) {
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	p := NewParticipant(ParticipantConfig{})
	rd := p.Commit(1, "x", now) // unknown here: the resource is asked
	if len(rd.Actions) != 1 || rd.Actions[0].Kind != ActCommit {
		t.Fatalf("commit of an unknown transaction: %+v", rd)
	}
	stale := rd.Actions[0].Result()
	res := rd.Actions[0].Result()
	res.Err = PErrUnknownTx
	rd = p.Done(res, now) // the resource does not know it either: forgotten
	if len(rd.Replies) != 1 || rd.Replies[0].Kind != ReplyFailure {
		t.Fatalf("commit of a transaction the resource does not know: %+v", rd)
	}
	if _, ok := p.Lookup("x"); ok {
		t.Fatal("a transaction nobody knows is still remembered")
	}
	rd = p.Commit(2, "x", now) // asked again: a new entry, a new call
	if len(rd.Actions) != 1 || rd.Actions[0].Kind != ActCommit {
		t.Fatalf("second commit: %+v", rd)
	}
	// The first call's result, reported late, names the transaction that
	// left the table: it applies to the one held for x now, as a result
	// naming x by id would.
	rd = p.Done(stale, now)
	if len(rd.Replies) != 1 || rd.Replies[0].Req != 2 || rd.Replies[0].Kind != ReplyAck {
		t.Fatalf("late result of the first call: %+v, want request 2 acknowledged", rd)
	}

	// A result reported to a machine other than the one that asked for the
	// call applies to that machine's transaction of the same id.
	a, b := NewParticipant(ParticipantConfig{}), NewParticipant(ParticipantConfig{})
	rdA := a.Prepare(1, "y", nil, false, "", now)
	rdB := b.Prepare(1, "y", nil, false, "", now)
	res = rdA.Actions[0].Result()
	res.Vote = concord.VoteYes
	if rd := b.Done(res, now); len(rd.Replies) != 1 || rd.Replies[0].Vote != concord.VoteYes {
		t.Fatalf("result reported to the other machine: %+v", rd)
	}
	if st, _ := a.Lookup("y"); st.State != PartPreparing {
		t.Fatalf("the machine that asked went on to %s on a result reported elsewhere", st.State)
	}
	res = rdB.Actions[0].Result()
	res.Vote = concord.VoteYes
	if rd := a.Done(res, now); len(rd.Replies) != 1 || rd.Replies[0].Vote != concord.VoteYes {
		t.Fatalf("result reported to the first machine: %+v", rd)
	}
}
