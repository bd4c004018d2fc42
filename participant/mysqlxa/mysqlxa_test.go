package mysqlxa_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/testutil/testdb"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/mysqlxa"
	"github.com/concordtx/concord/participant/participanttest"
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
func counterWork(ctx context.Context, conn mysqlxa.Conn, _ concord.TxID, payload json.RawMessage) (participant.PrepareResult, error) {
	var o op
	if err := json.Unmarshal(payload, &o); err != nil {
		return participant.PrepareResult{Vote: concord.VoteNo, Reason: "bad payload: " + err.Error()}, nil
	}
	if _, err := conn.ExecContext(ctx, `INSERT INTO counters (k, n) VALUES (?, ?)
		ON DUPLICATE KEY UPDATE n = n + VALUES(n)`, o.K, o.Add); err != nil {
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
	db  testdb.TestDB
	sql *sql.DB // the test's own view of the database
	// now and remember, when set, are the Resources' Now and Remember.
	now      func() time.Time
	remember participant.Retention
}

func newEnv(t testing.TB) *env {
	t.Helper()
	db := testdb.MySQL(t)
	e := &env{db: db, sql: openDB(t, db.URL)}
	if _, err := e.sql.Exec("CREATE TABLE counters (k VARCHAR(64) PRIMARY KEY, n INT NOT NULL) ENGINE=InnoDB"); err != nil {
		t.Fatal(err)
	}
	return e
}

func openDB(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(16)
	t.Cleanup(func() { db.Close() })
	return db
}

// open starts a Resource with its own connection pool, as a participant
// process would.
func (e *env) open(t testing.TB, name string, lockTimeout time.Duration) (*mysqlxa.Resource, *sql.DB) {
	t.Helper()
	db := openDB(t, e.db.URL)
	r, err := mysqlxa.New(context.Background(), mysqlxa.Options{
		DB: db, Name: name, Work: counterWork, LockTimeout: lockTimeout,
		Now: e.now, Remember: e.remember,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, db
}

func (e *env) counter(t testing.TB, k string) int {
	t.Helper()
	var n int
	err := e.sql.QueryRow("SELECT n FROM counters WHERE k = ?", k).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// xaRecover lists what XA RECOVER shows of this test's database, on a
// connection of the test's own.
func (e *env) xaRecover(t testing.TB) []string {
	t.Helper()
	rows, err := e.sql.Query("XA RECOVER")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var f, gl, bl int
		var data []byte
		if err := rows.Scan(&f, &gl, &bl, &data); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(e.db.Name)) { // other tests share the server
			out = append(out, string(data))
		}
	}
	return out
}

func (e *env) prepared(t testing.TB, r *mysqlxa.Resource, id concord.TxID) bool {
	t.Helper()
	return slices.Contains(e.xaRecover(t), string(id)+e.db.Name+"/"+r.Name())
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

// yes returns a check that a prepare voted yes without error.
func yes(t *testing.T) func(participant.PrepareResult, error) {
	return func(res participant.PrepareResult, err error) {
		t.Helper()
		mustVote(t, res, err, concord.VoteYes)
	}
}

func TestPrepareCommitIsDurableAndIdempotent(t *testing.T) {
	e := newEnv(t)
	r, _ := e.open(t, "p", 0)
	ctx := context.Background()
	yes(t)(r.Prepare(ctx, "tx-1", op{K: "a", Add: 5}.payload(), participant.PrepareInfo{}))
	if !e.prepared(t, r, "tx-1") {
		t.Fatalf("XA RECOVER does not list tx-1 after a yes vote: %q", e.xaRecover(t))
	}
	if n := e.counter(t, "a"); n != 0 {
		t.Fatalf("prepared work visible before commit: counter = %d", n)
	}
	yes(t)(r.Prepare(ctx, "tx-1", op{K: "a", Add: 5}.payload(), participant.PrepareInfo{})) // repeated: no work redone
	if err := r.Commit(ctx, "tx-1"); err != nil {
		t.Fatal(err)
	}
	if n := e.counter(t, "a"); n != 5 {
		t.Fatalf("counter = %d after commit, want 5", n)
	}
	if e.prepared(t, r, "tx-1") {
		t.Fatal("still prepared after commit")
	}
	if err := r.Commit(ctx, "tx-1"); err != nil {
		t.Fatalf("second commit: %v", err)
	}
	yes(t)(r.Prepare(ctx, "tx-1", op{K: "a", Add: 5}.payload(), participant.PrepareInfo{}))
	if err := r.Abort(ctx, "tx-1"); !errors.Is(err, participant.ErrAlreadyDecided) {
		t.Fatalf("abort after commit = %v, want ErrAlreadyDecided", err)
	}
	if n := e.counter(t, "a"); n != 5 {
		t.Fatalf("counter = %d, want 5: work was redone", n)
	}
	if st, _ := r.Status(ctx, "tx-1"); st.State != mysqlxa.StateCommitted {
		t.Fatalf("status = %v, want committed", st.State)
	}
}

func TestAbortReleasesAndRefusesLatePrepare(t *testing.T) {
	e := newEnv(t)
	r, _ := e.open(t, "p", 0)
	ctx := context.Background()
	yes(t)(r.Prepare(ctx, "tx-1", op{K: "a", Add: 1}.payload(), participant.PrepareInfo{}))
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
	res, err := r.Prepare(ctx, "tx-1", op{K: "a", Add: 1}.payload(), participant.PrepareInfo{})
	mustVote(t, res, err, concord.VoteNo)

	if err := r.Abort(ctx, "tx-2"); err != nil { // before its prepare
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

// A crash after prepare: when the participant's connections close, the
// server keeps the XA transaction prepared (XA RECOVER lists it, its row
// locks stay) and a new Resource recovers and commits it.
func TestPreparedSurvivesCrashOfParticipant(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r1, db1 := e.open(t, "p", 0)
	yes(t)(r1.Prepare(ctx, "tx-1", op{K: "a", Add: 3}.payload(), participant.PrepareInfo{}))
	yes(t)(r1.Prepare(ctx, "tx-2", op{K: "b", Add: 4}.payload(), participant.PrepareInfo{}))
	r1.Close() // the process dies: its connections close, nothing is decided
	db1.Close()

	got := e.xaRecover(t)
	for _, id := range []concord.TxID{"tx-1", "tx-2"} {
		if !slices.Contains(got, string(id)+e.db.Name+"/p") {
			t.Fatalf("XA RECOVER after disconnect = %q, want %s listed", got, id)
		}
	}
	if _, err := e.sql.Exec("SET STATEMENT innodb_lock_wait_timeout = 1 FOR INSERT INTO counters VALUES ('a', 1)"); err == nil {
		t.Fatal("inserting the key a prepared XA transaction inserted did not wait: its lock is gone")
	}

	r2, _ := e.open(t, "p", 0)
	ids, err := r2.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	listed := recoveredIDs(ids)
	slices.Sort(listed)
	if fmt.Sprint(listed) != "[tx-1 tx-2]" {
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
	listed := recoveredIDs(ids)
	slices.Sort(listed)
	if err != nil || fmt.Sprint(listed) != "[tx-1 tx-2]" {
		t.Fatalf("b.Recover = %v, %v; want [tx-1 tx-2]", ids, err)
	}
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

// A prepared transaction holds its row locks; a second prepare that needs
// the same row waits at most LockTimeout and then votes no.
func TestLockTimeoutVotesNo(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r, _ := e.open(t, "p", time.Second)
	yes(t)(r.Prepare(ctx, "tx-1", op{K: "a", Add: 1}.payload(), participant.PrepareInfo{}))
	res, err := r.Prepare(ctx, "tx-2", op{K: "a", Add: 1}.payload(), participant.PrepareInfo{})
	mustVote(t, res, err, concord.VoteNo)
	if err := r.Commit(ctx, "tx-1"); err != nil {
		t.Fatal(err)
	}
	res, err = r.Prepare(ctx, "tx-2", op{K: "a", Add: 1}.payload(), participant.PrepareInfo{})
	mustVote(t, res, err, concord.VoteNo) // a no vote is final
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
	if got := e.xaRecover(t); len(got) != 0 {
		t.Fatalf("XA RECOVER after one-phase = %q", got)
	}
}

func TestConcurrentTransactions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r, _ := e.open(t, "p", 0)
	const n = 40
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
	if err := e.sql.QueryRow("SELECT coalesce(sum(n), 0) FROM counters").Scan(&total); err != nil {
		t.Fatal(err)
	}
	if total != n/2 {
		t.Fatalf("sum of counters = %d, want %d (one per committed transaction)", total, n/2)
	}
}

func TestBadOptions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, o := range []mysqlxa.Options{
		{DB: e.sql, Work: counterWork},
		{DB: e.sql, Name: "a/b", Work: counterWork},
		{DB: e.sql, Name: "p"},
		{Name: "p", Work: counterWork},
		{DB: e.sql, Name: "p", Work: counterWork, Table: "x; DROP TABLE y"},
		{DB: e.sql, Name: "name-that-fits-alone-but-not-with-the-database-name-in-front", Work: counterWork},
	} {
		if _, err := mysqlxa.New(ctx, o); !errors.Is(err, mysqlxa.ErrBadOptions) {
			t.Errorf("New(%+v) = %v, want ErrBadOptions", o.Name, err)
		}
	}
}

// Transaction ids are case-sensitive, unlike MySQL's default collation.
func TestIDsDifferingInCaseAreDistinct(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r, _ := e.open(t, "p", 0)
	yes(t)(r.Prepare(ctx, "tx-a", op{K: "a", Add: 1}.payload(), participant.PrepareInfo{}))
	if err := r.Commit(ctx, "tx-a"); err != nil {
		t.Fatal(err)
	}
	yes(t)(r.Prepare(ctx, "tx-A", op{K: "b", Add: 1}.payload(), participant.PrepareInfo{}))
	if err := r.Abort(ctx, "tx-A"); err != nil {
		t.Fatalf("abort of tx-A after commit of tx-a: %v", err)
	}
	if a, b := e.counter(t, "a"), e.counter(t, "b"); a != 1 || b != 0 {
		t.Fatalf("a=%d b=%d, want 1 and 0", a, b)
	}
}

// The connection dies after XA PREPARE ran on the server but before its
// answer arrives. Prepare fails (no vote was given), and it must not leave
// the XA transaction prepared, holding its locks until a restart.
func TestLostPrepareAnswerLeavesNothingPrepared(t *testing.T) {
	e := newEnv(t)
	proxy := testdb.NewCutProxy(t, e.db.Addr, []byte("XA PREPARE"))
	cfg, err := mysql.ParseDSN(e.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = proxy.Addr()
	db := openDB(t, cfg.FormatDSN())
	r, err := mysqlxa.New(context.Background(), mysqlxa.Options{DB: db, Name: "lost", Work: counterWork})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	ctx := context.Background()
	res, err := r.Prepare(ctx, "tx-1", op{K: "a", Add: 1}.payload(), participant.PrepareInfo{})
	if err == nil {
		t.Fatalf("prepare answered %+v although its answer was cut", res)
	}
	select {
	case <-proxy.Cut:
	default:
		t.Fatal("the proxy never cut the XA PREPARE answer")
	}
	if e.prepared(t, r, "tx-1") {
		t.Fatalf("a prepare whose answer was lost left its XA transaction prepared: %q", e.xaRecover(t))
	}
	if _, err := e.sql.Exec("SET STATEMENT innodb_lock_wait_timeout = 1 FOR INSERT INTO counters VALUES ('a', 1)"); err != nil {
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
	r, err := mysqlxa.New(ctx, mysqlxa.Options{DB: e.sql, Name: "prune", Work: counterWork, PruneEvery: 3, Now: clock.Now, Remember: rt})
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
	if st, err := r.Status(ctx, "tx-1"); err != nil || st.State != mysqlxa.StateUnknown {
		t.Errorf("tx-1 after the prune: %+v, %v; want forgotten", st, err)
	}
	if st, err := r.Status(ctx, "tx-2"); err != nil || st.State != mysqlxa.StateAborted {
		t.Errorf("tx-2 after the prune: %+v, %v; want still remembered", st, err)
	}
	if err := r.Commit(ctx, "tx-1"); !errors.Is(err, participant.ErrUnknownTx) {
		t.Fatalf("commit of a forgotten transaction = %v, want ErrUnknownTx", err)
	}
	if n := e.counter(t, "a"); n != 1 {
		t.Fatalf("counter = %d: pruning decisions must not touch data", n)
	}
}
