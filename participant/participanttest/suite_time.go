package participanttest

import (
	"strings"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
)

// decisions makes n decisions on fresh transactions (prepared and
// committed, prepared and aborted, refused, aborted before prepare), all
// with deadlines 30 seconds ahead: the traffic between a decision and its
// late message.
func (s *suite) decisions(t *testing.T, r participant.Resource, first, n int) {
	t.Helper()
	ctx := ctxFor(t)
	for i := first; i < first+n; i++ {
		id := s.id(t, i)
		switch i % 4 {
		case 0:
			s.mustPrepare(t, r, id, s.h.Yes(i), concord.VoteYes)
			mustErr(t, "Commit", r.Commit(ctx, id), nil)
		case 1:
			s.mustPrepare(t, r, id, s.h.Yes(i), concord.VoteYes)
			mustErr(t, "Abort", r.Abort(ctx, id), nil)
		case 2:
			s.mustPrepare(t, r, id, s.h.No(i), concord.VoteNo)
		default:
			mustErr(t, "Abort before prepare", r.Abort(ctx, id), nil)
		}
	}
}

// lateOnePhaseAfterAbort: an ABORT that arrived before its PREPARE is
// remembered for a time, not a count: a PREPARE still in flight (its
// deadline ahead) is refused however many decisions were made since, and
// across a crash.
func (s *suite) lateOnePhaseAfterAbort(t *testing.T) {
	r, restart := s.h.New(t, s.env())
	ctx := ctxFor(t)
	a, b := s.id(t, 0), s.id(t, 1)
	mustErr(t, "Abort of an unknown transaction", r.Abort(ctx, a), nil)
	mustErr(t, "Abort of an unknown transaction", r.Abort(ctx, b), nil)
	// The coordinator began them at most MaxLifetime ago: their PREPAREs
	// may still arrive until then, and carry a deadline still ahead.
	s.clock.Advance(s.retention.MaxLifetime - time.Second)
	s.decisions(t, r, 100, 200)
	r = restart(t)
	s.decisions(t, r, 300, 40)
	late := participant.PrepareInfo{Deadline: s.clock.Now().Add(time.Second), Coordinator: suiteCoordinator}
	if op, ok := r.(participant.OnePhaseResource); ok {
		o, reason, err := op.CommitOnePhase(ctx, a, s.h.Yes(0), late)
		if err != nil || o != concord.OutcomeAborted {
			t.Fatalf("a one-phase PREPARE %v after its abort, 240 decisions and a crash = %s %v: the client was told aborted", s.retention.MaxLifetime, o, err)
		}
		if reason == "" {
			t.Error("the refusal has no reason")
		}
	}
	mustPrepareWith(t, r, b, s.h.Yes(1), late, concord.VoteNo)
	wantRecovered(t, r, nil, []concord.TxID{a, b})
	mustErr(t, "Commit after the abort", r.Commit(ctx, b), participant.ErrAlreadyDecided)
}

// pastDeadline: a PREPARE for a transaction the resource does not know,
// arriving after its deadline by the resource's clock, votes no and leaves
// nothing behind: not prepared, and no decision remembered (a COMMIT of it
// is unknown); one for a transaction it holds prepared votes yes again.
func (s *suite) pastDeadline(t *testing.T) {
	r, _ := s.h.New(t, s.env())
	ctx := ctxFor(t)
	a, b := s.id(t, 1), s.id(t, 2)
	past := participant.PrepareInfo{Deadline: s.clock.Now().Add(-time.Millisecond), Coordinator: suiteCoordinator}
	got, err := r.Prepare(ctx, a, s.h.Yes(1), past)
	if err != nil || got.Vote != concord.VoteNo {
		t.Fatalf("Prepare past its deadline = %+v, %v; want a no vote", got, err)
	}
	if !strings.Contains(got.Reason, "deadline") {
		t.Errorf("the refusal's reason %q does not name the deadline", got.Reason)
	}
	wantRecovered(t, r, nil, []concord.TxID{a})
	mustErr(t, "Commit of a PREPARE refused past its deadline", r.Commit(ctx, a), participant.ErrUnknownTx)
	if op, ok := r.(participant.OnePhaseResource); ok {
		o, _, err := op.CommitOnePhase(ctx, b, s.h.Yes(2), past)
		if err != nil || o != concord.OutcomeAborted {
			t.Fatalf("one-phase PREPARE past its deadline = %s %v; want aborted", o, err)
		}
		mustErr(t, "Commit of a one-phase PREPARE refused past its deadline", r.Commit(ctx, b), participant.ErrUnknownTx)
	}
	s.wantRemembered(t, r, s.prefixOf(t), 0)

	// A transaction the resource holds is answered from what it holds,
	// whatever the time: a prepared one votes yes again past its deadline.
	c := s.id(t, 3)
	soon := participant.PrepareInfo{Deadline: s.clock.Now().Add(time.Second), Coordinator: suiteCoordinator}
	mustPrepareWith(t, r, c, s.h.Yes(3), soon, concord.VoteYes)
	s.clock.Advance(2 * time.Second)
	mustPrepareWith(t, r, c, s.h.Yes(3), soon, concord.VoteYes)
	wantRecovered(t, r, []concord.TxID{c}, nil)
	mustErr(t, "Commit of the prepared one", r.Commit(ctx, c), nil)
}

// duplicateOfCommitted: a duplicate PREPARE of a committed transaction
// never reserves again, neither while the commit is remembered (however
// many decisions later) nor once it is forgotten (its deadline is then
// past, so it is refused).
func (s *suite) duplicateOfCommitted(t *testing.T) {
	r, _ := s.h.New(t, s.env())
	ctx := ctxFor(t)
	a, b := s.id(t, 0), s.id(t, 1)
	info := s.info()
	mustPrepareWith(t, r, a, s.h.Yes(0), info, concord.VoteYes)
	mustErr(t, "Commit", r.Commit(ctx, a), nil)
	op, onePhase := r.(participant.OnePhaseResource)
	if onePhase {
		if o, _, err := op.CommitOnePhase(ctx, b, s.h.Yes(1), info); err != nil || o != concord.OutcomeCommitted {
			t.Fatalf("CommitOnePhase = %s %v", o, err)
		}
	}
	s.clock.Advance(20 * time.Second)
	s.decisions(t, r, 100, 200)
	mustPrepareWith(t, r, a, s.h.Yes(0), info, concord.VoteYes) // the earlier vote
	wantRecovered(t, r, nil, []concord.TxID{a})
	mustErr(t, "Abort of the committed one", r.Abort(ctx, a), participant.ErrAlreadyDecided)

	s.clock.Advance(info.Deadline.Add(s.retention.ClockSkew).Sub(s.clock.Now()) + time.Second)
	s.decisions(t, r, 300, 4)
	s.wantRemembered(t, r, string(a), 0) // forgotten (a resource may forget later than it may; this makes it now)
	mustPrepareWith(t, r, a, s.h.Yes(0), info, concord.VoteNo)
	wantRecovered(t, r, nil, []concord.TxID{a})
	if onePhase {
		if o, _, err := op.CommitOnePhase(ctx, b, s.h.Yes(1), info); err != nil || o != concord.OutcomeAborted {
			t.Fatalf("a duplicate one-phase PREPARE after the commit was forgotten = %s %v; want refused (its deadline passed), not committed again", o, err)
		}
	}
}

// forgotten: decisions are remembered until their deadline plus the skew
// allowance, and forgotten after it, so that what a resource holds is
// bounded by the rate of transactions times (timeout + skew). Prepared
// transactions are never forgotten.
func (s *suite) forgotten(t *testing.T) {
	r, restart := s.h.New(t, s.env())
	ctx := ctxFor(t)
	start := s.clock.Now()
	s.decisions(t, r, 0, 40) // 10 of them aborted before prepare
	held := s.id(t, 1000)
	s.mustPrepare(t, r, held, s.h.Yes(1000), concord.VoteYes)
	prefix := s.prefixOf(t)
	s.wantRemembered(t, r, prefix, 41)

	// Until deadline + skew every decision is kept; then the ones with a
	// deadline go, the aborts before prepare (whose PREPARE may carry a
	// deadline up to MaxLifetime + skew later) later.
	// The rule spelt out, not read from participant.Retention: deadline +
	// ClockSkew, and for an abort before prepare its time + MaxLifetime +
	// 2 ClockSkew.
	s.clock.Advance(start.Add(30*time.Second + s.retention.ClockSkew).Sub(s.clock.Now()))
	s.wantRemembered(t, r, prefix, 41)
	s.clock.Advance(time.Second)
	s.wantRemembered(t, r, prefix, 11)
	r = restart(t)
	s.wantRemembered(t, r, prefix, 11)
	s.clock.Advance(start.Add(s.retention.MaxLifetime + 2*s.retention.ClockSkew).Sub(s.clock.Now()))
	s.wantRemembered(t, r, prefix, 11)
	s.clock.Advance(time.Second)
	s.wantRemembered(t, r, prefix, 1)
	wantRecovered(t, r, []concord.TxID{held}, nil)
	mustErr(t, "Commit of the prepared one", r.Commit(ctx, held), nil)
}

// keepsCoordinator: a prepared transaction keeps the coordinator its
// PREPARE named, across a crash, for the in-doubt query to ask.
func (s *suite) keepsCoordinator(t *testing.T) {
	r, restart := s.h.New(t, s.env())
	a, b := s.id(t, 1), s.id(t, 2)
	refA := participant.CoordinatorRef{URLs: []string{"https://coordinator-a.example:7070"}, Identity: "coordinator-a"}
	refB := participant.CoordinatorRef{URLs: []string{"http://127.0.0.1:7171/"}}
	mustPrepareWith(t, r, a, s.h.Yes(1), participant.PrepareInfo{Deadline: s.clock.Now().Add(time.Second), Coordinator: refA}, concord.VoteYes)
	mustPrepareWith(t, r, b, s.h.Yes(2), participant.PrepareInfo{Deadline: s.clock.Now().Add(time.Second), Coordinator: refB}, concord.VoteYes)
	r = restart(t)
	txs, err := r.Recover(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	got := map[concord.TxID]participant.CoordinatorRef{}
	for _, tx := range txs {
		got[tx.ID] = tx.Coordinator
	}
	if !got[a].Equal(refA) || !got[b].Equal(refB) {
		t.Fatalf("after a crash Recover names coordinators %+v and %+v; want %+v and %+v", got[a], got[b], refA, refB)
	}
	ctx := ctxFor(t)
	mustErr(t, "Commit", r.Commit(ctx, a), nil)
	mustErr(t, "Abort", r.Abort(ctx, b), nil)
}

// prefixOf is the id prefix of t's transactions.
func (s *suite) prefixOf(t *testing.T) string {
	id := string(s.id(t, 0))
	return id[:len(id)-1]
}

func (s *suite) wantRemembered(t *testing.T, r participant.Resource, prefix string, want int) {
	t.Helper()
	rm, ok := r.(Remembering)
	if !ok {
		t.Fatalf("the resource does not implement participanttest.Remembering: the suite cannot check that it forgets")
	}
	n, err := rm.Remembered(ctxFor(t), prefix)
	if err != nil {
		t.Fatalf("Remembered = %v", err)
	}
	if n != want {
		t.Fatalf("the resource remembers %d transactions at %v, want %d", n, s.clock.Now().Format(time.RFC3339), want)
	}
}
