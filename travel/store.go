package travel

import (
	"context"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
)

// Store keeps one service's inventory and reservations and takes part in
// transactions as a participant.Resource: Prepare holds the quantity a
// Request payload asks for (or votes no with the reason), Commit confirms the
// hold and Abort releases it. The file store is the default; database stores
// implement the same interface.
//
// A Store keeps available + held + confirmed = capacity for every SKU at every
// instant, across crashes.
type Store interface {
	participant.Resource
	// Items lists every SKU's state in configuration order.
	Items(ctx context.Context) ([]Item, error)
	// Reservation returns transaction id's reservation, or an error wrapping
	// ErrNoReservation when the store holds none (never prepared, refused,
	// or forgotten).
	Reservation(ctx context.Context, id concord.TxID) (Reservation, error)
	// Reservations lists the reservations in state s, or in every state for
	// "", ordered by transaction id.
	Reservations(ctx context.Context, s State) ([]Reservation, error)
	// Close releases the store's files or connections. It does not decide
	// anything: prepared reservations stay prepared.
	Close() error
}

// vote turns the outcome of Inventory.Reserve into a participant vote.
func vote(err error) participant.PrepareResult {
	if err != nil {
		return participant.PrepareResult{Vote: concord.VoteNo, Reason: err.Error()}
	}
	return participant.PrepareResult{Vote: concord.VoteYes}
}
