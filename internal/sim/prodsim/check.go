package prodsim

import (
	"context"
	"errors"
	"fmt"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/travel"
)

// check runs the final checks on the settled system. Every process is up,
// except one that refused to start after damage at rest: the transactions
// it took part in are not judged at it.
func (w *world) check() {
	ctx := context.Background()
	bad := func(inv string, id concord.TxID, format string, args ...any) {
		w.violate(Violation{Invariant: inv, Tx: id, Detail: fmt.Sprintf(format, args...)})
	}
	coordOK := w.coord.up && !w.coord.refused
	type sum struct{ low, high int64 } // confirmed bounds per participant and SKU
	sums := map[string]map[string]*sum{}
	for _, p := range w.parts {
		sums[p.name] = map[string]*sum{}
		for _, s := range p.stock {
			sums[p.name][s.SKU] = &sum{}
		}
	}
	for _, r := range w.order {
		// One id, one answer.
		var first concord.Outcome // OutcomePending: none yet
		for _, t := range r.told {
			if first == concord.OutcomePending {
				first = t.outcome
			} else if t.outcome != first {
				bad("one id, one answer", r.id, "answered %s, then %s at +%s (changed body: %v)", first, t.outcome, t.at, t.changed)
				break
			}
		}
		final := concord.OutcomePending
		if coordOK {
			o, forgotten, err := w.coord.c.OutcomeOf(r.id)
			switch {
			case err != nil:
				bad("checker", r.id, "outcome: %v", err)
			case forgotten && first != concord.OutcomePending:
				// The run is far shorter than the idempotency window.
				bad("one id, one answer", r.id, "client told %s, but the coordinator has forgotten it within the idempotency window", first)
			case !forgotten:
				final = o
			}
		}
		switch {
		case final == concord.OutcomeCommitted:
			w.res.Committed++
		case final == concord.OutcomeAborted:
			w.res.Aborted++
		default:
			w.res.Unknown++
		}
		if first != concord.OutcomePending && final != concord.OutcomePending && final != first {
			bad("one id, one answer", r.id, "client told %s, the coordinator now answers %s", first, final)
		}
		committedAt, abortedAt := "", ""
		allCommitted := true
		for name, want := range r.want {
			p := w.part(name)
			if !p.up || p.refused {
				allCommitted = false
				continue
			}
			res, err := p.store.Reservation(ctx, r.id)
			st := travel.State("")
			if err == nil {
				st = res.State
			} else if !errors.Is(err, travel.ErrNoReservation) {
				bad("checker", r.id, "%s: %v", name, err)
			}
			s := sums[name][want.SKU]
			switch st {
			case travel.StateCommitted:
				committedAt = name
				if s != nil {
					s.low += want.Quantity
					s.high += want.Quantity
				}
			case travel.StateAborted:
				abortedAt = name
				allCommitted = false
			case travel.StatePrepared:
				allCommitted = false
				if w.anyRefused() {
					break
				}
				bad("no reservation held forever", r.id, "%s still holds it prepared after every process is up and the network healed", name)
			default:
				allCommitted = false
			}
		}
		if committedAt != "" && abortedAt != "" {
			bad("atomicity", r.id, "committed at %s, aborted at %s", committedAt, abortedAt)
		}
		if first == concord.OutcomeCommitted && !allCommitted && w.allUp(r) && !w.anyRefused() {
			bad("committed at every branch", r.id, "client told committed, but not every branch is committed: %s", w.branchStates(r))
		}
		if first == concord.OutcomeAborted && committedAt != "" {
			bad("atomicity", r.id, "client told aborted, but %s committed", committedAt)
		}
		if final == concord.OutcomeCommitted && !allCommitted && w.allUp(r) && !w.anyRefused() {
			bad("committed at every branch", r.id, "the coordinator answers committed, but not every branch is committed: %s", w.branchStates(r))
		}
	}
	// Conservation: available + held + confirmed = capacity, nothing held,
	// and what is confirmed is what the committed reservations add up to.
	for _, p := range w.parts {
		if !p.up || p.refused {
			continue
		}
		if err := p.store.Check(); err != nil {
			bad("conservation", "", "%s: %v", p.name, err)
		}
		items, _ := p.store.Items(ctx)
		for _, it := range items {
			if it.Held != 0 && !w.anyRefused() {
				bad("no reservation held forever", "", "%s: %s holds %d after settling", p.name, it.SKU, it.Held)
			}
			if s := sums[p.name][it.SKU]; s != nil && it.Confirmed != s.low {
				bad("conservation", "", "%s: %s confirmed %d, but its committed reservations add up to %d", p.name, it.SKU, it.Confirmed, s.low)
			}
		}
	}
}

func (w *world) part(name string) *partProc {
	for _, p := range w.parts {
		if p.name == name {
			return p
		}
	}
	return nil
}

func (w *world) allUp(r *txRecord) bool {
	for name := range r.want {
		if p := w.part(name); !p.up || p.refused {
			return false
		}
	}
	return true
}

func (w *world) branchStates(r *txRecord) string {
	s := ""
	for name := range r.want {
		p := w.part(name)
		res, err := p.store.Reservation(context.Background(), r.id)
		if err != nil {
			s += fmt.Sprintf(" %s=%v", name, err)
		} else {
			s += fmt.Sprintf(" %s=%s", name, res.State)
		}
	}
	return s
}
