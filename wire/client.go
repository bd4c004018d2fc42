package wire

import (
	"encoding/json"
	"time"

	"github.com/concordtx/concord"
)

// Paths the coordinator serves.
const (
	PathTransactions = "/v1/transactions" // POST to submit, GET to list
	PathHealth       = "/healthz"
)

// TransactionPath is where one transaction's status is read.
func TransactionPath(id concord.TxID) string { return PathTransactions + "/" + string(id) }

// OutcomePath is where a participant in doubt asks for a transaction's outcome.
func OutcomePath(id concord.TxID) string { return TransactionPath(id) + "/outcome" }

// SubmitRequest is POSTed to PathTransactions to run one transaction.
type SubmitRequest struct {
	// ID is an optional idempotency key: the same id with the same body
	// returns the same outcome and runs nothing twice.
	ID        concord.TxID `json:"id,omitempty"`
	TimeoutMS int64        `json:"timeout_ms,omitempty"`
	Branches  []Branch     `json:"branches"`
}

// Branch is one participant's part of a transaction.
type Branch struct {
	Participant string          `json:"participant"`
	Payload     json.RawMessage `json:"payload,omitempty"`
}

// SubmitResponse answers a SubmitRequest once the decision is durable.
type SubmitResponse struct {
	ID       concord.TxID    `json:"id"`
	Outcome  concord.Outcome `json:"outcome"`
	Reason   string          `json:"reason,omitempty"`
	Branches []BranchResult  `json:"branches"`
}

// BranchResult is what one participant answered.
type BranchResult struct {
	Participant string       `json:"participant"`
	Vote        concord.Vote `json:"vote"`
	Reason      string       `json:"reason,omitempty"`
}

// TxStatus answers GET TransactionPath(id).
type TxStatus struct {
	ID concord.TxID `json:"id"`
	// State is "preparing", "committed" or "aborted".
	State    string         `json:"state"`
	Reason   string         `json:"reason,omitempty"`
	Branches []BranchStatus `json:"branches"`
	// Done is set once the coordinator needs nothing more for it: every
	// acknowledgement is in, or it aborted.
	Done bool `json:"done"`
}

// BranchStatus is one participant's part of a TxStatus.
type BranchStatus struct {
	Participant  string       `json:"participant"`
	Vote         concord.Vote `json:"vote"`
	Reason       string       `json:"reason,omitempty"`
	Acknowledged bool         `json:"acknowledged"`
	// Attempts counts phase-2 deliveries tried so far; LastError is the latest failure.
	Attempts  int    `json:"attempts,omitempty"`
	LastError string `json:"last_error,omitempty"`
	// NextRetry is when the decision is sent again, if a retry is scheduled.
	NextRetry time.Time `json:"next_retry,omitzero"`
}

// TxList answers GET PathTransactions.
type TxList struct {
	Transactions []TxStatus `json:"transactions"`
}

// OutcomeResponse answers GET OutcomePath(id). A transaction the coordinator
// has no record of is aborted (presumed abort), and Forgotten is set.
type OutcomeResponse struct {
	ID      concord.TxID    `json:"id"`
	Outcome concord.Outcome `json:"outcome"`
	// Forgotten is set when the coordinator holds no record of the id: it
	// was never submitted, or finished longer ago than the coordinator's
	// idempotency window. Outcome is then aborted, which a participant in
	// doubt acts on (presumed abort: no participant is in doubt about a
	// forgotten commit, since a commit is forgotten only once every yes
	// voter acknowledged it); a client must not, its outcome is unknown.
	Forgotten bool `json:"forgotten,omitempty"`
}

// StateForgotten is the State of the 404 answer to a status query about
// an id the coordinator holds no record of: never submitted, or finished
// longer ago than its idempotency window.
const StateForgotten = "forgotten"

// ErrorResponse is the body of every 4xx and 5xx answer.
type ErrorResponse struct {
	Error string `json:"error"`
	// State, when set, qualifies the error: StateForgotten.
	State string `json:"state,omitempty"`
}
