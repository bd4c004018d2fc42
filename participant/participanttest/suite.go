package participanttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
)

// Harness describes a Resource backend to the conformance suite.
type Harness struct {
	// New opens a resource on fresh, empty storage (or on storage shared
	// with other tests, as long as transaction ids do not collide: the
	// suite uses unique ids). It returns the resource and a Restart
	// function that simulates a crash of the process using it: it drops
	// the resource with no clean shutdown, losing whatever the resource had
	// not made durable, and opens a new one on the same storage. New and
	// Restart fail t themselves on error and register their own cleanup.
	//
	// The resource, and every one Restart opens, must take its time from
	// env.Now and its time rule from env.Retention: the suite moves the
	// clock to check what is remembered and for how long.
	New func(t *testing.T, env Env) (r participant.Resource, restart func(t *testing.T) participant.Resource)
	// Yes returns a payload the resource votes yes on. Payloads for
	// different n must not conflict: the suite prepares many at once.
	Yes func(n int) json.RawMessage
	// No returns a payload the resource votes no on.
	No func(n int) json.RawMessage
	// Concurrency is how many transactions the concurrency test runs at
	// once; 0 means 32.
	Concurrency int
	// Transactions is how many transactions the concurrency test runs in
	// all; 0 means 8 times Concurrency.
	Transactions int
}

// Env is what the suite gives a backend to open a resource with.
type Env struct {
	// Now is the resource's clock, a FakeClock the suite moves.
	Now func() time.Time
	// Retention is the time rule the resource must apply.
	Retention participant.Retention
}

// Remembering is implemented by a resource that can count the decided and
// prepared transactions it holds a record of. The suite needs it to check
// that decisions are forgotten once their time has passed, so that memory
// stays bounded by the rate of transactions, not by their number.
type Remembering interface {
	// Remembered counts the transactions whose id starts with prefix that
	// the resource holds a record of, after forgetting every decision
	// whose time (participant.Retention.ForgetAt) has passed by its clock.
	Remembered(ctx context.Context, prefix string) (int, error)
}

// Run runs the conformance suite against the backend h describes. Each
// check is a subtest, so one can be run alone with -run.
func Run(t *testing.T, h Harness) {
	if h.New == nil || h.Yes == nil || h.No == nil {
		t.Fatal("participanttest: Harness needs New, Yes and No")
	}
	if h.Concurrency <= 0 {
		h.Concurrency = 32
	}
	if h.Transactions <= 0 {
		h.Transactions = 8 * h.Concurrency
	}
	s := &suite{h: h, prefix: randomPrefix(),
		clock:     NewFakeClock(time.Now().UTC().Truncate(time.Millisecond)),
		retention: participant.Retention{MaxLifetime: time.Minute, ClockSkew: 30 * time.Second}}
	for _, c := range []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"PrepareCommit", s.prepareCommit},
		{"PrepareAbort", s.prepareAbort},
		{"VoteNo", s.voteNo},
		{"Duplicates", s.duplicates},
		{"CommitUnknown", s.commitUnknown},
		{"LatePrepareAfterAbort", s.latePrepare},
		{"DecidedTheOtherWay", s.decidedOtherWay},
		{"PreparedSurvivesCrash", s.preparedSurvivesCrash},
		{"CommitSurvivesCrash", s.commitSurvivesCrash},
		{"AbortBeforePrepareSurvivesCrash", s.abortBeforePrepareSurvivesCrash},
		{"OnePhase", s.onePhase},
		{"OnePhaseRefusalSurvivesCrash", s.onePhaseRefusalSurvivesCrash},
		{"Concurrent", s.concurrent},
		{"Batch", s.batch},
		{"OnePhaseBatch", s.onePhaseBatch},
		{"InDoubtAskedAfterCrash", s.inDoubt},
		{"WireProtocol", s.wireProtocol},
		{"LateOnePhaseAfterAbortRemembered", s.lateOnePhaseAfterAbort},
		{"PastDeadlineRefusedRemembersNothing", s.pastDeadline},
		{"DuplicateOfCommittedNeverReserves", s.duplicateOfCommitted},
		{"DecisionsForgottenAfterDeadlinePlusSkew", s.forgotten},
		{"PreparedKeepsCoordinator", s.keepsCoordinator},
		{"ForgottenCommitAcknowledgedPastDeadline", s.forgottenCommit},
	} {
		t.Run(c.name, c.fn)
	}
}

type suite struct {
	h         Harness
	prefix    string
	clock     *FakeClock
	retention participant.Retention
}

// env is the Env every resource of the suite is opened with.
func (s *suite) env() Env { return Env{Now: s.clock.Now, Retention: s.retention} }

// suiteCoordinator is the coordinator the suite's PREPAREs name.
var suiteCoordinator = participant.CoordinatorRef{URLs: []string{"http://127.0.0.1:1"}}

// info is what an ordinary PREPARE of the suite says: a deadline 30
// seconds ahead of the resource's clock.
func (s *suite) info() participant.PrepareInfo {
	return participant.PrepareInfo{Deadline: s.clock.Now().Add(30 * time.Second), Coordinator: suiteCoordinator}
}

func randomPrefix() string {
	var b [4]byte
	rand.Read(b[:])
	return "ct" + hex.EncodeToString(b[:])
}

// id returns a transaction id unique to this run of the suite.
func (s *suite) id(t *testing.T, n int) concord.TxID {
	name := t.Name()
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	if len(name) > 32 {
		name = name[:32]
	}
	return concord.TxID(fmt.Sprintf("%s-%s-%d", s.prefix, name, n))
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (s *suite) mustPrepare(t *testing.T, r participant.Resource, id concord.TxID, payload json.RawMessage, want concord.Vote) {
	t.Helper()
	mustPrepareWith(t, r, id, payload, s.info(), want)
}

func mustPrepareWith(t *testing.T, r participant.Resource, id concord.TxID, payload json.RawMessage, info participant.PrepareInfo, want concord.Vote) {
	t.Helper()
	got, err := r.Prepare(ctxFor(t), id, payload, info)
	if err != nil {
		t.Fatalf("Prepare(%s) = %v", id, err)
	}
	if got.Vote != want {
		t.Fatalf("Prepare(%s) voted %s (%s), want %s", id, got.Vote, got.Reason, want)
	}
}

func mustErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("%s = %v, want nil", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s = %v, want %v", what, err, want)
	}
}

// recovered reports whether Recover lists each of ids (in the suite's
// namespace; other tests may share the storage).
func recovered(t *testing.T, r participant.Resource) map[concord.TxID]bool {
	t.Helper()
	txs, err := r.Recover(ctxFor(t))
	if err != nil {
		t.Fatalf("Recover = %v", err)
	}
	m := make(map[concord.TxID]bool, len(txs))
	for _, tx := range txs {
		id := tx.ID
		if m[id] {
			t.Fatalf("Recover lists %s twice", id)
		}
		m[id] = true
	}
	return m
}

func wantRecovered(t *testing.T, r participant.Resource, listed []concord.TxID, notListed []concord.TxID) {
	t.Helper()
	m := recovered(t, r)
	for _, id := range listed {
		if !m[id] {
			t.Errorf("Recover does not list prepared %s", id)
		}
	}
	for _, id := range notListed {
		if m[id] {
			t.Errorf("Recover lists %s, which is not prepared", id)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

func (s *suite) prepareCommit(t *testing.T) {
	r, _ := s.h.New(t, s.env())
	ctx := ctxFor(t)
	a := s.id(t, 1)
	s.mustPrepare(t, r, a, s.h.Yes(1), concord.VoteYes)
	wantRecovered(t, r, []concord.TxID{a}, nil)
	mustErr(t, "Commit", r.Commit(ctx, a), nil)
	wantRecovered(t, r, nil, []concord.TxID{a})
}

func (s *suite) prepareAbort(t *testing.T) {
	r, _ := s.h.New(t, s.env())
	ctx := ctxFor(t)
	a := s.id(t, 1)
	s.mustPrepare(t, r, a, s.h.Yes(1), concord.VoteYes)
	mustErr(t, "Abort", r.Abort(ctx, a), nil)
	wantRecovered(t, r, nil, []concord.TxID{a})
	// The same id is refused from now on.
	s.mustPrepare(t, r, a, s.h.Yes(1), concord.VoteNo)
	wantRecovered(t, r, nil, []concord.TxID{a})
}

func (s *suite) voteNo(t *testing.T) {
	r, _ := s.h.New(t, s.env())
	ctx := ctxFor(t)
	a := s.id(t, 1)
	got, err := r.Prepare(ctx, a, s.h.No(1), s.info())
	if err != nil || got.Vote != concord.VoteNo {
		t.Fatalf("Prepare(no payload) = %+v, %v; want a no vote", got, err)
	}
	if got.Reason == "" {
		t.Error("a no vote carries no reason")
	}
	wantRecovered(t, r, nil, []concord.TxID{a})
	// A duplicate prepare gets the same answer, and a no voter aborts.
	s.mustPrepare(t, r, a, s.h.No(1), concord.VoteNo)
	mustErr(t, "Abort after a no vote", r.Abort(ctx, a), nil)
	mustErr(t, "Commit after a no vote", r.Commit(ctx, a), participant.ErrAlreadyDecided)
}

func (s *suite) duplicates(t *testing.T) {
	r, _ := s.h.New(t, s.env())
	ctx := ctxFor(t)
	a, b := s.id(t, 1), s.id(t, 2)
	s.mustPrepare(t, r, a, s.h.Yes(1), concord.VoteYes)
	s.mustPrepare(t, r, a, s.h.Yes(1), concord.VoteYes)
	txs, err := r.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(txs, a); n != 1 {
		t.Fatalf("after a duplicate prepare Recover lists %s %d times", a, n)
	}
	mustErr(t, "Commit", r.Commit(ctx, a), nil)
	mustErr(t, "second Commit", r.Commit(ctx, a), nil)
	s.mustPrepare(t, r, a, s.h.Yes(1), concord.VoteYes) // prepare after commit: the earlier vote

	s.mustPrepare(t, r, b, s.h.Yes(2), concord.VoteYes)
	mustErr(t, "Abort", r.Abort(ctx, b), nil)
	mustErr(t, "second Abort", r.Abort(ctx, b), nil)
	wantRecovered(t, r, nil, []concord.TxID{a, b})
}

func count(txs []participant.RecoveredTx, id concord.TxID) int {
	n := 0
	for _, x := range txs {
		if x.ID == id {
			n++
		}
	}
	return n
}

func (s *suite) commitUnknown(t *testing.T) {
	r, _ := s.h.New(t, s.env())
	mustErr(t, "Commit of a never prepared transaction", r.Commit(ctxFor(t), s.id(t, 1)), participant.ErrUnknownTx)
}

func (s *suite) latePrepare(t *testing.T) {
	r, _ := s.h.New(t, s.env())
	ctx := ctxFor(t)
	a := s.id(t, 1)
	mustErr(t, "Abort of an unknown transaction", r.Abort(ctx, a), nil)
	mustErr(t, "second Abort", r.Abort(ctx, a), nil)
	got, err := r.Prepare(ctx, a, s.h.Yes(1), s.info())
	if err != nil {
		t.Fatalf("late Prepare = %v", err)
	}
	if got.Vote != concord.VoteNo {
		t.Fatalf("a prepare after the abort voted %s: the reservation would hang", got.Vote)
	}
	wantRecovered(t, r, nil, []concord.TxID{a})
	mustErr(t, "Commit after abort", r.Commit(ctx, a), participant.ErrAlreadyDecided)
}

func (s *suite) decidedOtherWay(t *testing.T) {
	r, _ := s.h.New(t, s.env())
	ctx := ctxFor(t)
	a, b := s.id(t, 1), s.id(t, 2)
	s.mustPrepare(t, r, a, s.h.Yes(1), concord.VoteYes)
	mustErr(t, "Commit", r.Commit(ctx, a), nil)
	mustErr(t, "Abort after Commit", r.Abort(ctx, a), participant.ErrAlreadyDecided)
	mustErr(t, "Commit again", r.Commit(ctx, a), nil)

	s.mustPrepare(t, r, b, s.h.Yes(2), concord.VoteYes)
	mustErr(t, "Abort", r.Abort(ctx, b), nil)
	mustErr(t, "Commit after Abort", r.Commit(ctx, b), participant.ErrAlreadyDecided)
}

func (s *suite) preparedSurvivesCrash(t *testing.T) {
	r, restart := s.h.New(t, s.env())
	ctx := ctxFor(t)
	a, b, c := s.id(t, 1), s.id(t, 2), s.id(t, 3)
	for i, id := range []concord.TxID{a, b, c} {
		s.mustPrepare(t, r, id, s.h.Yes(i+1), concord.VoteYes)
	}
	r = restart(t)
	wantRecovered(t, r, []concord.TxID{a, b, c}, nil)
	s.mustPrepare(t, r, c, s.h.Yes(3), concord.VoteYes) // a duplicate after the crash
	mustErr(t, "Commit after restart", r.Commit(ctx, a), nil)
	mustErr(t, "Abort after restart", r.Abort(ctx, b), nil)
	wantRecovered(t, r, []concord.TxID{c}, []concord.TxID{a})

	r = restart(t)
	wantRecovered(t, r, []concord.TxID{c}, []concord.TxID{a})
	mustErr(t, "Abort of a transaction committed before the crash", r.Abort(ctx, a), participant.ErrAlreadyDecided)
	// b's abort need not be durable (presumed abort): b is aborted, or
	// prepared again and abortable.
	mustErr(t, "Abort of b again", r.Abort(ctx, b), nil)
	mustErr(t, "Commit of c", r.Commit(ctx, c), nil)
	wantRecovered(t, r, nil, []concord.TxID{a, b, c})
}

func (s *suite) commitSurvivesCrash(t *testing.T) {
	r, restart := s.h.New(t, s.env())
	ctx := ctxFor(t)
	ids := make([]concord.TxID, 8)
	for i := range ids {
		ids[i] = s.id(t, i)
		s.mustPrepare(t, r, ids[i], s.h.Yes(i), concord.VoteYes)
	}
	for _, id := range ids {
		mustErr(t, "Commit", r.Commit(ctx, id), nil)
	}
	r = restart(t)
	wantRecovered(t, r, nil, ids)
	for _, id := range ids {
		mustErr(t, "Abort of "+string(id)+" committed before the crash", r.Abort(ctx, id), participant.ErrAlreadyDecided)
		mustErr(t, "Commit again after the crash", r.Commit(ctx, id), nil)
	}
}

func (s *suite) onePhase(t *testing.T) {
	r, restart := s.h.New(t, s.env())
	op, ok := r.(participant.OnePhaseResource)
	if !ok {
		t.Skip("the resource does not implement participant.OnePhaseResource")
	}
	ctx := ctxFor(t)
	a, b := s.id(t, 1), s.id(t, 2)
	o, reason, err := op.CommitOnePhase(ctx, a, s.h.Yes(1), s.info())
	if err != nil || o != concord.OutcomeCommitted {
		t.Fatalf("CommitOnePhase(yes) = %s %q %v, want committed", o, reason, err)
	}
	if o, _, err = op.CommitOnePhase(ctx, a, s.h.Yes(1), s.info()); err != nil || o != concord.OutcomeCommitted {
		t.Fatalf("duplicate CommitOnePhase = %s %v, want committed", o, err)
	}
	o, reason, err = op.CommitOnePhase(ctx, b, s.h.No(2), s.info())
	if err != nil || o != concord.OutcomeAborted || reason == "" {
		t.Fatalf("CommitOnePhase(no) = %s %q %v, want aborted with a reason", o, reason, err)
	}
	wantRecovered(t, r, nil, []concord.TxID{a, b})

	r = restart(t)
	op = r.(participant.OnePhaseResource)
	wantRecovered(t, r, nil, []concord.TxID{a, b})
	mustErr(t, "Abort of a one-phase commit after the crash", r.Abort(ctx, a), participant.ErrAlreadyDecided)
	if o, _, err = op.CommitOnePhase(ctx, a, s.h.Yes(1), s.info()); err != nil || o != concord.OutcomeCommitted {
		t.Fatalf("CommitOnePhase after the crash = %s %v, want committed", o, err)
	}
}

// concurrent runs many transactions at once, each one prepared and then
// committed or aborted, and checks every outcome, before and after a crash.
func (s *suite) concurrent(t *testing.T) {
	r, restart := s.h.New(t, s.env())
	ctx := ctxFor(t)
	n := s.h.Transactions
	ids := make([]concord.TxID, n)
	for i := range ids {
		ids[i] = s.id(t, i)
	}
	sem := make(chan struct{}, s.h.Concurrency)
	errs := make(chan error, n)
	for i, id := range ids {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			errs <- func() error {
				payload := s.h.Yes(i)
				want := concord.VoteYes
				if i%5 == 4 {
					payload, want = s.h.No(i), concord.VoteNo
				}
				v, err := r.Prepare(ctx, id, payload, s.info())
				if err != nil {
					return fmt.Errorf("Prepare(%s): %w", id, err)
				}
				if v.Vote != want {
					return fmt.Errorf("Prepare(%s) voted %s (%s), want %s", id, v.Vote, v.Reason, want)
				}
				switch {
				case want == concord.VoteNo:
					return nil
				case i%2 == 0:
					return r.Commit(ctx, id)
				default:
					return r.Abort(ctx, id)
				}
			}()
		}()
	}
	for range ids {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	wantRecovered(t, r, nil, ids)
	r = restart(t)
	var committed []concord.TxID
	for i, id := range ids {
		switch {
		case i%5 == 4:
		case i%2 == 0:
			committed = append(committed, id)
			mustErr(t, "Commit after the crash", r.Commit(ctx, id), nil)
			mustErr(t, "Abort after the crash", r.Abort(ctx, id), participant.ErrAlreadyDecided)
		default:
			// An abort need not be durable (presumed abort): it is
			// aborted, or prepared again and abortable.
			mustErr(t, "Abort after the crash", r.Abort(ctx, id), nil)
		}
	}
	wantRecovered(t, r, nil, ids)
	if len(committed) == 0 {
		t.Fatal("no transaction committed")
	}
}

// abortBeforePrepareSurvivesCrash: an acknowledged abort of a transaction
// the resource never saw must refuse a late prepare even after a crash: a
// late one-phase prepare accepted then would commit a transaction the
// coordinator reported aborted.
func (s *suite) abortBeforePrepareSurvivesCrash(t *testing.T) {
	r, restart := s.h.New(t, s.env())
	ctx := ctxFor(t)
	a := s.id(t, 1)
	mustErr(t, "Abort of an unknown transaction", r.Abort(ctx, a), nil)
	r = restart(t)
	s.mustPrepare(t, r, a, s.h.Yes(1), concord.VoteNo)
	if op, ok := r.(participant.OnePhaseResource); ok {
		o, _, err := op.CommitOnePhase(ctx, a, s.h.Yes(1), s.info())
		if err != nil || o != concord.OutcomeAborted {
			t.Fatalf("late one-phase prepare after the abort and a crash = %s %v, want aborted", o, err)
		}
	}
	wantRecovered(t, r, nil, []concord.TxID{a})
}

// onePhaseRefusalSurvivesCrash: a one-phase refusal is the transaction's
// outcome, reported to the client as final, so a duplicate of the request
// after a crash must be refused too (by then it might succeed).
func (s *suite) onePhaseRefusalSurvivesCrash(t *testing.T) {
	r, restart := s.h.New(t, s.env())
	if _, ok := r.(participant.OnePhaseResource); !ok {
		t.Skip("the resource does not implement participant.OnePhaseResource")
	}
	ctx := ctxFor(t)
	a := s.id(t, 1)
	o, _, err := r.(participant.OnePhaseResource).CommitOnePhase(ctx, a, s.h.No(1), s.info())
	if err != nil || o != concord.OutcomeAborted {
		t.Fatalf("CommitOnePhase(no) = %s %v, want aborted", o, err)
	}
	r = restart(t)
	o, _, err = r.(participant.OnePhaseResource).CommitOnePhase(ctx, a, s.h.Yes(1), s.info())
	if err != nil || o != concord.OutcomeAborted {
		t.Fatalf("the same one-phase transaction after a crash = %s %v, want aborted as before", o, err)
	}
	mustErr(t, "Commit of the refused transaction", r.Commit(ctx, a), participant.ErrAlreadyDecided)
}

// batch checks a BatchResource's PrepareBatch and CommitBatch: each call of
// a batch is answered as the single call would be (fresh, duplicate, no
// vote, unknown, decided the other way), and what they answered survives a
// crash. A resource without them skips it.
func (s *suite) batch(t *testing.T) {
	r, restart := s.h.New(t, s.env())
	if _, ok := r.(participant.BatchResource); !ok {
		t.Skip("not a participant.BatchResource")
	}
	ctx := ctxFor(t)
	a, b, c, d, aborted, unknown := s.id(t, 1), s.id(t, 2), s.id(t, 3), s.id(t, 4), s.id(t, 5), s.id(t, 6)
	s.mustPrepare(t, r, a, s.h.Yes(1), concord.VoteYes)
	mustErr(t, "Abort before prepare", r.Abort(ctx, aborted), nil)

	prep := []participant.PrepareCall{
		{ID: a, Payload: s.h.Yes(1)}, {ID: b, Payload: s.h.Yes(2)}, {ID: c, Payload: s.h.No(3)},
		{ID: d, Payload: s.h.Yes(4)}, {ID: aborted, Payload: s.h.Yes(5)},
	}
	r.(participant.BatchResource).PrepareBatch(ctx, prep)
	want := []concord.Vote{concord.VoteYes, concord.VoteYes, concord.VoteNo, concord.VoteYes, concord.VoteNo}
	for i, c := range prep {
		if c.Err != nil || c.Result.Vote != want[i] {
			t.Fatalf("PrepareBatch: %s voted %s (%s), %v; want %s", c.ID, c.Result.Vote, c.Result.Reason, c.Err, want[i])
		}
	}
	r = restart(t) // the yes votes were durable
	wantRecovered(t, r, []concord.TxID{a, b, d}, []concord.TxID{c, aborted})
	br, ok := r.(participant.BatchResource)
	if !ok {
		t.Fatal("the restarted resource is not a participant.BatchResource")
	}
	mustErr(t, "Abort of d", r.Abort(ctx, d), nil)
	commit := []participant.CommitCall{{ID: a}, {ID: unknown}, {ID: b}, {ID: d}}
	br.CommitBatch(ctx, commit)
	for i, wantErr := range []error{nil, participant.ErrUnknownTx, nil, participant.ErrAlreadyDecided} {
		mustErr(t, "CommitBatch of "+string(commit[i].ID), commit[i].Err, wantErr)
	}
	// A duplicate, in a fresh batch whose Errs start out wrong: the resource
	// must set each one, not leave what the caller had there.
	stale := errors.New("participanttest: Err left as the caller set it")
	again := []participant.CommitCall{{ID: a, Err: stale}, {ID: unknown, Err: stale}}
	br.CommitBatch(ctx, again)
	mustErr(t, "CommitBatch of a again", again[0].Err, nil)
	mustErr(t, "CommitBatch of the unknown one again", again[1].Err, participant.ErrUnknownTx)
	r = restart(t) // the commits were durable
	wantRecovered(t, r, nil, []concord.TxID{a, b, c, d})
	mustErr(t, "Abort of a committed in a batch", r.Abort(ctx, a), participant.ErrAlreadyDecided)
	mustErr(t, "Abort of b committed in a batch", r.Abort(ctx, b), participant.ErrAlreadyDecided)
}

// onePhaseBatch checks a OnePhaseBatchResource's CommitOnePhaseBatch: each
// call of a batch is answered as CommitOnePhase would answer it (fresh yes,
// fresh no, a duplicate of a committed and of a refused one, one prepared
// in two phases, one aborted before prepare), and the outcomes survive a
// crash. A resource without it skips it.
func (s *suite) onePhaseBatch(t *testing.T) {
	r, restart := s.h.New(t, s.env())
	if _, ok := r.(participant.OnePhaseBatchResource); !ok {
		t.Skip("not a participant.OnePhaseBatchResource")
	}
	ctx := ctxFor(t)
	yes, no, done, refused, prepared, aborted := s.id(t, 1), s.id(t, 2), s.id(t, 3), s.id(t, 4), s.id(t, 5), s.id(t, 6)
	op := r.(participant.OnePhaseResource)
	if o, _, err := op.CommitOnePhase(ctx, done, s.h.Yes(3), s.info()); err != nil || o != concord.OutcomeCommitted {
		t.Fatalf("CommitOnePhase(yes) = %s %v, want committed", o, err)
	}
	if o, _, err := op.CommitOnePhase(ctx, refused, s.h.No(4), s.info()); err != nil || o != concord.OutcomeAborted {
		t.Fatalf("CommitOnePhase(no) = %s %v, want aborted", o, err)
	}
	s.mustPrepare(t, r, prepared, s.h.Yes(5), concord.VoteYes)
	mustErr(t, "Abort before prepare", r.Abort(ctx, aborted), nil)

	// Some outcomes start out wrong: the resource must set each one.
	calls := []participant.OnePhaseCall{
		{ID: yes, Payload: s.h.Yes(1), Outcome: concord.OutcomeAborted}, {ID: no, Payload: s.h.No(2)},
		{ID: done, Payload: s.h.Yes(3)}, {ID: refused, Payload: s.h.Yes(4), Outcome: concord.OutcomeCommitted},
		{ID: prepared, Payload: s.h.Yes(5)}, {ID: aborted, Payload: s.h.Yes(6), Outcome: concord.OutcomeCommitted},
	}
	r.(participant.OnePhaseBatchResource).CommitOnePhaseBatch(ctx, calls)
	want := []concord.Outcome{concord.OutcomeCommitted, concord.OutcomeAborted, concord.OutcomeCommitted,
		concord.OutcomeAborted, concord.OutcomeCommitted, concord.OutcomeAborted}
	for i, c := range calls {
		if c.Err != nil || c.Outcome != want[i] {
			t.Fatalf("CommitOnePhaseBatch: %s = %s (%s), %v; want %s", c.ID, c.Outcome, c.Reason, c.Err, want[i])
		}
	}
	if calls[1].Reason == "" {
		t.Fatal("CommitOnePhaseBatch refused a transaction without a reason")
	}
	r = restart(t) // the outcomes were durable
	wantRecovered(t, r, nil, []concord.TxID{yes, no, done, refused, prepared, aborted})
	mustErr(t, "Abort of a one-phase commit of a batch", r.Abort(ctx, yes), participant.ErrAlreadyDecided)
	mustErr(t, "Abort of a prepared one committed in a batch", r.Abort(ctx, prepared), participant.ErrAlreadyDecided)
	again := []participant.OnePhaseCall{{ID: yes, Payload: s.h.Yes(1)}, {ID: no, Payload: s.h.Yes(2)}}
	r.(participant.OnePhaseBatchResource).CommitOnePhaseBatch(ctx, again)
	if again[0].Err != nil || again[0].Outcome != concord.OutcomeCommitted {
		t.Fatalf("the committed one again after the crash = %s %v, want committed", again[0].Outcome, again[0].Err)
	}
	if again[1].Err != nil || again[1].Outcome != concord.OutcomeAborted {
		t.Fatalf("the refused one again after the crash = %s %v, want aborted as before", again[1].Outcome, again[1].Err)
	}
}
