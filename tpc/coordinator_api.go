package tpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/concordtx/concord"
)

// Branch names one participant of a transaction and the payload it is asked
// to prepare.
type Branch struct {
	Participant string
	Payload     json.RawMessage
}

// MsgKind is the kind of a protocol message from coordinator to participant.
type MsgKind uint8

// Message kinds.
const (
	MsgPrepare MsgKind = iota + 1 // carries the payload; OnePhase for a lone participant
	MsgCommit
	MsgAbort
)

// Message is one protocol message the driver must send, after the Ready's
// records are durable when MustSync is set.
type Message struct {
	Kind     MsgKind
	To       string // participant name
	TxID     concord.TxID
	Payload  json.RawMessage // MsgPrepare only
	OnePhase bool            // MsgPrepare only
}

// RecordType tags a coordinator log record.
type RecordType uint8

// Coordinator log record types.
const (
	// RecBegin names the participants before any PREPARE is sent. Not forced:
	// presumed abort needs nothing on disk before the decision.
	RecBegin RecordType = iota + 1
	// RecCommit is the commit decision with every vote. Forced before any
	// COMMIT is sent or the client is answered.
	RecCommit
	// RecAbort is the abort decision with the votes known and the reason.
	// Not forced, except for a transaction begun with BeginResubmittable.
	RecAbort
	// RecEnd says every acknowledgement is in (or, for a one-phase
	// transaction, the participant's outcome is known). Not forced, except
	// when it carries a decision the coordinator took itself (every
	// participant read-only) for a transaction begun with
	// BeginResubmittable.
	RecEnd
)

// Record is one coordinator log record. The driver encodes it with
// MarshalBinary into a log entry of type uint8(Type).
type Record struct {
	Type         RecordType
	TxID         concord.TxID
	Participants []string       // RecBegin, RecCommit, RecAbort: in branch order
	Votes        []concord.Vote // RecCommit, RecAbort: aligned with Participants
	OnePhase     bool           // RecBegin
	Outcome      concord.Outcome
	Reason       string // RecAbort
}

// Ready is what one step of a state machine asks its driver to do, in order:
// append Records (and sync them when MustSync), then send Messages and report
// Outcome. Nothing in Messages or Outcome may act before Records are durable.
type Ready struct {
	Records  []Record
	MustSync bool
	Messages []Message
	// Outcome is set (committed or aborted) by the step that first makes the
	// decision reportable to the client; later steps leave it pending.
	Outcome concord.Outcome
	Reason  string
	// Done is set when the transaction needs nothing more: the driver may
	// forget it once Records are appended.
	Done bool
}

// Config holds the coordinator state machine's timing knobs.
type Config struct {
	// RetryMin and RetryMax bound the capped exponential backoff between
	// phase-2 deliveries to a participant that has not acknowledged.
	RetryMin, RetryMax time.Duration
}

// DefaultConfig is used for zero fields of a Config.
var DefaultConfig = Config{RetryMin: 50 * time.Millisecond, RetryMax: 5 * time.Second}

// Validate reports a Config that cannot be used: a negative duration, or a
// RetryMax below RetryMin once zero fields take their defaults. Drivers call
// it when they start; Begin and Recover never fail and instead use the
// default for any field that is out of range.
func (c Config) Validate() error {
	if c.RetryMin < 0 {
		return fmt.Errorf("%w: RetryMin %v is negative", ErrInvalid, c.RetryMin)
	}
	if c.RetryMax < 0 {
		return fmt.Errorf("%w: RetryMax %v is negative", ErrInvalid, c.RetryMax)
	}
	if c.RetryMin == 0 {
		c.RetryMin = DefaultConfig.RetryMin
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultConfig.RetryMax
	}
	if c.RetryMax < c.RetryMin {
		return fmt.Errorf("%w: RetryMax %v is below RetryMin %v", ErrInvalid, c.RetryMax, c.RetryMin)
	}
	return nil
}

// withDefaults returns c with every zero or out-of-range field replaced by
// its default, so that the state machine always runs with usable values.
func (c Config) withDefaults() Config {
	if c.RetryMin <= 0 {
		c.RetryMin = DefaultConfig.RetryMin
	}
	if c.RetryMax <= 0 {
		c.RetryMax = DefaultConfig.RetryMax
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = c.RetryMin
	}
	return c
}

// Limits on what a coordinator transaction may hold, so that every record
// stays small and every decoder can bound its allocations.
const (
	MaxBranches       = 256 // participants in one transaction
	MaxParticipantLen = 128 // bytes in a participant name
	MaxReasonLen      = 512 // bytes of a reason kept in records and statuses; longer ones are cut
	MaxRecordSize     = 1 << 16
)

// ErrDecided is returned by CoordinatorTx.Abort when the transaction already
// has a decision: a commit is never turned into an abort.
var ErrDecided = errors.New("tpc: transaction already decided")

// ErrInvalid is returned for input a state machine cannot accept: a bad
// Config, a transaction with no branches or a repeated participant, or a
// malformed log record.
var ErrInvalid = errors.New("tpc: invalid input")

// Recovered is one transaction that Recover brought back because it still
// needs work: the driver performs Ready exactly as it would after any step.
type Recovered struct {
	Tx    *CoordinatorTx
	Ready Ready
}

// VoteEvent is a participant's answer to PREPARE, or the driver's account of
// why none came (VoteUnreachable when the request could not be delivered).
type VoteEvent struct {
	Participant string
	Vote        concord.Vote
	Reason      string
	// Outcome answers a one-phase PREPARE: committed or aborted.
	Outcome concord.Outcome
}

// BranchStatus is one participant's part of a Status.
type BranchStatus struct {
	Participant  string
	Vote         concord.Vote
	Reason       string
	Acknowledged bool
	Attempts     int    // phase-2 deliveries tried
	LastError    string // latest phase-2 failure
	NextRetry    time.Time
}

// Status is a snapshot of one coordinator transaction, for reading APIs.
type Status struct {
	TxID     concord.TxID
	Outcome  concord.Outcome // pending while preparing
	Reason   string
	OnePhase bool
	Deadline time.Time
	Branches []BranchStatus
	Done     bool
}
