package tpc

import (
	"time"

	"github.com/concordtx/concord"
)

// RestartReason is the reason recorded for a transaction that Recover aborts
// because the coordinator restarted before deciding it.
const RestartReason = "coordinator restarted before deciding"

// recovering collects one transaction's records during Recover.
type recovering struct {
	begin    *Record // latest RecBegin
	decision *Record // first RecCommit or RecAbort after it
	end      *Record // RecEnd after it
}

// Recover rebuilds the coordinator's transactions from every log record, in
// log order. A transaction that still needs work comes back in live, in the
// order its first record appears, with the Ready that resumes it:
//   - RecBegin with no decision: aborted now (presumed abort), an unforced
//     RecAbort with reason RestartReason and MsgAbort to every participant,
//     since any of them may be prepared; Done.
//   - a one-phase RecBegin with no RecEnd: resolving, MsgAbort to its
//     participant, whose answer decides (see CoordinatorTx).
//   - RecCommit with no RecEnd: MsgCommit to every yes voter again (acks are
//     not logged; COMMIT is idempotent at participants).
//
// The Ready's Outcome names the decision already known (committed or
// aborted), so that a driver can answer clients waiting on it; it is pending
// while a one-phase transaction is being resolved. Transactions with a RecEnd
// or a RecAbort are finished and come back only as statuses. The first
// decision on record for a transaction wins; a RecBegin after a finished
// episode of the same id starts a new one. Records of unknown type are
// ignored. Recover never fails: it has no choice but to make progress.
func Recover(cfg Config, records []Record, now time.Time) (live []Recovered, finished []Status) {
	cfg = cfg.withDefaults()
	byID := make(map[concord.TxID]*recovering)
	var order []concord.TxID
	for i := range records {
		r := &records[i]
		if r.Type < RecBegin || r.Type > RecEnd {
			continue
		}
		acc := byID[r.TxID]
		if acc == nil {
			acc = &recovering{}
			byID[r.TxID] = acc
			order = append(order, r.TxID)
		}
		switch r.Type {
		case RecBegin:
			*acc = recovering{begin: r}
		case RecCommit, RecAbort:
			if acc.decision == nil && acc.end == nil {
				acc.decision = r
			}
		case RecEnd:
			if acc.end == nil {
				acc.end = r
			}
		}
	}
	for _, id := range order {
		acc := byID[id]
		t, rd, ok := acc.rebuild(cfg, id)
		if ok {
			live = append(live, Recovered{Tx: t, Ready: rd})
		} else {
			finished = append(finished, t.Status())
		}
	}
	return live, finished
}

// rebuild returns the transaction acc describes, and the Ready that resumes
// it with ok set when it still needs work.
func (acc *recovering) rebuild(cfg Config, id concord.TxID) (*CoordinatorTx, Ready, bool) {
	t := &CoordinatorTx{cfg: cfg, id: id}
	src := acc.begin
	if acc.decision != nil {
		src = acc.decision
	}
	if src == nil {
		src = acc.end
	}
	if acc.begin != nil {
		t.onePhase = acc.begin.OnePhase
	}
	for i, p := range src.Participants {
		b := coordBranch{Branch: Branch{Participant: p}}
		if i < len(src.Votes) {
			b.vote = src.Votes[i]
		}
		t.branches = append(t.branches, b)
	}

	switch {
	case acc.end != nil:
		t.phase, t.outcome = phaseDone, acc.end.Outcome
		if t.outcome == concord.OutcomePending && acc.decision != nil {
			t.outcome = acc.decision.Outcome
		}
		if acc.decision != nil && acc.decision.Type == RecAbort {
			t.outcome, t.reason = concord.OutcomeAborted, acc.decision.Reason
		}
		if t.outcome == concord.OutcomeCommitted {
			for i := range t.branches {
				t.branches[i].acked = t.branches[i].vote == concord.VoteYes
			}
		}
		return t, Ready{}, false
	case acc.decision != nil && acc.decision.Type == RecAbort:
		t.phase, t.outcome, t.reason = phaseDone, concord.OutcomeAborted, acc.decision.Reason
		return t, Ready{}, false
	case acc.decision != nil:
		t.phase, t.outcome = phaseCommitted, concord.OutcomeCommitted
		rd := Ready{Outcome: concord.OutcomeCommitted}
		rd.Messages = t.sendCommits(func(*coordBranch) bool { return true })
		if len(rd.Messages) == 0 {
			// A commit with no yes voter is never written; finish it anyway.
			t.phase = phaseDone
			rd.Records = []Record{{Type: RecEnd, TxID: id, Outcome: concord.OutcomeCommitted}}
			rd.Done = true
		}
		return t, rd, true
	case t.onePhase && len(t.branches) == 1:
		return t, t.startResolving(RestartReason), true
	default:
		// Unforced even for an id that may come again: the RecBegin read
		// back is durable (the driver's log syncs what it replays), so a
		// later crash brings the transaction back and aborts it again.
		t.phase = phasePreparing
		rd := t.decideAbort(RestartReason)
		return t, rd, true
	}
}
