package travel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
)

// MemStore is a Store held only in memory: it follows the Resource contract
// but forgets everything when the process ends, so it suits tests and
// throwaway runs, never data that matters.
type MemStore struct {
	mu  sync.Mutex
	inv *Inventory
	// refused remembers ids this store voted no on or aborted before any
	// prepare, so a repeated or late prepare is refused again. Bounded like
	// the inventory's decided reservations: the oldest are forgotten past
	// DecidedRetention.
	refused map[concord.TxID]string
	order   []concord.TxID
}

var _ Store = (*MemStore)(nil)
var _ participant.OnePhaseResource = (*MemStore)(nil)

// NewMemStore returns an in-memory store offering stock.
func NewMemStore(stock []Stock) (*MemStore, error) {
	inv, err := NewInventory(stock)
	if err != nil {
		return nil, err
	}
	return &MemStore{inv: inv, refused: map[concord.TxID]string{}}, nil
}

// Inventory returns the store's in-memory inventory.
func (m *MemStore) Inventory() *Inventory { return m.inv }

func (m *MemStore) refuse(id concord.TxID, reason string) {
	if _, ok := m.refused[id]; ok {
		return
	}
	m.refused[id] = reason
	m.order = append(m.order, id)
	for len(m.order) > DecidedRetention {
		delete(m.refused, m.order[0])
		m.order = m.order[1:]
	}
}

// Prepare holds what payload asks for, or votes no with the reason.
func (m *MemStore) Prepare(_ context.Context, id concord.TxID, payload json.RawMessage, _ participant.PrepareInfo) (participant.PrepareResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if reason, ok := m.refused[id]; ok {
		return participant.PrepareResult{Vote: concord.VoteNo, Reason: reason}, nil
	}
	_, err := m.inv.Reserve(id, payload)
	if err != nil && !errors.Is(err, ErrDecided) {
		m.refuse(id, err.Error())
	}
	return vote(err), nil
}

// CommitOnePhase holds and confirms in one step, or refuses.
func (m *MemStore) CommitOnePhase(ctx context.Context, id concord.TxID, payload json.RawMessage, info participant.PrepareInfo) (concord.Outcome, string, error) {
	res, err := m.Prepare(ctx, id, payload, info)
	if err != nil {
		return concord.OutcomeAborted, "", err
	}
	if res.Vote != concord.VoteYes {
		return concord.OutcomeAborted, res.Reason, nil
	}
	if err := m.Commit(ctx, id); err != nil {
		return concord.OutcomeAborted, "", err
	}
	return concord.OutcomeCommitted, "", nil
}

// Commit confirms a prepared reservation.
func (m *MemStore) Commit(_ context.Context, id concord.TxID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.refused[id]; ok {
		return fmt.Errorf("commit %s: %w", id, participant.ErrAlreadyDecided)
	}
	return resourceError(m.inv.Commit(id))
}

// Abort releases a prepared reservation; an unknown id is remembered so a
// later prepare is refused.
func (m *MemStore) Abort(_ context.Context, id concord.TxID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.inv.Reservation(id); errors.Is(err, ErrNoReservation) {
		m.refuse(id, "aborted before prepare")
		return nil
	}
	return resourceError(m.inv.Abort(id))
}

// Recover lists the prepared reservations.
// It names no coordinator: the store lives in memory, so nothing it holds
// survives the restart after which the coordinator would be asked.
func (m *MemStore) Recover(context.Context) ([]participant.RecoveredTx, error) {
	var txs []participant.RecoveredTx
	for _, r := range m.inv.Reservations(StatePrepared) {
		txs = append(txs, participant.RecoveredTx{ID: r.ID})
	}
	return txs, nil
}

// Items lists every SKU's state.
func (m *MemStore) Items(context.Context) ([]Item, error) { return m.inv.Items(), nil }

// Reservation returns id's reservation; a refused one is reported aborted
// with the reason while remembered.
func (m *MemStore) Reservation(_ context.Context, id concord.TxID) (Reservation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.inv.Reservation(id)
	if reason, ok := m.refused[id]; ok && errors.Is(err, ErrNoReservation) {
		return Reservation{ID: id, State: StateAborted, Reason: reason}, nil
	}
	return r, err
}

// Reservations lists reservations in state s ("" for all).
func (m *MemStore) Reservations(_ context.Context, s State) ([]Reservation, error) {
	return m.inv.Reservations(s), nil
}

// Close does nothing: there is nothing to release.
func (m *MemStore) Close() error { return nil }

// resourceError maps the inventory's errors to the Resource contract's.
func resourceError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNoReservation):
		return fmt.Errorf("%w: %w", participant.ErrUnknownTx, err)
	case errors.Is(err, ErrDecided):
		return fmt.Errorf("%w: %w", participant.ErrAlreadyDecided, err)
	}
	return err
}
