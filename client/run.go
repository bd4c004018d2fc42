package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/wire"
)

// State is a transaction's state as List filters by and TxStatus.State
// reads.
type State string

// States. A TxStatus is in StatePreparing, StateCommitted or StateAborted;
// List also takes StatePending (preparing, or decided and waiting for
// acknowledgements) and StateAll.
const (
	StatePreparing State = "preparing"
	StateCommitted State = "committed"
	StateAborted   State = "aborted"
	StatePending   State = "pending"
	StateAll       State = "all"
)

// Branch is one participant's part of a transaction. Payload is what the
// participant receives in its PREPARE, marshalled with encoding/json (a
// json.RawMessage is sent as it is; nil sends none).
type Branch struct {
	Participant string
	Payload     any
}

// Tx is a transaction to run.
type Tx struct {
	// ID is the idempotency key; empty means one chosen by Run (NewID),
	// so that the call can be repeated safely after a network error with
	// Result.ID.
	ID concord.TxID
	// Timeout is how long the coordinator waits for the votes before it
	// aborts; zero means its default. It is sent in whole milliseconds,
	// rounded up.
	Timeout  time.Duration
	Branches []Branch
}

// Result is the answer to Run.
type Result struct {
	ID      concord.TxID
	Outcome concord.Outcome
	// Reason says why it aborted.
	Reason string
	// Branches are each participant's vote and reason.
	Branches []wire.BranchResult
}

// Committed reports whether the transaction committed.
func (r *Result) Committed() bool { return r != nil && r.Outcome == concord.OutcomeCommitted }

// ErrAborted is matched (errors.Is) by the error of Run for a transaction
// that aborted: an answer, not a failure. The error is an *AbortedError.
var ErrAborted = errors.New("transaction aborted")

// ErrPending is matched by the error of Run when the coordinator had not
// decided before the call ended (HTTP 202): ask Get or Outcome later with
// Result.ID; resubmitting the same Tx is safe too.
var ErrPending = errors.New("transaction not decided yet")

// AbortedError is the error of Run for an aborted transaction. It carries
// the Result, whose Reason and Branches say who refused and why.
type AbortedError struct{ Result *Result }

func (e *AbortedError) Error() string {
	if e.Result.Reason != "" {
		return fmt.Sprintf("transaction %s aborted: %s", e.Result.ID, e.Result.Reason)
	}
	return fmt.Sprintf("transaction %s aborted", e.Result.ID)
}

// Is matches ErrAborted.
func (e *AbortedError) Is(target error) bool { return target == ErrAborted }

// Run runs tx and returns once its decision is durable. A committed
// transaction returns its Result and nil. An aborted one returns its
// Result and an *AbortedError (errors.Is(err, ErrAborted)); one not
// decided in time, its Result and an error matching ErrPending. Any other
// error is a failure to run it (an *APIError, or a transport error), and
// the Result then carries only the id, under which the same Tx may be run
// again safely (see Submit).
func (c *Client) Run(ctx context.Context, tx Tx) (*Result, error) {
	req, err := tx.request()
	if err != nil {
		return &Result{ID: tx.ID}, err
	}
	resp, err := c.Submit(ctx, req)
	res := &Result{ID: resp.ID, Outcome: resp.Outcome, Reason: resp.Reason, Branches: resp.Branches}
	if err != nil {
		return res, err
	}
	switch resp.Outcome {
	case concord.OutcomeCommitted:
		return res, nil
	case concord.OutcomeAborted:
		return res, &AbortedError{Result: res}
	default:
		return res, fmt.Errorf("%w: %s", ErrPending, resp.ID)
	}
}

// request builds the wire request: payloads marshalled, the timeout in
// milliseconds. An id is chosen here when tx has none.
func (tx Tx) request() (wire.SubmitRequest, error) {
	req := wire.SubmitRequest{ID: tx.ID}
	if req.ID == "" {
		req.ID = NewID()
	}
	if tx.Timeout < 0 {
		return req, fmt.Errorf("%w: timeout %v is negative", ErrInvalidInput, tx.Timeout)
	}
	req.TimeoutMS = int64((tx.Timeout + time.Millisecond - 1) / time.Millisecond)
	for i, b := range tx.Branches {
		wb := wire.Branch{Participant: b.Participant}
		if b.Payload != nil {
			raw, err := json.Marshal(b.Payload)
			if err != nil {
				return req, fmt.Errorf("%w: branch %d (%s): payload: %w", ErrInvalidInput, i, b.Participant, err)
			}
			wb.Payload = raw
		}
		req.Branches = append(req.Branches, wb)
	}
	return req, nil
}
