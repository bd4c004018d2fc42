package wire

import (
	"time"

	"github.com/concordtx/concord"
)

// Paths of the coordinator's operator API, beside PathTransactions.
const (
	PathOverview = "/v1/overview" // GET: counters and per-participant health
	PathMetrics  = "/metrics"     // GET: Prometheus text format
)

// TimelinePath is where one transaction's event history is read.
func TimelinePath(id concord.TxID) string { return TransactionPath(id) + "/timeline" }

// RetryPath is where an operator asks for a decision to be sent again now.
func RetryPath(id concord.TxID) string { return TransactionPath(id) + "/retry" }

// AbortPath is where an operator aborts a transaction that has no decision.
func AbortPath(id concord.TxID) string { return TransactionPath(id) + "/abort" }

// TxEvent is one step in a transaction's life as the coordinator saw it.
type TxEvent struct {
	At time.Time `json:"at"`
	// Kind is one of submitted, recovered, prepare-sent, vote,
	// decision, commit-sent, abort-sent, delivery-failed, acknowledged,
	// resolved, end, operator-retry, operator-abort.
	Kind        string `json:"kind"`
	Participant string `json:"participant,omitempty"`
	// Value is the vote (for vote), the outcome (decision, resolved) or
	// empty.
	Value  string `json:"value,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Attempt numbers the sends of one message kind to one participant
	// (commit-sent, abort-sent, prepare-sent), from 1.
	Attempt int `json:"attempt,omitempty"`
}

// TxTimeline answers GET TimelinePath(id): the transaction's state and its
// events, oldest first. A long history keeps its first and latest events;
// Dropped counts those left out between them.
type TxTimeline struct {
	Status  TxStatus  `json:"status"`
	Events  []TxEvent `json:"events"`
	Dropped int       `json:"dropped,omitempty"`
	// Traceparent is the W3C trace context the client submitted with.
	Traceparent string `json:"traceparent,omitempty"`
}

// ActionRequest is the optional body of an operator action.
type ActionRequest struct {
	// Reason is recorded with the action (an abort's reason).
	Reason string `json:"reason,omitempty"`
}

// ActionResponse was meant to answer POST RetryPath(id) and AbortPath(id).
//
// Deprecated: those answer the transaction's TxStatus after the action (as
// openapi/coordinator.json says); nothing sends an ActionResponse.
type ActionResponse struct {
	ID concord.TxID `json:"id"`
	// Action is "retry" or "abort".
	Action string `json:"action"`
	// Result says what the action did, for people.
	Result string   `json:"result"`
	Status TxStatus `json:"status"`
}

// Overview answers GET PathOverview: the coordinator's counters since it
// started and each participant's health.
type Overview struct {
	Now       time.Time `json:"now"`
	StartedAt time.Time `json:"started_at"`
	Submitted int64     `json:"submitted"`
	Committed int64     `json:"committed"`
	Aborted   int64     `json:"aborted"`
	// InFlight counts transactions in the table: preparing, or decided and
	// waiting for acknowledgements.
	InFlight int `json:"in_flight"`
	// AwaitingAck counts decided transactions still waiting for an
	// acknowledgement from at least one participant.
	AwaitingAck int   `json:"awaiting_ack"`
	Remembered  int   `json:"remembered"`
	LogSegments int   `json:"log_segments"`
	LogSyncs    int64 `json:"log_syncs"`
	// Compactions counts compaction passes that found records to release;
	// most delete no segment (the log deletes whole segments only), and
	// LogSegmentsRemoved counts the segments deleted.
	Compactions        int64               `json:"compactions"`
	LogSegmentsRemoved int64               `json:"log_segments_removed"`
	Halted             string              `json:"halted,omitempty"`
	Participants       []ParticipantHealth `json:"participants"`
}

// ParticipantHealth is what the coordinator knows of one participant: from
// its protocol requests to it (State and the fields after it, the traffic
// view) and from its health probes (the Probe fields), which see a
// participant that stopped or came back without waiting for a transaction.
type ParticipantHealth struct {
	Name string `json:"name"`
	// State is "ok" (the last request succeeded), "failing" (the last
	// request failed) or "idle" (no request yet).
	State    string `json:"state"`
	Requests int64  `json:"requests"`
	Errors   int64  `json:"errors"`
	// ConsecutiveErrors counts failed requests since the last success.
	ConsecutiveErrors int64     `json:"consecutive_errors"`
	LastOK            time.Time `json:"last_ok,omitzero"`
	LastErrorAt       time.Time `json:"last_error_at,omitzero"`
	LastError         string    `json:"last_error,omitempty"`
	// PendingAcks counts decided transactions waiting for this
	// participant's acknowledgement.
	PendingAcks int `json:"pending_acks"`
	// Probe is "ok" (the last probe was answered), "failing" (it was not),
	// "waiting" (no probe answered or failed yet) or "off" (the
	// coordinator does not probe).
	Probe            string    `json:"probe"`
	ProbeLastOK      time.Time `json:"probe_last_ok,omitzero"`
	ProbeLastErrorAt time.Time `json:"probe_last_error_at,omitzero"`
	ProbeLastError   string    `json:"probe_last_error,omitempty"`
	// ProbeFailures counts failed probes since the last answered one;
	// while it is above zero the probes back off.
	ProbeFailures int64     `json:"probe_failures,omitempty"`
	NextProbe     time.Time `json:"next_probe,omitzero"`
}
