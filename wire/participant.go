package wire

import (
	"encoding/json"
	"time"

	"github.com/concordtx/concord"
)

// Paths every participant serves.
const (
	PathPrepare = "/v1/prepare"
	PathCommit  = "/v1/commit"
	PathAbort   = "/v1/abort"
)

// PrepareRequest is POSTed to PathPrepare. It carries one or more
// transactions, batched by the coordinator when many are in flight.
type PrepareRequest struct {
	// Coordinator is the base URL a participant in doubt asks for outcomes.
	Coordinator  string      `json:"coordinator"`
	Transactions []PrepareTx `json:"transactions"`
}

// PrepareTx asks a participant to do its part of one transaction tentatively
// and durably, then vote. The reservation rides on the PREPARE, so reserve and
// prepare are one message.
type PrepareTx struct {
	ID      concord.TxID    `json:"id"`
	Payload json.RawMessage `json:"payload,omitempty"`
	// OnePhase marks the only participant of a transaction: it decides by
	// itself and answers with the outcome instead of a vote.
	OnePhase bool `json:"one_phase,omitempty"`
	// DeadlineMS is the transaction's deadline in Unix milliseconds, by the
	// coordinator's clock: past it the coordinator no longer waits for the
	// vote, and a participant refuses a PREPARE it does not already know
	// (votes no, remembering nothing). Zero means none given (a coordinator
	// older than the field); see docs/protocol.md.
	DeadlineMS int64 `json:"deadline_ms,omitempty"`
}

// Deadline returns tx's deadline, or the zero time if it gives none.
func (tx PrepareTx) Deadline() time.Time {
	if tx.DeadlineMS <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(tx.DeadlineMS)
}

// PrepareResponse answers a PrepareRequest with one vote per transaction, in
// any order.
type PrepareResponse struct {
	Votes []VoteReply `json:"votes"`
}

// VoteReply is one participant's vote on one transaction.
type VoteReply struct {
	ID     concord.TxID `json:"id"`
	Vote   concord.Vote `json:"vote"`
	Reason string       `json:"reason,omitempty"`
	// Outcome is set only in answer to a one-phase prepare: committed or aborted.
	Outcome concord.Outcome `json:"outcome,omitempty"`
}

// DecisionRequest is POSTed to PathCommit or PathAbort.
type DecisionRequest struct {
	IDs []concord.TxID `json:"ids"`
	// DeadlinesMS, when given, holds one deadline per id, in the order of
	// IDs: the transaction's deadline_ms, as its PREPARE carried it (zero:
	// none). A participant that holds no record of a transaction it is
	// told to commit acknowledges the COMMIT once that deadline plus its
	// clock skew allowance has passed by its clock: it voted yes (the
	// only way to be sent a COMMIT), a yes voter keeps its prepared state
	// until the decision, so it applied the commit and has since
	// forgotten it (see docs/protocol.md). Omitted by a coordinator older
	// than the field; then such a COMMIT stays a failure.
	DeadlinesMS []int64 `json:"deadlines_ms,omitempty"`
}

// Deadline returns the deadline of r.IDs[i], or the zero time if r gives
// none for it.
func (r DecisionRequest) Deadline(i int) time.Time {
	if i >= len(r.DeadlinesMS) || r.DeadlinesMS[i] <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(r.DeadlinesMS[i])
}

// DecisionResponse lists the transactions whose decision the participant has
// applied durably, and those it could not apply.
type DecisionResponse struct {
	Acknowledged []concord.TxID `json:"acknowledged"`
	Failed       []TxFailure    `json:"failed,omitempty"`
	// Forgotten lists the acknowledged ids of COMMITs the participant
	// holds no record of, acknowledged because their deadline plus its
	// clock skew allowance had passed (see DecisionRequest.DeadlinesMS):
	// committed here and forgotten since. Each is also in Acknowledged.
	Forgotten []concord.TxID `json:"forgotten,omitempty"`
}

// TxFailure says why a decision on one transaction was not applied, for
// example a COMMIT for a transaction the participant never prepared.
type TxFailure struct {
	ID     concord.TxID `json:"id"`
	Reason string       `json:"reason"`
	// Outcome is set when the participant already holds the opposite
	// decision: an ABORT for a transaction it committed in one phase answers
	// with outcome "committed".
	Outcome concord.Outcome `json:"outcome,omitempty"`
}
