package sim

import (
	"context"
	"fmt"

	"github.com/concordtx/concord"

	"github.com/concordtx/concord/travel"
)

// run drives the simulation: faults during the fault window, then every
// fault healed and every node up until the system settles, then the final
// checks.
func (s *sim) run() {
	s.coord.start()
	for _, p := range s.parts {
		p.start()
	}
	s.workload()
	s.schedulePartitions()
	s.operator()
	healAt := epoch.Add(s.opts.FaultWindow)
	for !s.stopped && s.sched.step(healAt) {
	}
	if s.stopped {
		return
	}
	s.heal()
	limit := s.sched.now.Add(s.opts.SettleLimit)
	for !s.stopped && !s.settled() {
		if !s.sched.step(limit) {
			s.violate(Violation{Invariant: "liveness", At: s.sched.elapsed(), Detail: "not settled " + s.opts.SettleLimit.String() + " after every fault healed: " + s.unsettled()})
			return
		}
	}
	if !s.stopped {
		s.finalCheck()
	}
}

// heal ends every fault: no more loss, duplication, reordering,
// partitions or crashes, and every node is up.
func (s *sim) heal() {
	s.tracef("network", "HEAL: every fault ends, every node restarts")
	s.healed = true
	s.crashProb = 0
	s.net.heal()
	if !s.coord.up() {
		s.coord.start()
	}
	for _, p := range s.parts {
		if !p.up() {
			p.start()
		}
	}
}

// settled reports whether nothing is left to do: no message in flight, no
// transaction in the coordinator's table, nothing in doubt or in progress at
// any participant.
func (s *sim) settled() bool {
	if s.net.inFlight > 0 || !s.coord.up() || len(s.coord.txs) > 0 {
		return false
	}
	for _, p := range s.parts {
		if !p.up() || p.calls > 0 || len(p.queries) > 0 || len(p.m.InDoubt()) > 0 {
			return false
		}
	}
	return true
}

// unsettled says what is left, for a liveness violation.
func (s *sim) unsettled() string {
	msg := fmt.Sprintf("%d messages in flight", s.net.inFlight)
	if !s.coord.up() {
		msg += "; coordinator down"
	} else {
		for id, ct := range s.coord.txs {
			msg += fmt.Sprintf("; coordinator still has %s (%s)", id, ct.tx.Status().Outcome)
		}
	}
	for _, p := range s.parts {
		if !p.up() {
			msg += "; " + p.name + " down"
			continue
		}
		for _, t := range p.m.InDoubt() {
			msg += fmt.Sprintf("; %s in doubt on %s (%d queries, %s)", p.name, t.ID, t.Queries, t.LastError)
		}
		if p.calls > 0 {
			msg += fmt.Sprintf("; %s has %d calls running", p.name, p.calls)
		}
	}
	return msg
}

// finalCheck checks the settled system: agreement and stability per
// transaction against what every store holds, non-triviality, liveness
// (nothing prepared, the coordinator log compacted) and conservation.
func (s *sim) finalCheck() {
	h := s.hist
	now := s.sched.elapsed()
	bad := func(inv string, tx concord.TxID, format string, args ...any) {
		s.violate(Violation{Invariant: inv, Tx: tx, At: now, Detail: fmt.Sprintf(format, args...)})
	}
	// The coordinator forgot everything finished: its log is one segment.
	s.coord.compact()
	if n := s.coord.log.Stats().Segments; n != 1 {
		bad("liveness", "", "coordinator log holds %d segments after every transaction finished; want 1", n)
	}
	confirmed := make(map[string]map[string]int64)
	for _, p := range s.parts {
		confirmed[p.name] = make(map[string]int64)
		if ids, _ := p.res.Recover(context.Background()); len(ids) > 0 {
			bad("liveness", ids[0].ID, "%s still holds %d prepared transactions after settling", p.name, len(ids))
		}
	}
	for _, t := range h.order {
		commit := t.decidedCommit()
		allYes := true
		for _, b := range t.branches {
			ph := t.parts[b.Participant]
			if ph == nil || (ph.vote != concord.VoteYes && ph.vote != concord.VoteReadOnly) {
				allYes = false
			}
			if !t.isWrite(b.Participant) {
				continue
			}
			p := s.node(b.Participant).(*partNode)
			st := p.res.state(t.id)
			switch {
			case commit && st != travel.StateCommitted:
				bad("agreement", t.id, "committed, but %s holds %q", b.Participant, stateName(st))
			case !commit && st == travel.StateCommitted:
				bad("agreement", t.id, "not committed by the coordinator, but %s committed", b.Participant)
			case st == travel.StatePrepared:
				bad("liveness", t.id, "%s still prepared after settling", b.Participant)
			}
			if st == travel.StateCommitted {
				r, err := travel.DecodeRequest(b.Payload)
				if err == nil {
					confirmed[b.Participant][r.SKU] += r.Quantity
				}
			}
		}
		switch {
		case t.told == concord.OutcomeCommitted && !commit:
			bad("stability", t.id, "client told committed, but the transaction did not commit")
		case t.told == concord.OutcomeAborted && commit:
			bad("stability", t.id, "client told aborted, but the transaction committed")
		}
		if !t.faulted {
			switch {
			case t.told == concord.OutcomePending:
				bad("liveness", t.id, "no fault touched it, yet the client never heard an outcome")
			case allYes && t.told != concord.OutcomeCommitted:
				bad("non-triviality", t.id, "no fault touched it and every participant voted yes or read-only, yet it %s", t.told)
			}
		}
	}
	for _, p := range s.parts {
		p.checkConservation()
		for _, it := range p.res.items() {
			if it.Held != 0 {
				bad("conservation", "", "%s: %s holds %d after settling", p.name, it.SKU, it.Held)
			}
			if it.Confirmed != confirmed[p.name][it.SKU] {
				bad("conservation", "", "%s: %s confirmed %d, but committed reservations there sum to %d", p.name, it.SKU, it.Confirmed, confirmed[p.name][it.SKU])
			}
		}
	}
}

func stateName(st travel.State) string {
	if st == "" {
		return "nothing"
	}
	return string(st)
}
