package participanttest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
)

var _ participant.OnePhaseResource = (*MemResource)(nil)

// MemResource is an in-memory participant.OnePhaseResource for tests: its
// state changes are "durable" in the sense that they survive as long as the
// value does, so a restart of it is the same value. A payload
// {"vote":"no"} votes no and {"vote":"read-only"} read-only; anything
// else votes yes. It is safe for concurrent use.
//
// It keeps the time rule of participant.Retention by the clock Now: a
// PREPARE past its deadline is refused and nothing remembered, and a
// decision is forgotten once its deadline plus the skew allowance has
// passed.
type MemResource struct {
	// Now is the resource's clock; nil means time.Now. Set it before use.
	Now func() time.Time
	// Retention is the time rule; zero fields take the defaults.
	Retention participant.Retention

	mu  sync.Mutex
	txs map[concord.TxID]memTx
}

type memTx struct {
	state    string // prepared, committed, aborted
	reason   string
	deadline time.Time
	coord    participant.CoordinatorRef
}

// NewMemResource returns an empty MemResource.
func NewMemResource() *MemResource { return &MemResource{txs: make(map[concord.TxID]memTx)} }

func (m *MemResource) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// sweep forgets the decisions whose time has passed; m.mu is held. A
// linear scan: this is a resource for tests.
func (m *MemResource) sweep() time.Time {
	now := m.now()
	for id, t := range m.txs {
		if t.state != "prepared" && now.After(m.Retention.ForgetAt(t.deadline)) {
			delete(m.txs, id)
		}
	}
	return now
}

// Remembered counts the transactions whose id starts with prefix that the
// resource holds a record of, after forgetting those whose time has
// passed.
func (m *MemResource) Remembered(ctx context.Context, prefix string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep()
	n := 0
	for id := range m.txs {
		if strings.HasPrefix(string(id), prefix) {
			n++
		}
	}
	return n, nil
}

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
func (m *MemResource) Prepare(ctx context.Context, id concord.TxID, payload json.RawMessage, info participant.PrepareInfo) (participant.PrepareResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.sweep()
	if t, ok := m.txs[id]; ok {
		if t.state == "aborted" {
			return participant.PrepareResult{Vote: concord.VoteNo, Reason: t.reason}, nil
		}
		return participant.PrepareResult{Vote: concord.VoteYes}, nil
	}
	adm := m.Retention.Admit(info, now)
	if adm.Refuse != "" {
		if adm.Remember {
			m.txs[id] = memTx{state: "aborted", reason: adm.Refuse, deadline: adm.Deadline}
		}
		return participant.PrepareResult{Vote: concord.VoteNo, Reason: adm.Refuse}, nil
	}
	r := memVote(payload)
	switch r.Vote {
	case concord.VoteYes:
		m.txs[id] = memTx{state: "prepared", deadline: adm.Deadline, coord: info.Coordinator}
	case concord.VoteNo:
		m.txs[id] = memTx{state: "aborted", reason: r.Reason, deadline: adm.Deadline}
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
	m.txs[id] = memTx{state: "committed", deadline: t.deadline}
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
		m.txs[id] = memTx{state: "aborted", reason: "aborted before prepare", deadline: m.Retention.AbortDeadline(m.sweep())}
		return nil
	}
	m.txs[id] = memTx{state: "aborted", reason: "aborted", deadline: t.deadline}
	return nil
}

// CommitOnePhase implements participant.OnePhaseResource.
func (m *MemResource) CommitOnePhase(ctx context.Context, id concord.TxID, payload json.RawMessage, info participant.PrepareInfo) (concord.Outcome, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.sweep()
	if t, ok := m.txs[id]; ok {
		if t.state == "aborted" {
			return concord.OutcomeAborted, t.reason, nil
		}
		m.txs[id] = memTx{state: "committed", deadline: t.deadline}
		return concord.OutcomeCommitted, "", nil
	}
	adm := m.Retention.Admit(info, now)
	if adm.Refuse != "" {
		if adm.Remember {
			m.txs[id] = memTx{state: "aborted", reason: adm.Refuse, deadline: adm.Deadline}
		}
		return concord.OutcomeAborted, adm.Refuse, nil
	}
	r := memVote(payload)
	if r.Vote == concord.VoteNo {
		m.txs[id] = memTx{state: "aborted", reason: r.Reason, deadline: adm.Deadline}
		return concord.OutcomeAborted, r.Reason, nil
	}
	m.txs[id] = memTx{state: "committed", deadline: adm.Deadline}
	return concord.OutcomeCommitted, "", nil
}

// Recover implements participant.Resource.
func (m *MemResource) Recover(ctx context.Context) ([]participant.RecoveredTx, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var txs []participant.RecoveredTx
	for id, t := range m.txs {
		if t.state == "prepared" {
			txs = append(txs, participant.RecoveredTx{ID: id, Coordinator: t.coord})
		}
	}
	slices.SortFunc(txs, func(a, b participant.RecoveredTx) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return txs, nil
}

// State returns id's state: "prepared", "committed", "aborted" or "" when
// unknown.
func (m *MemResource) State(id concord.TxID) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.txs[id].state
}
