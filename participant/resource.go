package participant

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/concordtx/concord"
)

// ErrUnknownTx is returned by Resource.Commit for a transaction the resource
// never prepared (or has no record of). It is a protocol error, never a
// silent success.
var ErrUnknownTx = errors.New("unknown transaction")

// ErrAlreadyDecided is returned when a decision contradicts the one already
// applied: a Commit after Abort, or an Abort after Commit.
var ErrAlreadyDecided = errors.New("transaction already decided the other way")

// PrepareResult is a resource's vote on one transaction.
type PrepareResult struct {
	Vote   concord.Vote // VoteYes, VoteNo or VoteReadOnly
	Reason string       // why, for a no vote
}

// Resource is what a service implements to take part in Concord
// transactions, in the spirit of X/Open XA. Every method may be called
// concurrently for different transactions; the Server never calls two methods
// for the same transaction at once.
type Resource interface {
	// Prepare does the tentative work of transaction id described by payload
	// and makes it durable, with info.Coordinator, before returning VoteYes.
	// A VoteNo leaves nothing behind; VoteReadOnly means there is nothing to
	// commit or abort. Prepare must be idempotent on id: for an id it has
	// already prepared, committed or aborted it returns that earlier vote
	// (VoteNo for an aborted one) without doing the work again, whatever
	// the time. For an id it holds no record of it first applies
	// Retention.Admit to info: past the deadline it votes no and records
	// nothing.
	//
	// A resource remembers every decision (a commit, an abort, a no vote)
	// until Retention.ForgetAt of the transaction's deadline has passed by
	// its own clock, and may forget it then; see Retention.
	Prepare(ctx context.Context, id concord.TxID, payload json.RawMessage, info PrepareInfo) (PrepareResult, error)

	// Commit makes a prepared transaction permanent. Committing a committed
	// transaction returns nil; an unknown one returns ErrUnknownTx; an aborted
	// one returns ErrAlreadyDecided.
	Commit(ctx context.Context, id concord.TxID) error

	// Abort releases a prepared transaction. Aborting an aborted or unknown
	// transaction returns nil, and an unknown id must then be refused by a
	// later Prepare (VoteNo) until Retention.ForgetAt of
	// Retention.AbortDeadline of the time of the abort; aborting a
	// committed one returns ErrAlreadyDecided.
	Abort(ctx context.Context, id concord.TxID) error

	// Recover lists the transactions that are prepared and not yet decided,
	// typically after a restart, each with the coordinator its PREPARE
	// named.
	Recover(ctx context.Context) ([]RecoveredTx, error)
}

// OnePhaseResource is implemented by a resource that can do the work of a
// transaction and commit it in one durable step, for a transaction with a
// single participant. A resource without it answers a one-phase request with
// its Prepare vote, and the coordinator decides as in two-phase commit.
type OnePhaseResource interface {
	Resource
	// CommitOnePhase does the work of id and commits it at once, or refuses.
	// Like Prepare it is idempotent on id, applies Retention.Admit to an id
	// it holds no record of, and remembers its outcome by the same time
	// rule. It returns OutcomeCommitted or OutcomeAborted (with a reason).
	CommitOnePhase(ctx context.Context, id concord.TxID, payload json.RawMessage, info PrepareInfo) (concord.Outcome, string, error)
}

// PrepareCall is one transaction of a BatchResource.PrepareBatch call: the
// Server fills ID and Payload, the resource Result and Err.
type PrepareCall struct {
	ID      concord.TxID
	Payload json.RawMessage
	Info    PrepareInfo
	Result  PrepareResult
	Err     error
}

// CommitCall is one transaction of a BatchResource.CommitBatch call: the
// Server fills ID, the resource Err.
type CommitCall struct {
	ID  concord.TxID
	Err error
}

// BatchResource is implemented by a resource that can prepare or commit
// several transactions in one call, sharing one durable write among them.
// The Server then makes the prepares (or commits) that one request needs as
// a single call in the request's own goroutine, instead of one call per
// transaction in a goroutine of its own. Use it only for a resource whose
// calls end promptly (a local disk, say): the request waits for the whole
// call, even if its caller goes away.
type BatchResource interface {
	Resource
	// PrepareBatch does for every call what Prepare would, as if the calls
	// were made concurrently, and sets each one's Result and Err. The ids
	// are distinct. It returns once every yes vote is durable.
	PrepareBatch(ctx context.Context, calls []PrepareCall)
	// CommitBatch does for every call what Commit would, as if the calls
	// were made concurrently, and sets each one's Err. The ids are
	// distinct. It returns once every commit is durable.
	CommitBatch(ctx context.Context, calls []CommitCall)
}

// OnePhaseCall is one transaction of a
// OnePhaseBatchResource.CommitOnePhaseBatch call: the Server fills ID and
// Payload, the resource Outcome, Reason and Err.
type OnePhaseCall struct {
	ID      concord.TxID
	Payload json.RawMessage
	Info    PrepareInfo
	Outcome concord.Outcome
	Reason  string
	Err     error
}

// OnePhaseBatchResource is implemented by a OnePhaseResource that can commit
// several one-phase transactions in one call, sharing one durable write
// among them. The Server then makes the one-phase commits of one request as
// a single call in the request's own goroutine, as it does for a
// BatchResource's prepares and commits, and with the same caveat: use it only
// for a resource whose calls end promptly.
type OnePhaseBatchResource interface {
	OnePhaseResource
	// CommitOnePhaseBatch does for every call what CommitOnePhase would, as
	// if the calls were made concurrently, and sets each one's Outcome,
	// Reason and Err. The ids are distinct. It returns once every outcome
	// it reports is durable.
	CommitOnePhaseBatch(ctx context.Context, calls []OnePhaseCall)
}
