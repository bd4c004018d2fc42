package pgxa

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
)

// State is where one transaction stands in the database.
type State string

// States of a transaction as Status reports them.
const (
	StateUnknown   State = "unknown"   // no prepared transaction and no decision row
	StatePrepared  State = "prepared"  // listed in pg_prepared_xacts: in doubt
	StateCommitted State = "committed" // committed (prepared then committed, or in one phase)
	StateAborted   State = "aborted"   // rolled back, refused, or aborted before any prepare
	StateReadOnly  State = "read-only" // voted read-only: nothing was kept
)

// Status is one transaction's state with the reason of a refusal.
type Status struct {
	State  State
	Reason string
}

// Status reports where id stands: prepared (in doubt) or what the decision
// table remembers.
func (r *Resource) Status(ctx context.Context, id concord.TxID) (Status, error) {
	rows, err := r.pool.Query(ctx, `SELECT state, reason FROM `+r.table+` WHERE participant = $1 AND txid = $2
		UNION ALL
		SELECT 'prepared', '' FROM pg_prepared_xacts WHERE gid = $3 AND database = current_database()`,
		r.name, string(id), r.GID(id))
	if err != nil {
		return Status{}, fmt.Errorf("pgxa: status of %s: %w", id, err)
	}
	st := Status{State: StateUnknown}
	for rows.Next() {
		var s, reason string
		if err := rows.Scan(&s, &reason); err != nil {
			rows.Close()
			return Status{}, fmt.Errorf("pgxa: status of %s: %w", id, err)
		}
		if st.State == StateUnknown || s == string(StatePrepared) {
			st = Status{State: State(s), Reason: reason}
		}
	}
	if err := rows.Err(); err != nil {
		return Status{}, fmt.Errorf("pgxa: status of %s: %w", id, err)
	}
	return st, nil
}

// record inserts a decision row for id unless one exists, and returns the
// row that is there afterwards. The row is kept until the forget time of
// id's prepare, if its coordinator was recorded, else forget (Unix ms). It
// fails with a lock-timeout error while a transaction in flight or prepared
// holds id's row.
func (r *Resource) record(ctx context.Context, id concord.TxID, state State, reason string, forget int64) (Status, error) {
	tx, err := r.pool.BeginTx(ctx, pgx.TxOptions{BeginQuery: r.beginSQL})
	if err != nil {
		return Status{}, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var s, why string
	err = tx.QueryRow(ctx, `INSERT INTO `+r.table+` (participant, txid, state, reason, forget_ms) VALUES ($1, $2, $3, $4,
			COALESCE((SELECT forget_ms FROM `+r.coordTable+` WHERE participant = $1 AND txid = $2), $5))
		ON CONFLICT (participant, txid) DO UPDATE SET state = `+r.table+`.state
		RETURNING state, reason`, r.name, string(id), string(state), reason, forget).Scan(&s, &why)
	if err != nil {
		return Status{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return Status{}, err
	}
	return Status{State: State(s), Reason: why}, nil
}

// Commit commits id's prepared transaction. A transaction already committed
// is success; one aborted or refused is participant.ErrAlreadyDecided; one
// this database never prepared is participant.ErrUnknownTx.
func (r *Resource) Commit(ctx context.Context, id concord.TxID) error {
	if err := concord.ValidateStoredTxID(id); err != nil {
		return fmt.Errorf("pgxa: commit: %w", err)
	}
	for attempt := 0; ; attempt++ {
		_, err := r.pool.Exec(ctx, "COMMIT PREPARED "+quoteLiteral(r.GID(id)))
		switch {
		case err == nil:
			r.noteDecision(ctx)
			return nil
		case isCode(err, codeUndefinedObject): // not prepared (any more)
			st, err := r.Status(ctx, id)
			if err != nil {
				return err
			}
			switch st.State {
			case StateCommitted, StateReadOnly:
				return nil
			case StateAborted:
				return fmt.Errorf("pgxa: commit %s: %w", id, participant.ErrAlreadyDecided)
			case StateUnknown:
				return fmt.Errorf("pgxa: commit %s: %w", id, participant.ErrUnknownTx)
			}
			// Prepared again between the two statements: try again.
		case isCode(err, codeObjectInUse): // another session is finishing it
		default:
			return fmt.Errorf("pgxa: commit prepared %s: %w", id, err)
		}
		if err := backoff(ctx, attempt); err != nil {
			return fmt.Errorf("pgxa: commit %s: %w", id, err)
		}
	}
}

// Abort rolls back id's prepared transaction and records the abort, so a
// later prepare of id is refused. Aborting an unknown or aborted transaction
// is success (and is recorded too); aborting a committed one is
// participant.ErrAlreadyDecided.
//
// ROLLBACK PREPARED cannot run in the transaction that records the abort: a
// crash between the two leaves no record, so a duplicate prepare arriving
// after that crash would be prepared again, to be resolved to abort once more
// by the participant's in-doubt resolution.
func (r *Resource) Abort(ctx context.Context, id concord.TxID) error {
	if err := concord.ValidateStoredTxID(id); err != nil {
		return fmt.Errorf("pgxa: abort: %w", err)
	}
	for attempt := 0; ; attempt++ {
		_, err := r.pool.Exec(ctx, "ROLLBACK PREPARED "+quoteLiteral(r.GID(id)))
		reason := "aborted"
		switch {
		case err == nil:
		case isCode(err, codeUndefinedObject):
			reason = "aborted before prepare"
		case isCode(err, codeObjectInUse):
			if err := backoff(ctx, attempt); err != nil {
				return fmt.Errorf("pgxa: abort %s: %w", id, err)
			}
			continue
		default:
			return fmt.Errorf("pgxa: rollback prepared %s: %w", id, err)
		}
		st, err := r.record(ctx, id, StateAborted, reason, r.remember.ForgetAt(r.remember.AbortDeadline(r.now())).UnixMilli())
		if isCode(err, codeLockNotAvailable) {
			continue // a prepare of id is in flight or was just prepared: roll it back
		}
		if err != nil {
			return fmt.Errorf("pgxa: abort %s: record: %w", id, err)
		}
		if st.State == StateCommitted {
			return fmt.Errorf("pgxa: abort %s: %w", id, participant.ErrAlreadyDecided)
		}
		r.noteDecision(ctx)
		return nil
	}
}

// Recover lists this participant's prepared transactions in this database,
// oldest first, each with the coordinator its PREPARE named (none for one
// prepared by an older version).
func (r *Resource) Recover(ctx context.Context) ([]participant.RecoveredTx, error) {
	rows, err := r.pool.Query(ctx, `SELECT gid FROM pg_prepared_xacts
		WHERE database = current_database() AND starts_with(gid, $1) ORDER BY prepared, gid`, r.gidPrefix)
	if err != nil {
		return nil, fmt.Errorf("pgxa: recover: %w", err)
	}
	gids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("pgxa: recover: %w", err)
	}
	ids := make([]concord.TxID, 0, len(gids))
	for _, g := range gids {
		id := concord.TxID(strings.TrimPrefix(g, r.gidPrefix))
		if err := concord.ValidateStoredTxID(id); err != nil {
			return nil, fmt.Errorf("pgxa: recover: prepared transaction %q: %w; resolve it by hand with COMMIT PREPARED or ROLLBACK PREPARED", g, err)
		}
		ids = append(ids, id)
	}
	return r.withCoordinators(ctx, ids)
}

// withCoordinators pairs each of ids with its recorded coordinator.
func (r *Resource) withCoordinators(ctx context.Context, ids []concord.TxID) ([]participant.RecoveredTx, error) {
	txs := make([]participant.RecoveredTx, len(ids))
	if len(ids) == 0 {
		return txs, nil
	}
	strs := make([]string, len(ids))
	for i, id := range ids {
		strs[i] = string(id)
	}
	rows, err := r.pool.Query(ctx, `SELECT txid, coordinator FROM `+r.coordTable+` WHERE participant = $1 AND txid = ANY($2)`, r.name, strs)
	if err != nil {
		return nil, fmt.Errorf("pgxa: recover: coordinators: %w", err)
	}
	coords := map[string]string{}
	for rows.Next() {
		var id, c string
		if err := rows.Scan(&id, &c); err != nil {
			rows.Close()
			return nil, fmt.Errorf("pgxa: recover: coordinators: %w", err)
		}
		coords[id] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgxa: recover: coordinators: %w", err)
	}
	for i, id := range ids {
		ref, err := participant.DecodeCoordinatorRef([]byte(coords[string(id)]))
		if err != nil {
			return nil, fmt.Errorf("pgxa: recover %s: %w", id, err)
		}
		txs[i] = participant.RecoveredTx{ID: id, Coordinator: ref}
	}
	return txs, nil
}

// Remembered counts the transactions whose id starts with prefix that the
// database holds a decision row for or has prepared, after pruning the
// rows whose time has passed (participanttest.Remembering).
func (r *Resource) Remembered(ctx context.Context, prefix string) (int, error) {
	if err := r.prune(ctx); err != nil {
		return 0, err
	}
	var n int
	err := r.pool.QueryRow(ctx, `SELECT count(*) FROM (
			SELECT txid FROM `+r.table+` WHERE participant = $1 AND starts_with(txid, $2)
			UNION
			SELECT substr(gid, length($3) + 1) FROM pg_prepared_xacts
			WHERE database = current_database() AND starts_with(gid, $3 || $2)) t`,
		r.name, prefix, r.gidPrefix).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("pgxa: count remembered: %w", err)
	}
	return n, nil
}

// Prune forgets the decisions recorded before the given time and returns how
// many it forgot. Until then a decision row keeps a repeated commit a success
// and a late prepare refused; run it with a horizon far beyond any message
// delay and coordinator retry (days, not seconds). Prepared transactions are
// never pruned.
func (r *Resource) Prune(ctx context.Context, before time.Time) (int64, error) {
	tag, err := r.pool.Exec(ctx, "DELETE FROM "+r.table+" WHERE participant = $1 AND decided_at < $2", r.name, before)
	if err != nil {
		return 0, fmt.Errorf("pgxa: prune: %w", err)
	}
	return tag.RowsAffected(), nil
}

// backoff waits a little before retrying a statement that found the prepared
// transaction busy: 1ms doubling to 100ms.
func backoff(ctx context.Context, attempt int) error {
	d := time.Millisecond << min(attempt, 7)
	d = min(d, 100*time.Millisecond)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// noteDecision counts a recorded decision and, every PruneEvery of them,
// prunes. Pruning is best effort: a failure leaves the rows for the next
// prune.
func (r *Resource) noteDecision(ctx context.Context) {
	if r.pruneEvery <= 0 || r.decisions.Add(1)%r.pruneEvery != 0 {
		return
	}
	_ = r.prune(ctx)
}

// prune deletes the decision rows whose forget time has passed by the
// resource's clock (rows of older versions: those older than Retention, by
// the database's), and the coordinators of transactions no longer prepared
// whose forget time has passed.
func (r *Resource) prune(ctx context.Context) error {
	now := r.now().UnixMilli()
	_, err := r.pool.Exec(ctx, `DELETE FROM `+r.table+` WHERE participant = $1 AND (forget_ms < $2
		OR forget_ms IS NULL AND $3::bigint >= 0 AND decided_at < now() - $3::bigint * interval '1 microsecond')`,
		r.name, now, r.retention.Microseconds())
	if err != nil {
		return fmt.Errorf("pgxa: prune: %w", err)
	}
	_, err = r.pool.Exec(ctx, `DELETE FROM `+r.coordTable+` c WHERE participant = $1 AND forget_ms < $2
		AND NOT EXISTS (SELECT 1 FROM pg_prepared_xacts p WHERE p.database = current_database() AND p.gid = $3 || c.txid)`,
		r.name, now, r.gidPrefix)
	if err != nil {
		return fmt.Errorf("pgxa: prune coordinators: %w", err)
	}
	return nil
}
