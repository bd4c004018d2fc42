package pgxa

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
)

// Resource is a participant.Resource whose prepared state lives in
// PostgreSQL. It is safe for concurrent use; it holds no state of its own
// besides its options, so a new Resource on the same database and Name picks
// up where a crashed one stopped.
type Resource struct {
	pool        *pgxpool.Pool
	name        string
	work        Work
	gidPrefix   string // "concord/<database>/<schema>/<name>/"
	table       string // quoted identifier
	coordTable  string // quoted identifier of the table of prepared transactions' coordinators
	remember    participant.Retention
	now         func() time.Time
	beginSQL    string // begins a transaction with the lock timeout set
	lockTimeout string // milliseconds, as SET LOCAL wants it
	retention   time.Duration
	pruneEvery  int64
	decisions   atomic.Int64 // decisions recorded, to prune every pruneEvery
}

var (
	_ participant.Resource         = (*Resource)(nil)
	_ participant.OnePhaseResource = (*Resource)(nil)
)

// maxGIDLen is PostgreSQL's limit on a prepared transaction's identifier
// (GIDSIZE 200, including the terminating zero byte).
const maxGIDLen = 199

// New checks that the server allows prepared transactions, creates the
// decision table if missing, and returns a Resource.
func New(ctx context.Context, opts Options) (*Resource, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if err := checkPrepared(ctx, opts.Pool); err != nil {
		return nil, err
	}
	ident, _ := tableIdent(opts.Table) // validated above
	var db string
	var schema *string
	if err := opts.Pool.QueryRow(ctx, "SELECT current_database(), current_schema()").Scan(&db, &schema); err != nil {
		return nil, fmt.Errorf("pgxa: read database and schema names: %w", err)
	}
	if len(ident) == 2 {
		schema = &ident[0]
	}
	if schema == nil {
		return nil, fmt.Errorf("%w: no schema of the search_path exists to hold the decision table; create one or name it in Table", ErrBadOptions)
	}
	r := &Resource{
		pool:        opts.Pool,
		name:        opts.Name,
		work:        opts.Work,
		gidPrefix:   "concord/" + db + "/" + *schema + "/" + opts.Name + "/",
		table:       ident.Sanitize(),
		coordTable:  coordIdent(ident).Sanitize(),
		remember:    opts.Remember,
		now:         opts.Now,
		lockTimeout: fmt.Sprint(opts.LockTimeout.Milliseconds()),
		retention:   opts.Retention,
		pruneEvery:  int64(opts.PruneEvery),
	}
	r.beginSQL = "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = " + r.lockTimeout
	if n := len(r.gidPrefix) + concord.MaxTxIDLen; n > maxGIDLen {
		return nil, fmt.Errorf("%w: database %q, schema %q and Name %q make global ids of up to %d bytes, PostgreSQL allows %d",
			ErrBadOptions, db, *schema, opts.Name, n, maxGIDLen)
	}
	if err := r.createTable(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// querier is the part of a pool that checkPrepared needs.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// checkPrepared fails with ErrPreparedDisabled when the server cannot prepare
// transactions.
func checkPrepared(ctx context.Context, q querier) error {
	var n int
	if err := q.QueryRow(ctx, "SELECT current_setting('max_prepared_transactions')::int").Scan(&n); err != nil {
		return fmt.Errorf("pgxa: read max_prepared_transactions: %w", err)
	}
	if n <= 0 {
		return ErrPreparedDisabled
	}
	return nil
}

// createTable creates the decision table if it is missing. An advisory lock
// serialises concurrent creators, since CREATE TABLE IF NOT EXISTS alone can
// race.
func (r *Resource) createTable(ctx context.Context) error {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgxa: create decision table: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	stmts := []string{
		"SET LOCAL lock_timeout = 10000",
		"SELECT pg_advisory_xact_lock(7306157001)",
		`CREATE TABLE IF NOT EXISTS ` + r.table + ` (
			participant text NOT NULL,
			txid        text NOT NULL,
			state       text NOT NULL CHECK (state IN ('committed', 'aborted', 'read-only')),
			reason      text NOT NULL DEFAULT '',
			decided_at  timestamptz NOT NULL DEFAULT now(),
			forget_ms   bigint,
			PRIMARY KEY (participant, txid))`,
		`CREATE TABLE IF NOT EXISTS ` + r.coordTable + ` (
			participant text NOT NULL,
			txid        text NOT NULL,
			coordinator text NOT NULL,
			forget_ms   bigint NOT NULL,
			PRIMARY KEY (participant, txid))`,
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("pgxa: create decision table %s: %w", r.table, err)
		}
	}
	// forget_ms: when the row may be pruned (Unix ms by the resource's
	// clock); NULL for rows of older versions. Added to a table an older
	// version created only if missing: ALTER TABLE waits for every
	// prepared transaction holding a row lock in it.
	var has bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_attribute
		WHERE attrelid = $1::regclass AND attname = 'forget_ms' AND NOT attisdropped)`, r.table).Scan(&has); err != nil {
		return fmt.Errorf("pgxa: create decision table %s: %w", r.table, err)
	}
	if !has {
		if _, err := tx.Exec(ctx, `ALTER TABLE `+r.table+` ADD COLUMN IF NOT EXISTS forget_ms bigint`); err != nil {
			return fmt.Errorf("pgxa: add forget_ms to the decision table %s: %w", r.table, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgxa: create decision table %s: %w", r.table, err)
	}
	return nil
}

// Name returns the participant name given in Options.
func (r *Resource) Name() string { return r.name }

// GID returns the global transaction identifier id is prepared under.
func (r *Resource) GID(id concord.TxID) string { return r.gidPrefix + string(id) }

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings,
// the default since PostgreSQL 9.1). PREPARE TRANSACTION and its kin take no
// parameters.
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Prepare runs Work for id in a transaction and prepares it on a yes vote.
// A transaction already prepared or committed votes yes again, one aborted or
// refused votes no again, without running Work.
//
// A transaction with no row is first admitted by Options.Remember
// (participant.Retention.Admit): past its deadline it votes no and nothing
// is recorded. Before the work, the coordinator the PREPARE names is
// recorded (committed on its own), for Recover to return.
func (r *Resource) Prepare(ctx context.Context, id concord.TxID, payload json.RawMessage, info participant.PrepareInfo) (participant.PrepareResult, error) {
	if err := validateNewID(id); err != nil {
		return participant.PrepareResult{}, fmt.Errorf("pgxa: prepare: %w", err)
	}
	for range 2 {
		if res, done, err := r.known(ctx, id); done || err != nil {
			return res, err
		}
		forget, refused, done, err := r.admit(ctx, id, info)
		if errors.Is(err, errRaced) {
			continue
		}
		if done || err != nil {
			return refused, err
		}
		if err := r.keepCoordinator(ctx, id, info.Coordinator, forget); err != nil {
			return participant.PrepareResult{}, err
		}
		res, err := r.run(ctx, id, payload, false, forget)
		if errors.Is(err, errRaced) {
			continue // decided or prepared meanwhile: answer from the record
		}
		return res, err
	}
	return participant.PrepareResult{}, fmt.Errorf("pgxa: prepare %s: the decision table keeps changing under it", id)
}

// known answers Prepare from what the database already holds for id.
func (r *Resource) known(ctx context.Context, id concord.TxID) (participant.PrepareResult, bool, error) {
	st, err := r.Status(ctx, id)
	if err != nil {
		return participant.PrepareResult{}, false, err
	}
	switch st.State {
	case StatePrepared, StateCommitted:
		return participant.PrepareResult{Vote: concord.VoteYes}, true, nil
	case StateAborted:
		return participant.PrepareResult{Vote: concord.VoteNo, Reason: st.Reason}, true, nil
	case StateReadOnly:
		return participant.PrepareResult{Vote: concord.VoteReadOnly}, true, nil
	}
	return participant.PrepareResult{}, false, nil
}

// errRaced means another call decided or prepared the same id meanwhile.
var errRaced = errors.New("raced with another call on the same transaction")

// run does the work of id in one transaction: the yes vote's decision row,
// then Work; it ends with PREPARE TRANSACTION (or COMMIT when onePhase) on a
// yes vote and records a no or read-only vote in the decision table.
func (r *Resource) run(ctx context.Context, id concord.TxID, payload json.RawMessage, onePhase bool, forget int64) (participant.PrepareResult, error) {
	end := "PREPARE TRANSACTION " + quoteLiteral(r.GID(id))
	if onePhase {
		end = "COMMIT"
	}
	tx, err := r.pool.BeginTx(ctx, pgx.TxOptions{BeginQuery: r.beginSQL, CommitQuery: end})
	if err != nil {
		return participant.PrepareResult{}, fmt.Errorf("pgxa: prepare %s: begin: %w", id, err)
	}
	defer func() { _ = tx.Rollback(ctx) }() // a no-op once committed or prepared
	_, err = tx.Exec(ctx, "INSERT INTO "+r.table+" (participant, txid, state, forget_ms) VALUES ($1, $2, 'committed', $3)", r.name, string(id), forget)
	if err != nil {
		if isCode(err, codeUniqueViolation) || isCode(err, codeLockNotAvailable) {
			return participant.PrepareResult{}, errRaced
		}
		return participant.PrepareResult{}, fmt.Errorf("pgxa: prepare %s: record: %w", id, err)
	}
	res, err := r.work(ctx, tx, id, payload)
	if err != nil {
		_ = tx.Rollback(ctx)
		if reason, ok := transient(err); ok {
			return r.refuse(ctx, id, participant.PrepareResult{Vote: concord.VoteNo, Reason: reason}, forget)
		}
		return participant.PrepareResult{}, fmt.Errorf("pgxa: prepare %s: %w", id, err)
	}
	switch res.Vote {
	case concord.VoteYes:
	case concord.VoteNo, concord.VoteReadOnly:
		if err := tx.Rollback(ctx); err != nil {
			return participant.PrepareResult{}, fmt.Errorf("pgxa: prepare %s: roll back: %w", id, err)
		}
		return r.refuse(ctx, id, res, forget)
	default:
		return participant.PrepareResult{}, fmt.Errorf("pgxa: prepare %s: Work voted %v; want yes, no or read-only", id, res.Vote)
	}
	if err := tx.Commit(ctx); err != nil {
		switch {
		case isCode(err, codeOutOfMemory):
			// "maximum number of prepared transactions reached"
			return r.refuse(ctx, id, participant.PrepareResult{Vote: concord.VoteNo, Reason: "database busy: " + pgMessage(err)}, forget)
		case isCode(err, codeDuplicateObject):
			return participant.PrepareResult{}, errRaced
		case errors.Is(err, pgx.ErrTxCommitRollback):
			return participant.PrepareResult{}, fmt.Errorf("pgxa: prepare %s: the transaction failed inside Work and was rolled back", id)
		}
		if reason, ok := transient(err); ok {
			return r.refuse(ctx, id, participant.PrepareResult{Vote: concord.VoteNo, Reason: reason}, forget)
		}
		if !onePhase && !isServerError(err) {
			// The answer was lost: the transaction may be prepared.
			// Nothing was voted, so roll it back rather than leave it
			// holding its locks until a restart finds it.
			r.rollbackLost(ctx, id)
		}
		return participant.PrepareResult{}, fmt.Errorf("pgxa: prepare %s: %s: %w", id, strings.Fields(end)[0], err)
	}
	return participant.PrepareResult{Vote: concord.VoteYes}, nil
}

// rollbackLost rolls back id's prepared transaction, if there is one, after
// the answer to its PREPARE TRANSACTION was lost. It tries once, for a few
// seconds even if ctx is done; if it fails, Recover lists the transaction
// after a restart.
func (r *Resource) rollbackLost(ctx context.Context, id concord.TxID) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, _ = r.pool.Exec(ctx, "ROLLBACK PREPARED "+quoteLiteral(r.GID(id)))
}

// refuse records a no or read-only vote so a repeated prepare gets it again.
func (r *Resource) refuse(ctx context.Context, id concord.TxID, res participant.PrepareResult, forget int64) (participant.PrepareResult, error) {
	state := StateAborted
	if res.Vote == concord.VoteReadOnly {
		state = StateReadOnly
	}
	st, err := r.record(ctx, id, state, res.Reason, forget)
	if err != nil {
		return participant.PrepareResult{}, fmt.Errorf("pgxa: prepare %s: record %s vote: %w", id, res.Vote, err)
	}
	if st.State != state {
		return participant.PrepareResult{}, errRaced
	}
	r.noteDecision(ctx)
	return res, nil
}

// CommitOnePhase runs Work for id and commits at once on a yes vote, for a
// transaction with this participant alone. It is idempotent on id like
// Prepare.
func (r *Resource) CommitOnePhase(ctx context.Context, id concord.TxID, payload json.RawMessage, info participant.PrepareInfo) (concord.Outcome, string, error) {
	if err := validateNewID(id); err != nil {
		return concord.OutcomeAborted, "", fmt.Errorf("pgxa: one-phase commit: %w", err)
	}
	for range 2 {
		st, err := r.Status(ctx, id)
		if err != nil {
			return concord.OutcomeAborted, "", err
		}
		switch st.State {
		case StateCommitted, StateReadOnly:
			return concord.OutcomeCommitted, "", nil
		case StateAborted:
			return concord.OutcomeAborted, st.Reason, nil
		case StatePrepared:
			return concord.OutcomeAborted, "", fmt.Errorf("pgxa: one-phase commit %s: already prepared in two phases; decide it with Commit or Abort", id)
		}
		forget, refused, done, err := r.admit(ctx, id, info)
		switch {
		case errors.Is(err, errRaced):
			continue // known after all: answer from what is there
		case err != nil:
			return concord.OutcomeAborted, "", err
		case done:
			return concord.OutcomeAborted, refused.Reason, nil
		}
		res, err := r.run(ctx, id, payload, true, forget)
		if errors.Is(err, errRaced) {
			continue
		}
		if err != nil {
			return concord.OutcomeAborted, "", err
		}
		if res.Vote == concord.VoteNo {
			return concord.OutcomeAborted, res.Reason, nil
		}
		return concord.OutcomeCommitted, "", nil
	}
	return concord.OutcomeAborted, "", fmt.Errorf("pgxa: one-phase commit %s: the decision table keeps changing under it", id)
}

// coordIdent names the table of prepared transactions' coordinators beside
// the decision table: <table>_coordinators, in the same schema.
func coordIdent(decisions pgx.Identifier) pgx.Identifier {
	id := append(pgx.Identifier(nil), decisions...)
	id[len(id)-1] += "_coordinators"
	return id
}

// admit applies Options.Remember to a PREPARE of id, which has no row: it
// returns when the decision will be forgotten (Unix ms), or, done, the
// refusal to answer (nothing recorded past the deadline; recorded for a
// deadline too far ahead). errRaced means id is known after all: answer
// from what is there.
func (r *Resource) admit(ctx context.Context, id concord.TxID, info participant.PrepareInfo) (forget int64, refused participant.PrepareResult, done bool, err error) {
	adm := r.remember.Admit(info, r.now())
	forget = r.remember.ForgetAt(adm.Deadline).UnixMilli()
	if adm.Refuse == "" {
		return forget, participant.PrepareResult{}, false, nil
	}
	res := participant.PrepareResult{Vote: concord.VoteNo, Reason: adm.Refuse}
	if !adm.Remember {
		return forget, res, true, nil
	}
	res, err = r.refuse(ctx, id, res, forget)
	return forget, res, true, err
}

// keepCoordinator records the coordinator of id's PREPARE, before it is
// prepared, until forget or until a prune finds it neither prepared nor
// forgettable.
func (r *Resource) keepCoordinator(ctx context.Context, id concord.TxID, c participant.CoordinatorRef, forget int64) error {
	_, err := r.pool.Exec(ctx, `INSERT INTO `+r.coordTable+` (participant, txid, coordinator, forget_ms) VALUES ($1, $2, $3, $4)
		ON CONFLICT (participant, txid) DO UPDATE SET coordinator = EXCLUDED.coordinator, forget_ms = EXCLUDED.forget_ms`,
		r.name, string(id), string(c.Encode()), forget)
	if err != nil {
		return fmt.Errorf("pgxa: prepare %s: record the coordinator: %w", id, err)
	}
	return nil
}

// validateNewID checks the id of a PREPARE: the strict check, which refuses
// ids made only of dots. COMMIT, ABORT and Recover, which reach what was
// prepared before such ids were refused, use concord.ValidateStoredTxID. A
// variable so that a test can prepare what an older version prepared.
var validateNewID = concord.ValidateTxID
