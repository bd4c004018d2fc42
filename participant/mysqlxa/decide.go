package mysqlxa

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
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
	ids, err := r.Recover(ctx)
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
func (r *Resource) record(ctx context.Context, q querier, id concord.TxID, state State, reason string) (Status, error) {
	_, err := q.ExecContext(ctx, "INSERT INTO "+r.table+" (participant, txid, state, reason) VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE state = state",
		r.name, string(id), string(state), reason)
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
	if err := concord.ValidateTxID(id); err != nil {
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
		ids, err := r.Recover(ctx)
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
	if err := concord.ValidateTxID(id); err != nil {
		return fmt.Errorf("mysqlxa: abort: %w", err)
	}
	xid := r.XID(id)
	if c, ok := r.unpin(id); ok {
		if _, err := c.ExecContext(ctx, "XA ROLLBACK "+xid); err == nil {
			_, err := r.record(ctx, c, id, StateAborted, "aborted")
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
			ids, err := r.Recover(ctx)
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
		st, err := r.record(ctx, r.db, id, StateAborted, reason)
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
// database, as XA RECOVER reports them.
func (r *Resource) Recover(ctx context.Context) ([]concord.TxID, error) {
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
		if err := concord.ValidateTxID(id); err != nil {
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
// deletes the decision rows older than Retention. Pruning is best effort: a
// failure leaves the rows for the next prune.
func (r *Resource) noteDecision(ctx context.Context) {
	if r.retention < 0 || r.pruneEvery <= 0 || r.decisions.Add(1)%r.pruneEvery != 0 {
		return
	}
	_, _ = r.db.ExecContext(ctx, "DELETE FROM "+r.table+" WHERE participant = ? AND decided_at < NOW(6) - INTERVAL ? MICROSECOND", r.name, r.retention.Microseconds())
}
