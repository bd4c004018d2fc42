package pgxa_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/testutil/testdb"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/participanttest"
	"github.com/concordtx/concord/participant/pgxa"
)

// op is the test payload: add Add to counter K, then vote Vote.
type op struct {
	K    string `json:"k"`
	Add  int    `json:"add"`
	Vote string `json:"vote,omitempty"` // yes (default), no, read-only
}

func (o op) payload() json.RawMessage {
	b, _ := json.Marshal(o)
	return b
}

// counterWork adds to a counter row, so that doing the work twice shows.
func counterWork(ctx context.Context, tx pgx.Tx, _ concord.TxID, payload json.RawMessage) (participant.PrepareResult, error) {
	var o op
	if err := json.Unmarshal(payload, &o); err != nil {
		return participant.PrepareResult{Vote: concord.VoteNo, Reason: "bad payload: " + err.Error()}, nil
	}
	if _, err := tx.Exec(ctx, `INSERT INTO counters (k, n) VALUES ($1, $2)
		ON CONFLICT (k) DO UPDATE SET n = counters.n + excluded.n`, o.K, o.Add); err != nil {
		return participant.PrepareResult{}, err
	}
	switch o.Vote {
	case "no":
		return participant.PrepareResult{Vote: concord.VoteNo, Reason: "told to say no"}, nil
	case "read-only":
		return participant.PrepareResult{Vote: concord.VoteReadOnly}, nil
	}
	return participant.PrepareResult{Vote: concord.VoteYes}, nil
}

type env struct {
	db   testdb.TestDB
	pool *pgxpool.Pool // the test's own view of the database
	// now and remember, when set, are the Resources' Now and Remember.
	now      func() time.Time
	remember participant.Retention
}

func newEnv(t testing.TB) *env {
	t.Helper()
	db := testdb.Postgres(t)
	e := &env{db: db, pool: openPool(t, db.URL)}
	if _, err := e.pool.Exec(context.Background(), "CREATE TABLE counters (k text PRIMARY KEY, n int NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	return e
}

func openPool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 8
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// open starts a Resource with its own pool, as a participant process would.
func (e *env) open(t testing.TB, name string, lockTimeout time.Duration) (*pgxa.Resource, *pgxpool.Pool) {
	t.Helper()
	pool := openPool(t, e.db.URL)
	r, err := pgxa.New(context.Background(), pgxa.Options{
		Pool: pool, Name: e.db.Name + "-" + name, Work: counterWork, LockTimeout: lockTimeout,
		Now: e.now, Remember: e.remember,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r, pool
}

func (e *env) counter(t testing.TB, k string) int {
	t.Helper()
	var n int
	err := e.pool.QueryRow(context.Background(), "SELECT n FROM counters WHERE k = $1", k).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (e *env) prepared(t testing.TB, r *pgxa.Resource, id concord.TxID) bool {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM pg_prepared_xacts WHERE gid = $1", r.GID(id)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func mustVote(t *testing.T, got participant.PrepareResult, err error, want concord.Vote) {
	t.Helper()
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	if got.Vote != want {
		t.Fatalf("vote = %v (%s), want %v", got.Vote, got.Reason, want)
	}
}

func TestPrepareCommitIsDurableAndIdempotent(t *testing.T) {
	e := newEnv(t)
	r, _ := e.open(t, "p", 0)
	ctx := context.Background()
	res, err := r.Prepare(ctx, "tx-1", op{K: "a", Add: 5}.payload(), participant.PrepareInfo{})
	mustVote(t, res, err, concord.VoteYes)
	if !e.prepared(t, r, "tx-1") {
		t.Fatal("no prepared transaction in pg_prepared_xacts after a yes vote")
	}
	if n := e.counter(t, "a"); n != 0 {
		t.Fatalf("prepared work visible before commit: counter = %d", n)
	}
	// A repeated prepare votes yes without doing the work again.
	res, err = r.Prepare(ctx, "tx-1", op{K: "a", Add: 5}.payload(), participant.PrepareInfo{})
	mustVote(t, res, err, concord.VoteYes)
	if err := r.Commit(ctx, "tx-1"); err != nil {
		t.Fatal(err)
	}
	if n := e.counter(t, "a"); n != 5 {
		t.Fatalf("counter = %d after commit, want 5", n)
	}
	if e.prepared(t, r, "tx-1") {
		t.Fatal("still prepared after commit")
	}
	// Phase 2 repeated after success is success; prepare after commit votes yes, work not redone.
	if err := r.Commit(ctx, "tx-1"); err != nil {
		t.Fatalf("second commit: %v", err)
	}
	res, err = r.Prepare(ctx, "tx-1", op{K: "a", Add: 5}.payload(), participant.PrepareInfo{})
	mustVote(t, res, err, concord.VoteYes)
	if err := r.Abort(ctx, "tx-1"); !errors.Is(err, participant.ErrAlreadyDecided) {
		t.Fatalf("abort after commit = %v, want ErrAlreadyDecided", err)
	}
	if n := e.counter(t, "a"); n != 5 {
		t.Fatalf("counter = %d, want 5: work was redone", n)
	}
	if st, _ := r.Status(ctx, "tx-1"); st.State != pgxa.StateCommitted {
		t.Fatalf("status = %v, want committed", st.State)
	}
}

func TestAbortReleasesAndRefusesLatePrepare(t *testing.T) {
	e := newEnv(t)
	r, _ := e.open(t, "p", 0)
	ctx := context.Background()
	res, err := r.Prepare(ctx, "tx-1", op{K: "a", Add: 1}.payload(), participant.PrepareInfo{})
	mustVote(t, res, err, concord.VoteYes)
	if err := r.Abort(ctx, "tx-1"); err != nil {
		t.Fatal(err)
	}
	if e.prepared(t, r, "tx-1") {
		t.Fatal("still prepared after abort")
	}
	if err := r.Abort(ctx, "tx-1"); err != nil {
		t.Fatalf("second abort: %v", err)
	}
	if err := r.Commit(ctx, "tx-1"); !errors.Is(err, participant.ErrAlreadyDecided) {
		t.Fatalf("commit after abort = %v, want ErrAlreadyDecided", err)
	}
	res, err = r.Prepare(ctx, "tx-1", op{K: "a", Add: 1}.payload(), participant.PrepareInfo{})
	mustVote(t, res, err, concord.VoteNo)
	if n := e.counter(t, "a"); n != 0 {
		t.Fatalf("counter = %d after abort, want 0", n)
	}

	// An abort that arrives before its prepare is remembered: the prepare is refused.
	if err := r.Abort(ctx, "tx-2"); err != nil {
		t.Fatal(err)
	}
	res, err = r.Prepare(ctx, "tx-2", op{K: "a", Add: 1}.payload(), participant.PrepareInfo{})
	mustVote(t, res, err, concord.VoteNo)
	if n := e.counter(t, "a"); n != 0 || e.prepared(t, r, "tx-2") {
		t.Fatalf("late prepare after abort did work: counter = %d, prepared = %v", n, e.prepared(t, r, "tx-2"))
	}
}

func TestCommitUnknownIsAnError(t *testing.T) {
	e := newEnv(t)
	r, _ := e.open(t, "p", 0)
	if err := r.Commit(context.Background(), "never"); !errors.Is(err, participant.ErrUnknownTx) {
		t.Fatalf("commit of unknown = %v, want ErrUnknownTx", err)
	}
}

func TestNoAndReadOnlyVotesAreRememberedAndLeaveNothing(t *testing.T) {
	e := newEnv(t)
	r, _ := e.open(t, "p", 0)
	ctx := context.Background()
	res, err := r.Prepare(ctx, "no-1", op{K: "a", Add: 1, Vote: "no"}.payload(), participant.PrepareInfo{})
	mustVote(t, res, err, concord.VoteNo)
	if res.Reason != "told to say no" {
		t.Fatalf("reason = %q", res.Reason)
	}
	// The repeat answers the same without running the work (which would now say yes).
	res, err = r.Prepare(ctx, "no-1", op{K: "a", Add: 1}.payload(), participant.PrepareInfo{})
	mustVote(t, res, err, concord.VoteNo)
	if res.Reason != "told to say no" {
		t.Fatalf("repeated reason = %q", res.Reason)
	}
	res, err = r.Prepare(ctx, "ro-1", op{K: "a", Add: 1, Vote: "read-only"}.payload(), participant.PrepareInfo{})
	mustVote(t, res, err, concord.VoteReadOnly)
	res, err = r.Prepare(ctx, "ro-1", op{K: "a", Add: 1}.payload(), participant.PrepareInfo{})
	mustVote(t, res, err, concord.VoteReadOnly)
	if n := e.counter(t, "a"); n != 0 {
		t.Fatalf("counter = %d: a no or read-only vote kept its work", n)
	}
	if ids, err := r.Recover(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("recover = %v, %v; want nothing prepared", ids, err)
	}
}

// A crash after prepare: the database keeps the prepared transaction (and its
// locks) when the participant's connections close, and a new Resource finds
// it with Recover and commits it.
func TestPreparedSurvivesCrashOfParticipant(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r1, pool1 := e.open(t, "p", 0)
	res, err := r1.Prepare(ctx, "tx-1", op{K: "a", Add: 3}.payload(), participant.PrepareInfo{})
	mustVote(t, res, err, concord.VoteYes)
	res, err = r1.Prepare(ctx, "tx-2", op{K: "b", Add: 4}.payload(), participant.PrepareInfo{})
	mustVote(t, res, err, concord.VoteYes)
	pool1.Close() // the process dies: every connection closes, nothing is decided

	// The rows stay locked by the prepared transaction.
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = 50"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "UPDATE counters SET n = n WHERE k = 'a'"); err != nil {
		t.Fatalf("update of a row a committed-by-then transaction wrote: %v", err)
	}
	_ = tx.Rollback(ctx)
	_, err = e.pool.Exec(ctx, "SET lock_timeout = 50; INSERT INTO counters VALUES ('a', 1)")
	if err == nil {
		t.Fatal("inserting the key a prepared transaction inserted did not wait: its lock is gone")
	}

	r2, _ := e.open(t, "p", 0)
	ids, err := r2.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(recoveredIDs(ids)) != "[tx-1 tx-2]" {
		t.Fatalf("recover after crash = %v, want [tx-1 tx-2]", ids)
	}
	if err := r2.Commit(ctx, "tx-1"); err != nil {
		t.Fatal(err)
	}
	if err := r2.Abort(ctx, "tx-2"); err != nil {
		t.Fatal(err)
	}
	if a, b := e.counter(t, "a"), e.counter(t, "b"); a != 3 || b != 0 {
		t.Fatalf("counters a=%d b=%d, want 3 and 0", a, b)
	}
	if ids, _ := r2.Recover(ctx); len(ids) != 0 {
		t.Fatalf("recover after resolving = %v", ids)
	}
}

func TestRecoverListsOnlyItsOwnTransactions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, _ := e.open(t, "a", 0)
	b, _ := e.open(t, "b", 0)
	yes(t)(a.Prepare(ctx, "tx-1", op{K: "x", Add: 1}.payload(), participant.PrepareInfo{}))
	yes(t)(b.Prepare(ctx, "tx-1", op{K: "y", Add: 1}.payload(), participant.PrepareInfo{}))
	yes(t)(b.Prepare(ctx, "tx-2", op{K: "z", Add: 1}.payload(), participant.PrepareInfo{}))
	ids, err := a.Recover(ctx)
	if err != nil || fmt.Sprint(recoveredIDs(ids)) != "[tx-1]" {
		t.Fatalf("a.Recover = %v, %v; want [tx-1]", ids, err)
	}
	ids, err = b.Recover(ctx)
	if err != nil || fmt.Sprint(recoveredIDs(ids)) != "[tx-1 tx-2]" {
		t.Fatalf("b.Recover = %v, %v; want [tx-1 tx-2]", ids, err)
	}
	// The same transaction id decided differently at two participants of one database.
	if err := a.Commit(ctx, "tx-1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Abort(ctx, "tx-1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Abort(ctx, "tx-2"); err != nil {
		t.Fatal(err)
	}
	if x, y := e.counter(t, "x"), e.counter(t, "y"); x != 1 || y != 0 {
		t.Fatalf("x=%d y=%d, want 1 and 0", x, y)
	}
}

// yes returns a check that a prepare voted yes without error.
func yes(t *testing.T) func(participant.PrepareResult, error) {
	return func(res participant.PrepareResult, err error) {
		t.Helper()
		mustVote(t, res, err, concord.VoteYes)
	}
}

// A prepared transaction holds its row locks; a second prepare that needs the
// same row waits at most LockTimeout and then votes no instead of hanging.
func TestLockTimeoutVotesNo(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r, _ := e.open(t, "p", 50*time.Millisecond)
	yes(t)(r.Prepare(ctx, "tx-1", op{K: "a", Add: 1}.payload(), participant.PrepareInfo{}))
	res, err := r.Prepare(ctx, "tx-2", op{K: "a", Add: 1}.payload(), participant.PrepareInfo{})
	mustVote(t, res, err, concord.VoteNo)
	if res.Reason == "" {
		t.Fatal("no reason for a lock-timeout no vote")
	}
	if err := r.Commit(ctx, "tx-1"); err != nil {
		t.Fatal(err)
	}
	if n := e.counter(t, "a"); n != 1 {
		t.Fatalf("counter = %d, want 1", n)
	}
}

func TestCommitOnePhase(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r, _ := e.open(t, "p", 0)
	out, _, err := r.CommitOnePhase(ctx, "one-1", op{K: "a", Add: 2}.payload(), participant.PrepareInfo{})
	if err != nil || out != concord.OutcomeCommitted {
		t.Fatalf("one-phase = %v, %v", out, err)
	}
	out, _, err = r.CommitOnePhase(ctx, "one-1", op{K: "a", Add: 2}.payload(), participant.PrepareInfo{})
	if err != nil || out != concord.OutcomeCommitted {
		t.Fatalf("repeated one-phase = %v, %v", out, err)
	}
	out, reason, err := r.CommitOnePhase(ctx, "one-2", op{K: "a", Add: 2, Vote: "no"}.payload(), participant.PrepareInfo{})
	if err != nil || out != concord.OutcomeAborted || reason != "told to say no" {
		t.Fatalf("refused one-phase = %v %q %v", out, reason, err)
	}
	if n := e.counter(t, "a"); n != 2 {
		t.Fatalf("counter = %d, want 2", n)
	}
	if err := r.Abort(ctx, "one-1"); !errors.Is(err, participant.ErrAlreadyDecided) {
		t.Fatalf("abort after one-phase commit = %v, want ErrAlreadyDecided", err)
	}
}

// Many transactions at once on distinct rows: each commits or aborts exactly once.
func TestConcurrentTransactions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r, _ := e.open(t, "p", 0)
	const n = 24 // at most this many prepared at once: max_prepared_transactions is shared by every test package
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := concord.TxID(fmt.Sprintf("tx-%d", i))
			res, err := r.Prepare(ctx, id, op{K: fmt.Sprintf("k%d", i), Add: 1}.payload(), participant.PrepareInfo{})
			if err != nil || res.Vote != concord.VoteYes {
				errs <- fmt.Errorf("%s: %v %v", id, res, err)
				return
			}
			if i%2 == 0 {
				err = r.Commit(ctx, id)
			} else {
				err = r.Abort(ctx, id)
			}
			if err != nil {
				errs <- fmt.Errorf("%s: %v", id, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var total int
	if err := e.pool.QueryRow(ctx, "SELECT coalesce(sum(n), 0) FROM counters").Scan(&total); err != nil {
		t.Fatal(err)
	}
	if total != n/2 {
		t.Fatalf("sum of counters = %d, want %d (one per committed transaction)", total, n/2)
	}
}

func TestBadOptions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, o := range []pgxa.Options{
		{Pool: e.pool, Work: counterWork},
		{Pool: e.pool, Name: "a/b", Work: counterWork},
		{Pool: e.pool, Name: "p"},
		{Name: "p", Work: counterWork},
		{Pool: e.pool, Name: "p", Work: counterWork, Table: "x; DROP TABLE y"},
		{Pool: e.pool, Name: "p", Work: counterWork, Table: "a.b.c"},
	} {
		if _, err := pgxa.New(ctx, o); !errors.Is(err, pgxa.ErrBadOptions) {
			t.Errorf("New(%+v) = %v, want ErrBadOptions", o, err)
		}
	}
	if _, err := pgxa.New(ctx, pgxa.Options{Pool: e.pool, Name: "p", Work: counterWork}); err != nil {
		t.Fatal(err)
	}
	if err := e.pool.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// The connection dies after PREPARE TRANSACTION ran on the server but
// before its answer arrives. Prepare fails (no vote was given), and it must
// not leave the transaction prepared, holding its locks until a restart.
func TestLostPrepareAnswerLeavesNothingPrepared(t *testing.T) {
	e := newEnv(t)
	proxy := testdb.NewCutProxy(t, e.db.Addr, []byte("PREPARE TRANSACTION"))
	u, err := url.Parse(e.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = proxy.Addr()
	pool := openPool(t, u.String())
	r, err := pgxa.New(context.Background(), pgxa.Options{Pool: pool, Name: e.db.Name + "-lost", Work: counterWork})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := r.Prepare(ctx, "tx-1", op{K: "a", Add: 1}.payload(), participant.PrepareInfo{})
	if err == nil {
		t.Fatalf("prepare answered %+v although its answer was cut", res)
	}
	select {
	case <-proxy.Cut:
	default:
		t.Fatal("the proxy never cut the PREPARE TRANSACTION answer")
	}
	if e.prepared(t, r, "tx-1") {
		t.Fatal("a prepare whose answer was lost left its transaction prepared")
	}
	// The key is free again: nothing holds its lock.
	if _, err := e.pool.Exec(ctx, "SET lock_timeout = 1000; INSERT INTO counters VALUES ('a', 1)"); err != nil {
		t.Fatalf("row still locked: %v", err)
	}
}

// Decision rows are pruned every PruneEvery decisions once their time
// (deadline plus the skew allowance, by the resource's clock) has passed;
// until then they answer repeats, after it the transaction is forgotten.
func TestDecisionsArePruned(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	start := time.Now()
	clock := participanttest.NewFakeClock(start)
	rt := participant.Retention{MaxLifetime: time.Minute, ClockSkew: time.Second}
	r, err := pgxa.New(ctx, pgxa.Options{Pool: e.pool, Name: e.db.Name + "-prune", Work: counterWork, PruneEvery: 3, Now: clock.Now, Remember: rt})
	if err != nil {
		t.Fatal(err)
	}
	yes(t)(r.Prepare(ctx, "tx-1", op{K: "a", Add: 1}.payload(), participant.PrepareInfo{Deadline: start.Add(time.Second)}))
	if err := r.Commit(ctx, "tx-1"); err != nil { // decision 1
		t.Fatal(err)
	}
	if err := r.Abort(ctx, "tx-2"); err != nil { // decision 2: remembered for a minute and 2s
		t.Fatal(err)
	}
	clock.Advance(2*time.Second + time.Millisecond) // past tx-1's deadline + skew
	if err := r.Commit(ctx, "tx-1"); err != nil {   // no new decision: still remembered
		t.Fatalf("repeated commit before the prune: %v", err)
	}
	if err := r.Abort(ctx, "tx-3"); err != nil { // decision 3: prunes
		t.Fatal(err)
	}
	if st, err := r.Status(ctx, "tx-1"); err != nil || st.State != pgxa.StateUnknown {
		t.Errorf("tx-1 after the prune: %+v, %v; want forgotten", st, err)
	}
	if st, err := r.Status(ctx, "tx-2"); err != nil || st.State != pgxa.StateAborted {
		t.Errorf("tx-2 after the prune: %+v, %v; want still remembered", st, err)
	}
	if err := r.Commit(ctx, "tx-1"); !errors.Is(err, participant.ErrUnknownTx) {
		t.Fatalf("commit of a forgotten transaction = %v, want ErrUnknownTx", err)
	}
	if n := e.counter(t, "a"); n != 1 {
		t.Fatalf("counter = %d: pruning decisions must not touch data", n)
	}
}
