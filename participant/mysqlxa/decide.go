package mysqlxa

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
)

// State is where one transaction stands in the database.
type State string

// States of a transaction as Status reports them.
const (
	StateUnknown   State = "unknown"   // not prepared and no decision row
	StatePrepared  State = "prepared"  // listed by XA RECOVER: in doubt
	StateCommitted State = "committed" // committed (prepared then committed, or in one phase)
	StateAborted   State = "aborted"   // rolled back, refused, or aborted before any prepare
	StateReadOnly  State = "read-only" // voted read-only: nothing was kept
)

// Status is one transaction's state with the reason of a refusal.
type Status struct {
	State  State
	Reason string
}

// querier runs statements on the pool or on one connection.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// decided reads id's decision row: committed, aborted, read-only or unknown.
func (r *Resource) decided(ctx context.Context, id concord.TxID) (Status, error) {
	var s, reason string
	err := r.db.QueryRowContext(ctx, "SELECT state, reason FROM "+r.table+" WHERE participant = ? AND txid = ?",
		r.name, string(id)).Scan(&s, &reason)
	if errors.Is(err, sql.ErrNoRows) {
		return Status{State: StateUnknown}, nil
	}
	if err != nil {
		return Status{}, fmt.Errorf("mysqlxa: status of %s: %w", id, err)
	}
	return Status{State: State(s), Reason: reason}, nil
}

// Status reports where id stands: what the decision table remembers, or
// prepared (in doubt) when XA RECOVER lists it.
func (r *Resource) Status(ctx context.Context, id concord.TxID) (Status, error) {
	st, err := r.decided(ctx, id)
	if err != nil || st.State != StateUnknown {
		return st, err
	}
	r.mu.Lock()
	_, ok := r.pinned[id]
	r.mu.Unlock()
	if ok {
		return Status{State: StatePrepared}, nil
	}
	ids, err := r.prepared(ctx)
	if err != nil {
		return Status{}, err
	}
	for _, p := range ids {
		if p == id {
			return Status{State: StatePrepared}, nil
		}
	}
	return Status{State: StateUnknown}, nil
}

// record inserts a decision row for id unless one exists, and returns the
// row that is there afterwards. It fails with a lock wait timeout while a
// transaction in flight or prepared holds id's row.
//
// The row is kept until the forget time of id's prepare, if its coordinator
// was recorded, else forget (Unix ms).
func (r *Resource) record(ctx context.Context, q querier, id concord.TxID, state State, reason string, forget int64) (Status, error) {
	_, err := q.ExecContext(ctx, "INSERT INTO "+r.table+` (participant, txid, state, reason, forget_ms) VALUES (?, ?, ?, ?,
			COALESCE((SELECT forget_ms FROM `+r.coords+` WHERE participant = ? AND txid = ?), ?)) ON DUPLICATE KEY UPDATE state = state`,
		r.name, string(id), string(state), reason, r.name, string(id), forget)
	if err != nil {
		return Status{}, err
	}
	var s, why string
	if err := q.QueryRowContext(ctx, "SELECT state, reason FROM "+r.table+" WHERE participant = ? AND txid = ?",
		r.name, string(id)).Scan(&s, &why); err != nil {
		return Status{}, err
	}
	return Status{State: State(s), Reason: why}, nil
}

// Commit commits id's prepared XA transaction. A transaction already
// committed is success; one aborted or refused is
// participant.ErrAlreadyDecided; one never prepared is participant.ErrUnknownTx.
func (r *Resource) Commit(ctx context.Context, id concord.TxID) error {
	if err := concord.ValidateStoredTxID(id); err != nil {
		return fmt.Errorf("mysqlxa: commit: %w", err)
	}
	xid := r.XID(id)
	if c, ok := r.unpin(id); ok {
		if _, err := c.ExecContext(ctx, "XA COMMIT "+xid); err == nil {
			_ = c.Close()
			r.noteDecision(ctx)
			return nil
		}
		r.detach(ctx, c) // the transaction, if still prepared, is for any connection to finish
	}
	for attempt := 0; ; attempt++ {
		_, err := r.db.ExecContext(ctx, "XA COMMIT "+xid)
		if err == nil {
			r.noteDecision(ctx)
			return nil
		}
		if !isNumber(err, errXANota) {
			return fmt.Errorf("mysqlxa: XA COMMIT %s: %w", id, err)
		}
		st, err := r.decided(ctx, id)
		if err != nil {
			return err
		}
		switch st.State {
		case StateCommitted, StateReadOnly:
			return nil
		case StateAborted:
			return fmt.Errorf("mysqlxa: commit %s: %w", id, participant.ErrAlreadyDecided)
		}
		// Unknown to this connection, yet XA RECOVER may list it: still
		// attached to a session that is going away. Wait for it to detach.
		ids, err := r.prepared(ctx)
		if err != nil {
			return err
		}
		if !slices.Contains(ids, id) {
			return fmt.Errorf("mysqlxa: commit %s: %w", id, participant.ErrUnknownTx)
		}
		if err := sleepCtx(ctx, min(time.Millisecond<<min(attempt, 7), 100*time.Millisecond)); err != nil {
			return fmt.Errorf("mysqlxa: commit %s: still attached to another session: %w", id, err)
		}
	}
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Abort rolls back id's prepared XA transaction and records the abort, so a
// later prepare of id is refused. Aborting an unknown or aborted transaction
// is success (and is recorded too); aborting a committed one is
// participant.ErrAlreadyDecided.
//
// XA ROLLBACK cannot run in the transaction that records the abort: a crash
// between the two leaves no record, so a duplicate prepare arriving after
// that crash would be prepared again, to be resolved to abort once more by
// the participant's in-doubt resolution.
func (r *Resource) Abort(ctx context.Context, id concord.TxID) error {
	if err := concord.ValidateStoredTxID(id); err != nil {
		return fmt.Errorf("mysqlxa: abort: %w", err)
	}
	xid := r.XID(id)
	if c, ok := r.unpin(id); ok {
		if _, err := c.ExecContext(ctx, "XA ROLLBACK "+xid); err == nil {
			_, err := r.record(ctx, c, id, StateAborted, "aborted", r.abortForget())
			if err != nil {
				discard(c.Conn)
				return fmt.Errorf("mysqlxa: abort %s: record: %w", id, err)
			}
			_ = c.Close()
			r.noteDecision(ctx)
			return nil
		}
		r.detach(ctx, c)
	}
	for attempt := 0; ; attempt++ {
		reason := "aborted"
		_, err := r.db.ExecContext(ctx, "XA ROLLBACK "+xid)
		switch {
		case err == nil:
		case isNumber(err, errXANota):
			// Unknown to this connection, yet XA RECOVER may list it:
			// still attached to a session that is going away.
			ids, err := r.prepared(ctx)
			if err != nil {
				return err
			}
			if slices.Contains(ids, id) {
				if err := sleepCtx(ctx, min(time.Millisecond<<min(attempt, 7), 100*time.Millisecond)); err != nil {
					return fmt.Errorf("mysqlxa: abort %s: still attached to another session: %w", id, err)
				}
				continue
			}
			reason = "aborted before prepare"
		default:
			return fmt.Errorf("mysqlxa: XA ROLLBACK %s: %w", id, err)
		}
		st, err := r.record(ctx, r.db, id, StateAborted, reason, r.abortForget())
		if isNumber(err, errLockWaitTimeout) && attempt < 50 {
			continue // a prepare of id is in flight or was just prepared: roll it back
		}
		if err != nil {
			return fmt.Errorf("mysqlxa: abort %s: record: %w", id, err)
		}
		if st.State == StateCommitted {
			return fmt.Errorf("mysqlxa: abort %s: %w", id, participant.ErrAlreadyDecided)
		}
		r.noteDecision(ctx)
		return nil
	}
}

// Recover lists this participant's prepared XA transactions in this
// database, as XA RECOVER reports them, each with the coordinator its
// PREPARE named (none for one prepared by an older version).
func (r *Resource) Recover(ctx context.Context) ([]participant.RecoveredTx, error) {
	ids, err := r.prepared(ctx)
	if err != nil {
		return nil, err
	}
	txs := make([]participant.RecoveredTx, len(ids))
	if len(ids) == 0 {
		return txs, nil
	}
	args := []any{r.name}
	marks := make([]string, len(ids))
	for i, id := range ids {
		args, marks[i] = append(args, string(id)), "?"
	}
	rows, err := r.db.QueryContext(ctx, "SELECT txid, coordinator FROM "+r.coords+" WHERE participant = ? AND txid IN ("+strings.Join(marks, ",")+")", args...)
	if err != nil {
		return nil, fmt.Errorf("mysqlxa: recover: coordinators: %w", err)
	}
	defer rows.Close()
	coords := map[string]string{}
	for rows.Next() {
		var id, c string
		if err := rows.Scan(&id, &c); err != nil {
			return nil, fmt.Errorf("mysqlxa: recover: coordinators: %w", err)
		}
		coords[id] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mysqlxa: recover: coordinators: %w", err)
	}
	for i, id := range ids {
		ref, err := participant.DecodeCoordinatorRef([]byte(coords[string(id)]))
		if err != nil {
			return nil, fmt.Errorf("mysqlxa: recover %s: %w", id, err)
		}
		txs[i] = participant.RecoveredTx{ID: id, Coordinator: ref}
	}
	return txs, nil
}

// abortForget is when the ABORT, now, of a transaction never prepared
// here may be forgotten (Unix ms).
func (r *Resource) abortForget() int64 {
	return r.remember.ForgetAt(r.remember.AbortDeadline(r.now())).UnixMilli()
}

// Remembered counts the transactions whose id starts with prefix that the
// database holds a decision row for or has prepared, after pruning the
// rows whose time has passed (participanttest.Remembering).
func (r *Resource) Remembered(ctx context.Context, prefix string) (int, error) {
	if err := r.prune(ctx); err != nil {
		return 0, err
	}
	rows, err := r.db.QueryContext(ctx, "SELECT txid FROM "+r.table+" WHERE participant = ? AND txid LIKE CONCAT(?, '%')", r.name, likeEscape(prefix))
	if err != nil {
		return 0, fmt.Errorf("mysqlxa: count remembered: %w", err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return 0, fmt.Errorf("mysqlxa: count remembered: %w", err)
		}
		seen[id] = true
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("mysqlxa: count remembered: %w", err)
	}
	ids, err := r.prepared(ctx)
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		if strings.HasPrefix(string(id), prefix) {
			seen[string(id)] = true
		}
	}
	return len(seen), nil
}

// likeEscape escapes the LIKE wildcards of s (backslash is the default
// escape character).
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(s)
}

// prepared lists the ids of this participant's prepared XA transactions.
func (r *Resource) prepared(ctx context.Context) ([]concord.TxID, error) {
	rows, err := r.db.QueryContext(ctx, "XA RECOVER")
	if err != nil {
		return nil, fmt.Errorf("mysqlxa: XA RECOVER: %w", err)
	}
	defer rows.Close()
	var ids []concord.TxID
	for rows.Next() {
		var format int64
		var gl, bl int
		var data []byte
		if err := rows.Scan(&format, &gl, &bl, &data); err != nil {
			return nil, fmt.Errorf("mysqlxa: XA RECOVER: %w", err)
		}
		if format != formatID || gl < 0 || bl < 0 || gl+bl > len(data) || string(data[gl:gl+bl]) != r.bqual {
			continue
		}
		id := concord.TxID(data[:gl])
		if err := concord.ValidateStoredTxID(id); err != nil {
			return nil, fmt.Errorf("mysqlxa: recover: prepared XA transaction %q: %w; resolve it by hand with XA COMMIT or XA ROLLBACK", data, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mysqlxa: XA RECOVER: %w", err)
	}
	return ids, nil
}

// Prune forgets the decisions recorded before the given time and returns how
// many it forgot. Until then a decision row keeps a repeated commit a success
// and a late prepare refused; run it with a horizon far beyond any message
// delay and coordinator retry (days, not seconds). Prepared transactions are
// never pruned.
func (r *Resource) Prune(ctx context.Context, before time.Time) (int64, error) {
	res, err := r.db.ExecContext(ctx, "DELETE FROM "+r.table+" WHERE participant = ? AND decided_at < ?", r.name, before.UTC())
	if err != nil {
		return 0, fmt.Errorf("mysqlxa: prune: %w", err)
	}
	return res.RowsAffected()
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
// the database's), and the coordinators of transactions whose forget time
// has passed and that are not prepared. The coordinators go first, while
// the decision rows that show a transaction decided are still there.
func (r *Resource) prune(ctx context.Context) error {
	now := r.now().UnixMilli()
	ids, err := r.prepared(ctx)
	if err != nil {
		return err
	}
	keep := []any{r.name, now}
	marks := []string{"''"}
	for _, id := range ids {
		keep, marks = append(keep, string(id)), append(marks, "?")
	}
	if _, err := r.db.ExecContext(ctx, "DELETE FROM "+r.coords+" WHERE participant = ? AND forget_ms < ? AND txid NOT IN ("+strings.Join(marks, ",")+")", keep...); err != nil {
		return fmt.Errorf("mysqlxa: prune coordinators: %w", err)
	}
	// A DELETE scanning the table would wait for the row lock of every
	// prepared transaction's own row; a plain SELECT (a consistent read)
	// takes no lock and sees only committed rows, which are then deleted
	// by key.
	for {
		rows, err := r.db.QueryContext(ctx, "SELECT txid FROM "+r.table+` WHERE participant = ? AND (forget_ms < ?
			OR forget_ms IS NULL AND ? >= 0 AND decided_at < NOW(6) - INTERVAL ? MICROSECOND) LIMIT 1000`,
			r.name, now, r.retention.Microseconds(), r.retention.Microseconds())
		if err != nil {
			return fmt.Errorf("mysqlxa: prune: %w", err)
		}
		del := []any{r.name}
		marks := []string{}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("mysqlxa: prune: %w", err)
			}
			del, marks = append(del, id), append(marks, "?")
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("mysqlxa: prune: %w", err)
		}
		if len(marks) == 0 {
			return nil
		}
		if err := r.deleteDecisions(ctx, marks, del); err != nil {
			return err
		}
		if len(marks) < 1000 {
			return nil
		}
	}
}

// deleteDecisions deletes the decision rows of this participant with the
// ids in args (after the name), one statement each: a delete of several
// keys reads past them and waits for the row lock of a prepared
// transaction next to one.
func (r *Resource) deleteDecisions(ctx context.Context, marks []string, args []any) error {
	tx, err := r.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return fmt.Errorf("mysqlxa: prune: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, "DELETE FROM "+r.table+" WHERE participant = ? AND txid = ?")
	if err != nil {
		return fmt.Errorf("mysqlxa: prune: %w", err)
	}
	defer stmt.Close()
	for _, id := range args[1:] {
		if _, err := stmt.ExecContext(ctx, args[0], id); err != nil {
			return fmt.Errorf("mysqlxa: prune: delete: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("mysqlxa: prune: %w", err)
	}
	return nil
}
