package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/tpc"
	"github.com/concordtx/concord/wire"
)

// ErrDecided is returned by Abort for a transaction that already has a
// decision: a commit is never aborted.
var ErrDecided = errors.New("transaction already decided")

// liveTx returns the live transaction id, or an error: ErrBadRequest for a
// bad id, ErrNotFound when it is not live (unknown or finished),
// ErrForbidden when it is finished and not the caller's in ctx. (Whether
// the caller may act on a live one is checked under its lock, by the
// action.)
func (c *Coordinator) liveTx(ctx context.Context, id concord.TxID) (*txState, error) {
	if err := c.unavailable(); err != nil {
		return nil, err
	}
	if err := concord.ValidateTxID(id); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	t, fin, err := c.table.lookup(id)
	if err != nil {
		return nil, err
	}
	if t == nil {
		if fin != nil {
			if err := c.authorize(ctx, id, fin.owner); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %s is finished (%s): nothing to do", ErrNotFound, id, fin.status.Outcome)
		}
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return t, nil
}

// RetryNow resends the decision of transaction id at once to every
// participant that has not acknowledged it, without waiting for its
// backoff: the operator's re-drive, once a participant is known to be back.
// It returns the transaction's status.
func (c *Coordinator) RetryNow(id concord.TxID) (wire.TxStatus, error) {
	return c.retryNow(context.Background(), id)
}

// retryNow is RetryNow for the caller in ctx: ErrForbidden, and nothing
// done, for another client's transaction.
func (c *Coordinator) retryNow(ctx context.Context, id concord.TxID) (wire.TxStatus, error) {
	t, err := c.liveTx(ctx, id)
	if err != nil {
		c.logAction(ctx, "retry", id, "", err)
		return wire.TxStatus{}, err
	}
	var to []string
	var authErr error
	c.step(t, func(core *tpc.CoordinatorTx, now time.Time) tpc.Ready {
		if authErr = c.authorize(ctx, id, t.owner); authErr != nil {
			return tpc.Ready{}
		}
		rd := core.RetryNow(now)
		for _, m := range rd.Messages {
			to = append(to, m.To)
			c.participantMetrics(m.To).retries.Inc()
		}
		t.noteLocked(now, evOperatorRetry, "", noValue, retryNote(to))
		return rd
	})
	if authErr != nil {
		c.logAction(ctx, "retry", id, "", authErr)
		return wire.TxStatus{}, authErr
	}
	c.logAction(ctx, "retry", id, retryNote(to), nil)
	return c.status(ctx, id)
}

// Abort is the operator's abort of a transaction that has no decision yet
// (a one-phase one is settled by its participant, which may already have
// committed). A decided transaction returns ErrDecided. It returns the
// transaction's status.
func (c *Coordinator) Abort(id concord.TxID, reason string) (wire.TxStatus, error) {
	return c.abort(context.Background(), id, reason)
}

// abort is Abort for the caller in ctx: ErrForbidden, and nothing done, for
// another client's transaction. The owner is checked on the transaction
// aborted, under its lock, in the same step as the abort.
func (c *Coordinator) abort(ctx context.Context, id concord.TxID, reason string) (wire.TxStatus, error) {
	t, err := c.liveTx(ctx, id)
	if err != nil {
		if _, fin, _ := c.table.lookup(id); fin != nil && fin.status.Outcome == concord.OutcomeCommitted && !errors.Is(err, ErrForbidden) {
			err = fmt.Errorf("%w: %s is committed, and a committed transaction is never aborted", ErrDecided, id)
		}
		c.logAction(ctx, "abort", id, "", err)
		return wire.TxStatus{}, err
	}
	var abortErr error
	c.step(t, func(core *tpc.CoordinatorTx, now time.Time) tpc.Ready {
		if abortErr = c.authorize(ctx, id, t.owner); abortErr != nil {
			return tpc.Ready{}
		}
		rd, err := core.Abort(reason, now)
		if err != nil {
			o := core.Status().Outcome
			abortErr = fmt.Errorf("%w: %s is %s", ErrDecided, id, o)
			if o == concord.OutcomeCommitted {
				abortErr = fmt.Errorf("%w: %s is committed, and a committed transaction is never aborted", ErrDecided, id)
			}
			return rd
		}
		t.noteLocked(now, evOperatorAbort, "", noValue, "operator abort: "+reason)
		return rd
	})
	c.logAction(ctx, "abort", id, "reason: "+reason, abortErr)
	if abortErr != nil {
		return wire.TxStatus{}, abortErr
	}
	return c.status(ctx, id)
}
