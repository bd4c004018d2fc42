package tpc

import (
	"encoding/json"
	"time"

	"github.com/concordtx/concord"
)

// ParticipantState is where one transaction stands at a participant. States
// only move forward: unknown -> preparing -> prepared -> committing|aborting
// -> committed|aborted (or read-only), with a failed phase-2 call falling back
// from committing or aborting to prepared.
type ParticipantState uint8

// Participant states.
const (
	PartUnknown    ParticipantState = iota // never seen, or forgotten
	PartPreparing                          // a prepare (or one-phase commit) call is in flight
	PartPrepared                           // voted yes and waiting for the decision (or holding a failed abort to retry)
	PartCommitting                         // a commit call is in flight
	PartAborting                           // an abort call is in flight
	PartCommitted                          // committed (in two phases or one)
	PartAborted                            // aborted, refused, or aborted before its prepare arrived
	PartReadOnly                           // voted read-only: nothing to commit or abort
)

var partStateNames = [...]string{"unknown", "preparing", "prepared", "committing", "aborting", "committed", "aborted", "read-only"}

func (s ParticipantState) String() string {
	if int(s) < len(partStateNames) {
		return partStateNames[s]
	}
	return "state(?)"
}

// Terminal reports whether s is a final state.
func (s ParticipantState) Terminal() bool {
	return s == PartCommitted || s == PartAborted || s == PartReadOnly
}

// ParticipantActionKind names a call the participant driver must make.
type ParticipantActionKind uint8

// Participant actions.
const (
	ActPrepare        ParticipantActionKind = iota + 1 // Resource.Prepare(ID, Payload)
	ActCommitOnePhase                                  // OnePhaseResource.CommitOnePhase(ID, Payload)
	ActCommit                                          // Resource.Commit(ID)
	ActAbort                                           // Resource.Abort(ID)
	ActQuery                                           // ask the coordinator at Coordinator for ID's outcome
)

var actNames = [...]string{"?", "prepare", "commit-one-phase", "commit", "abort", "query"}

func (k ParticipantActionKind) String() string {
	if int(k) < len(actNames) {
		return actNames[k]
	}
	return "action(?)"
}

// ParticipantAction is one call the driver must make and whose result it
// must report back with Participant.Done. The machine never asks for two
// resource calls on the same transaction at once.
type ParticipantAction struct {
	Kind    ParticipantActionKind
	ID      concord.TxID
	Payload json.RawMessage // ActPrepare and ActCommitOnePhase
	// Coordinator names the coordinator to ask (ActQuery), as the driver
	// passed it to Prepare (a base URL, or the driver's own encoding of
	// one); on ActPrepare and ActCommitOnePhase it is there for the
	// resource to keep. Empty means the driver's configured default
	// coordinator, as after a restart of a resource that did not keep it.
	Coordinator string
	// Deadline is the transaction's deadline given to PrepareBy, zero if
	// none (ActPrepare and ActCommitOnePhase).
	Deadline time.Time

	tx *ptx // the transaction, carried to its result by Result
}

// Result returns the result of a to fill in and report with Done: its Kind
// and ID set, and the transaction the machine asked for it about, which
// Done then need not look up by id. A result written out field by field
// works too.
func (a ParticipantAction) Result() ParticipantResult {
	return ParticipantResult{Kind: a.Kind, ID: a.ID, tx: a.tx}
}

// ParticipantErr classifies how a resource call failed.
type ParticipantErr uint8

// Result error classes. PErrUnknownTx and PErrAlreadyDecided correspond to
// participant.ErrUnknownTx and participant.ErrAlreadyDecided.
const (
	PErrNone           ParticipantErr = iota // the call succeeded
	PErrUnknownTx                            // the resource has no record of the transaction
	PErrAlreadyDecided                       // the resource holds the opposite decision
	PErrFailed                               // any other error; Result.ErrText says what
)

// ParticipantResult reports the end of one ParticipantAction.
type ParticipantResult struct {
	Kind ParticipantActionKind
	ID   concord.TxID
	// Vote and Reason answer ActPrepare.
	Vote   concord.Vote
	Reason string
	// Outcome answers ActCommitOnePhase (committed or aborted, with Reason)
	// and ActQuery (committed, aborted or pending).
	Outcome concord.Outcome
	Err     ParticipantErr
	ErrText string

	tx *ptx // see ParticipantAction.Result
}

// ReplyKind says what a ParticipantReply answers.
type ReplyKind uint8

// Reply kinds.
const (
	ReplyVote    ReplyKind = iota + 1 // answers a prepare: Vote, Reason, and Outcome for one-phase
	ReplyAck                          // a commit or abort is applied durably
	ReplyFailure                      // a commit or abort was not applied: Reason, and Outcome if decided the other way
)

// ParticipantReply answers one request the driver passed in with its
// request number.
type ParticipantReply struct {
	Req     uint64
	Kind    ReplyKind
	ID      concord.TxID
	Vote    concord.Vote
	Reason  string
	Outcome concord.Outcome
	// Forgotten marks the acknowledgement of a COMMIT the resource holds
	// no record of, past its forget time (Participant.CommitBy); Reason
	// says so.
	Forgotten bool
}

// ParticipantReady is what one step of the participant machine asks its
// driver to do: start the Actions (concurrently; each reports back through
// Done) and deliver the Replies. The participant machine keeps no log of its
// own: durability belongs to the resource, which makes a prepare durable
// before returning a yes vote, so a reply that carries a vote or an
// acknowledgement is only ever produced from a completed resource call.
type ParticipantReady struct {
	Actions []ParticipantAction
	Replies []ParticipantReply
}

// Empty reports whether rd asks for nothing.
func (rd ParticipantReady) Empty() bool { return len(rd.Actions) == 0 && len(rd.Replies) == 0 }

// ParticipantConfig holds the participant machine's knobs.
type ParticipantConfig struct {
	// OnePhase says the resource can commit in one step
	// (participant.OnePhaseResource). Without it a one-phase request is
	// served as an ordinary prepare and answered with a plain vote, which
	// turns the transaction into two-phase commit with one participant:
	// the coordinator stays the decider. Deciding alone by a prepare then a
	// commit would not be safe, since a no vote leaves nothing durable and a
	// late duplicate of the request after a crash could then commit.
	OnePhase bool
	// InDoubtAfter is how long a prepared transaction waits for a decision
	// before the participant asks the coordinator.
	InDoubtAfter time.Duration
	// QueryMin and QueryMax bound the capped exponential backoff between
	// outcome queries (or, for a one-phase transaction left uncertain by a
	// failed call, between abort attempts). Queries go on forever.
	QueryMin, QueryMax time.Duration
	// Retain is how many decided transactions are remembered in memory to
	// answer duplicates and refuse late prepares; older ones are forgotten
	// oldest first and then answered by the resource, which keeps its own
	// record.
	Retain int
}

// DefaultParticipantConfig is used for zero fields of a ParticipantConfig.
var DefaultParticipantConfig = ParticipantConfig{
	InDoubtAfter: 5 * time.Second,
	QueryMin:     250 * time.Millisecond,
	QueryMax:     30 * time.Second,
	Retain:       100_000,
}

// ParticipantTxStatus is a snapshot of one transaction at a participant.
type ParticipantTxStatus struct {
	ID          concord.TxID
	State       ParticipantState
	OnePhase    bool
	Vote        concord.Vote
	Reason      string
	Coordinator string
	PreparedAt  time.Time // when the yes vote was recorded, or the transaction recovered
	Queries     int       // outcome queries (or one-phase abort attempts) that did not settle it
	LastError   string    // latest failed call or query
	NextQuery   time.Time // zero unless waiting to ask
	Waiting     int       // requests waiting for an answer about it
}
