package main

import (
	"context"
	"encoding/json"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/failpoint"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/travel"
)

// failpointStore hits the participant failpoints right after a store's
// durable steps: a yes vote's prepared state is on disk but the vote not yet
// sent (participant.after-prepare-sync), a commit is on disk but not yet
// acknowledged (participant.after-commit). Disarmed, each costs one atomic
// load.
type failpointStore struct{ travel.Store }

// failpointOnePhaseStore is failpointStore for a store that also commits in
// one phase, so that wrapping does not hide it from the participant server.
type failpointOnePhaseStore struct {
	failpointStore
	one participant.OnePhaseResource
}

// failpointBatchStore is failpointOnePhaseStore for a store that also
// prepares, commits and commits in one phase in batches (the file store).
type failpointBatchStore struct {
	failpointOnePhaseStore
	batch batchStore
}

// batchStore is a store that batches all it can.
type batchStore interface {
	participant.BatchResource
	participant.OnePhaseBatchResource
}

var (
	_ travel.Store                      = failpointStore{}
	_ participant.OnePhaseResource      = failpointOnePhaseStore{}
	_ participant.OnePhaseResource      = failpointBatchStore{}
	_ participant.BatchResource         = failpointBatchStore{}
	_ participant.OnePhaseBatchResource = failpointBatchStore{}
)

// withFailpoints wraps st so that the participant failpoints can fire.
func withFailpoints(st travel.Store) travel.Store {
	if one, ok := st.(participant.OnePhaseResource); ok {
		if batch, ok := st.(batchStore); ok {
			return failpointBatchStore{failpointOnePhaseStore{failpointStore{st}, one}, batch}
		}
		return failpointOnePhaseStore{failpointStore{st}, one}
	}
	return failpointStore{st}
}

// Unwrap returns the wrapped store, so that its log counters are still
// reported (travel.StoreLogStats).
func (f failpointStore) Unwrap() travel.Store { return f.Store }

func (f failpointStore) Prepare(ctx context.Context, id concord.TxID, payload json.RawMessage, info participant.PrepareInfo) (participant.PrepareResult, error) {
	res, err := f.Store.Prepare(ctx, id, payload, info)
	if err == nil && res.Vote == concord.VoteYes {
		failpoint.Hit(failpoint.ParticipantAfterPrepareSync)
	}
	return res, err
}

func (f failpointStore) Commit(ctx context.Context, id concord.TxID) error {
	err := f.Store.Commit(ctx, id)
	if err == nil {
		failpoint.Hit(failpoint.ParticipantAfterCommit)
	}
	return err
}

func (f failpointOnePhaseStore) CommitOnePhase(ctx context.Context, id concord.TxID, payload json.RawMessage, info participant.PrepareInfo) (concord.Outcome, string, error) {
	out, reason, err := f.one.CommitOnePhase(ctx, id, payload, info)
	if err == nil && out == concord.OutcomeCommitted {
		failpoint.Hit(failpoint.ParticipantAfterCommit)
	}
	return out, reason, err
}

func (f failpointBatchStore) PrepareBatch(ctx context.Context, calls []participant.PrepareCall) {
	f.batch.PrepareBatch(ctx, calls)
	for _, c := range calls {
		if c.Err == nil && c.Result.Vote == concord.VoteYes {
			failpoint.Hit(failpoint.ParticipantAfterPrepareSync)
		}
	}
}

func (f failpointBatchStore) CommitBatch(ctx context.Context, calls []participant.CommitCall) {
	f.batch.CommitBatch(ctx, calls)
	for _, c := range calls {
		if c.Err == nil {
			failpoint.Hit(failpoint.ParticipantAfterCommit)
		}
	}
}

func (f failpointBatchStore) CommitOnePhaseBatch(ctx context.Context, calls []participant.OnePhaseCall) {
	f.batch.CommitOnePhaseBatch(ctx, calls)
	for _, c := range calls {
		if c.Err == nil && c.Outcome == concord.OutcomeCommitted {
			failpoint.Hit(failpoint.ParticipantAfterCommit)
		}
	}
}
