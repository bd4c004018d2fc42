package tpc

import (
	"fmt"
	"strings"
	"time"

	"github.com/concordtx/concord"
)

// Ack steps the transaction with a participant's acknowledgement of the
// decision it was sent. When every yes voter has acknowledged a commit, an
// unforced RecEnd lets the driver forget the transaction.
func (t *CoordinatorTx) Ack(participant string, now time.Time) Ready {
	b := t.branch(participant)
	if b == nil || b.acked {
		return Ready{}
	}
	switch t.phase {
	case phaseResolving:
		// The participant applied our ABORT: it holds no commit.
		return t.settleOnePhase(b, concord.OutcomeAborted, "applied the abort after "+t.cause)
	case phaseCommitted:
		if b.vote != concord.VoteYes {
			return Ready{}
		}
		b.acked = true
		b.nextRetry = time.Time{}
		for _, o := range t.branches {
			if o.vote == concord.VoteYes && !o.acked {
				return Ready{}
			}
		}
		t.phase = phaseDone
		return Ready{Records: []Record{{Type: RecEnd, TxID: t.id, Outcome: concord.OutcomeCommitted}}, Done: true}
	}
	return Ready{}
}

// Resolved steps the transaction with a participant's refusal of the
// decision it was sent because it already holds outcome held (a
// wire.TxFailure carrying an outcome). For a one-phase transaction being
// resolved it is the outcome. During commit delivery a participant holding
// committed counts as an acknowledgement; one holding aborted broke its
// promise, which is kept as the branch's LastError and retried like any
// failed delivery so that an operator sees it.
func (t *CoordinatorTx) Resolved(participant string, held concord.Outcome, now time.Time) Ready {
	b := t.branch(participant)
	if b == nil || b.acked {
		return Ready{}
	}
	switch t.phase {
	case phasePreparing:
		if t.onePhase && (held == concord.OutcomeCommitted || held == concord.OutcomeAborted) {
			return t.onePhaseAnswer(b, VoteEvent{Participant: participant, Outcome: held})
		}
	case phaseResolving:
		if held == concord.OutcomeCommitted || held == concord.OutcomeAborted {
			return t.settleOnePhase(b, held, "holds aborted after "+t.cause)
		}
	case phaseCommitted:
		switch held {
		case concord.OutcomeCommitted:
			return t.Ack(participant, now)
		case concord.OutcomeAborted:
			return t.DeliveryFailed(participant, "participant reports it aborted after voting yes", now)
		}
	}
	return Ready{}
}

// DeliveryFailed records that a COMMIT (or, while resolving a one-phase
// transaction, the ABORT) could not be delivered or applied, and schedules
// the next attempt: RetryMin after the first failure, doubling up to
// RetryMax. Tick resends when it is due.
func (t *CoordinatorTx) DeliveryFailed(participant, reason string, now time.Time) Ready {
	b := t.branch(participant)
	if b == nil || b.acked {
		return Ready{}
	}
	switch {
	case t.phase == phaseCommitted && b.vote == concord.VoteYes, t.phase == phaseResolving:
	default:
		return Ready{}
	}
	switch {
	case b.backoff == 0:
		b.backoff = t.cfg.RetryMin
	case b.backoff < t.cfg.RetryMax:
		b.backoff = min(2*b.backoff, t.cfg.RetryMax)
	}
	b.lastErr = clip(orUnknown(reason))
	b.nextRetry = now.Add(b.backoff)
	return Ready{}
}

// Tick steps the transaction to now: an undecided two-phase transaction past
// its deadline aborts (every silent participant recorded as timed out); an
// undecided one-phase one starts resolving; due phase-2 retries are resent.
// After a commit decision the deadline is ignored.
func (t *CoordinatorTx) Tick(now time.Time) Ready {
	switch t.phase {
	case phasePreparing:
		if t.deadline.IsZero() || now.Before(t.deadline) {
			return Ready{}
		}
		if t.onePhase {
			b := &t.branches[0]
			return t.startResolving(fmt.Sprintf("timeout: no one-phase answer from %s before the deadline", b.Participant))
		}
		var silent []string
		for i := range t.branches {
			b := &t.branches[i]
			if b.vote == concord.VoteNone {
				b.vote, b.reason = concord.VoteTimeout, "no vote before the deadline"
				silent = append(silent, b.Participant)
			}
		}
		return t.decideAbort(fmt.Sprintf("timeout: no vote from %s before the deadline", strings.Join(silent, ", ")))
	case phaseCommitted, phaseResolving:
		return Ready{Messages: t.resend(func(b *coordBranch) bool {
			return !b.nextRetry.IsZero() && !now.Before(b.nextRetry)
		})}
	}
	return Ready{}
}

// RetryNow resends the pending phase-2 message to every participant that
// has not acknowledged, without waiting for its backoff. It does nothing
// before a decision or after the end.
func (t *CoordinatorTx) RetryNow(now time.Time) Ready {
	switch t.phase {
	case phaseCommitted, phaseResolving:
		return Ready{Messages: t.resend(func(*coordBranch) bool { return true })}
	}
	return Ready{}
}

// resend returns the phase-2 message for every unacknowledged branch that
// pick selects.
func (t *CoordinatorTx) resend(pick func(*coordBranch) bool) []Message {
	if t.phase == phaseCommitted {
		return t.sendCommits(pick)
	}
	b := &t.branches[0]
	if b.acked || !pick(b) {
		return nil
	}
	b.attempts++
	b.nextRetry = time.Time{}
	return []Message{{Kind: MsgAbort, To: b.Participant, TxID: t.id}}
}

// Abort is the operator's abort. An undecided two-phase transaction aborts
// at once; an undecided one-phase transaction starts resolving (its
// participant may already have committed, and then the outcome is commit);
// one already resolving is left as it is. A decided transaction returns
// ErrDecided: a commit is never aborted.
func (t *CoordinatorTx) Abort(reason string, now time.Time) (Ready, error) {
	switch t.phase {
	case phasePreparing:
		reason = "operator abort: " + orUnknown(reason)
		if t.onePhase {
			return t.startResolving(reason), nil
		}
		return t.decideAbort(reason), nil
	case phaseResolving:
		return Ready{}, nil
	}
	return Ready{}, fmt.Errorf("abort %s: %w: %s", t.id, ErrDecided, t.outcome)
}
