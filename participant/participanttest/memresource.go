package participanttest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
)

var _ participant.OnePhaseResource = (*MemResource)(nil)

// MemResource is an in-memory participant.OnePhaseResource for tests: its
// state changes are "durable" in the sense that they survive as long as the
// value does, so a restart of it is the same value. A payload
// {"vote":"no"} votes no and {"vote":"read-only"} read-only; anything
// else votes yes. It is safe for concurrent use.
type MemResource struct {
	mu  sync.Mutex
	txs map[concord.TxID]memTx
}

type memTx struct {
	state  string // prepared, committed, aborted
	reason string
}

// NewMemResource returns an empty MemResource.
func NewMemResource() *MemResource { return &MemResource{txs: make(map[concord.TxID]memTx)} }

// YesPayload is a payload MemResource votes yes on.
func YesPayload(n int) json.RawMessage { return json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)) }

// NoPayload is a payload MemResource votes no on.
func NoPayload(n int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"n":%d,"vote":"no"}`, n))
}

func memVote(payload json.RawMessage) participant.PrepareResult {
	var p struct {
		Vote string `json:"vote"`
	}
	json.Unmarshal(payload, &p)
	switch p.Vote {
	case "no":
		return participant.PrepareResult{Vote: concord.VoteNo, Reason: "payload says no"}
	case "read-only":
		return participant.PrepareResult{Vote: concord.VoteReadOnly}
	}
	return participant.PrepareResult{Vote: concord.VoteYes}
}

// Prepare implements participant.Resource.
func (m *MemResource) Prepare(ctx context.Context, id concord.TxID, payload json.RawMessage) (participant.PrepareResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.txs[id]; ok {
		if t.state == "aborted" {
			return participant.PrepareResult{Vote: concord.VoteNo, Reason: t.reason}, nil
		}
		return participant.PrepareResult{Vote: concord.VoteYes}, nil
	}
	r := memVote(payload)
	switch r.Vote {
	case concord.VoteYes:
		m.txs[id] = memTx{state: "prepared"}
	case concord.VoteNo:
		m.txs[id] = memTx{state: "aborted", reason: r.Reason}
	}
	return r, nil
}

// Commit implements participant.Resource.
func (m *MemResource) Commit(ctx context.Context, id concord.TxID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.txs[id]
	switch {
	case !ok:
		return fmt.Errorf("commit %s: %w", id, participant.ErrUnknownTx)
	case t.state == "aborted":
		return fmt.Errorf("commit %s: %w", id, participant.ErrAlreadyDecided)
	}
	m.txs[id] = memTx{state: "committed"}
	return nil
}

// Abort implements participant.Resource.
func (m *MemResource) Abort(ctx context.Context, id concord.TxID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.txs[id]
	switch {
	case ok && t.state == "committed":
		return fmt.Errorf("abort %s: %w", id, participant.ErrAlreadyDecided)
	case ok && t.state == "aborted":
		return nil
	case !ok:
		m.txs[id] = memTx{state: "aborted", reason: "aborted before prepare"}
		return nil
	}
	m.txs[id] = memTx{state: "aborted", reason: "aborted"}
	return nil
}

// CommitOnePhase implements participant.OnePhaseResource.
func (m *MemResource) CommitOnePhase(ctx context.Context, id concord.TxID, payload json.RawMessage) (concord.Outcome, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.txs[id]; ok {
		if t.state == "aborted" {
			return concord.OutcomeAborted, t.reason, nil
		}
		m.txs[id] = memTx{state: "committed"}
		return concord.OutcomeCommitted, "", nil
	}
	r := memVote(payload)
	if r.Vote == concord.VoteNo {
		m.txs[id] = memTx{state: "aborted", reason: r.Reason}
		return concord.OutcomeAborted, r.Reason, nil
	}
	m.txs[id] = memTx{state: "committed"}
	return concord.OutcomeCommitted, "", nil
}

// Recover implements participant.Resource.
func (m *MemResource) Recover(ctx context.Context) ([]concord.TxID, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []concord.TxID
	for id, t := range m.txs {
		if t.state == "prepared" {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// State returns id's state: "prepared", "committed", "aborted" or "" when
// unknown.
func (m *MemResource) State(id concord.TxID) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.txs[id].state
}
