package tpc

import (
	"slices"

	"github.com/concordtx/concord"
)

// Lookup returns the status of id, if the machine remembers it.
func (p *Participant) Lookup(id concord.TxID) (ParticipantTxStatus, bool) {
	t := p.txs[id]
	if t == nil {
		return ParticipantTxStatus{}, false
	}
	return t.status(), true
}

// InDoubt lists the prepared transactions waiting for a decision, by id.
func (p *Participant) InDoubt() []ParticipantTxStatus {
	out := make([]ParticipantTxStatus, 0, len(p.prepared))
	for _, t := range p.prepared {
		out = append(out, t.status())
	}
	slices.SortFunc(out, func(a, b ParticipantTxStatus) int { return partCmpID(a.ID, b.ID) })
	return out
}

// Len is how many transactions the machine holds, decided ones included.
func (p *Participant) Len() int { return len(p.txs) }

func (t *ptx) status() ParticipantTxStatus {
	s := ParticipantTxStatus{
		ID: t.id, State: t.state, OnePhase: t.onePhase, Vote: t.vote, Reason: t.reason,
		Coordinator: t.coordinator, PreparedAt: t.preparedAt, Queries: t.queries, LastError: t.lastErr,
		Waiting: len(t.waiters),
	}
	if t.state == PartPrepared && !t.querying {
		s.NextQuery = t.nextQuery
	}
	return s
}

func partCmpID(a, b concord.TxID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
