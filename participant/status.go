package participant

import (
	"slices"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/tpc"
)

// TxInfo is what a Server knows about one transaction, for status pages.
type TxInfo struct {
	ID concord.TxID `json:"id"`
	// State is one of preparing, prepared, committing, aborting,
	// committed, aborted, read-only.
	State       string       `json:"state"`
	Vote        concord.Vote `json:"vote"`
	Reason      string       `json:"reason,omitempty"`
	OnePhase    bool         `json:"one_phase,omitempty"`
	Coordinator string       `json:"coordinator,omitempty"`
	PreparedAt  time.Time    `json:"prepared_at,omitzero"`
	// Queries counts outcome queries (or retried calls) that did not
	// settle the transaction; LastError is the latest failure.
	Queries   int       `json:"queries,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	NextQuery time.Time `json:"next_query,omitzero"`
	// Waiting counts requests waiting for an answer about it.
	Waiting int `json:"waiting,omitempty"`
}

func infoOf(s tpc.ParticipantTxStatus) TxInfo {
	return TxInfo{ID: s.ID, State: s.State.String(), Vote: s.Vote, Reason: s.Reason, OnePhase: s.OnePhase,
		Coordinator: coordinatorURL(s.Coordinator), PreparedAt: s.PreparedAt, Queries: s.Queries, LastError: s.LastError, NextQuery: s.NextQuery,
		Waiting: s.Waiting}
}

// Status is a summary of a Server's work since it started.
type Status struct {
	Started bool `json:"started"`
	// InDoubt counts prepared transactions waiting for a decision.
	InDoubt int `json:"in_doubt"`
	// Remembered counts transactions held in memory, decided ones included.
	Remembered int `json:"remembered"`
	// Requests received, per kind (one per transaction of a batch).
	Prepares uint64 `json:"prepares"`
	Commits  uint64 `json:"commits"`
	Aborts   uint64 `json:"aborts"`
	// HTTP requests (batches) received, per kind.
	PrepareRequests uint64 `json:"prepare_requests"`
	CommitRequests  uint64 `json:"commit_requests"`
	AbortRequests   uint64 `json:"abort_requests"`
	// Outcome queries sent to the coordinator, and how many failed.
	Queries       uint64 `json:"queries"`
	QueryFailures uint64 `json:"query_failures"`
	// CallFailures counts resource calls that returned an unexpected error.
	CallFailures uint64 `json:"call_failures"`
	// ResolvedCommitted and ResolvedAborted count in-doubt transactions
	// settled after at least one outcome query.
	ResolvedCommitted uint64 `json:"resolved_committed"`
	ResolvedAborted   uint64 `json:"resolved_aborted"`
	// Refused counts protocol requests refused because they did not come
	// from Options.CoordinatorIdentity.
	Refused uint64 `json:"refused"`
}

// Status returns the server's counters.
func (s *Server) Status() Status {
	st := Status{
		Started:           s.started.Load(),
		Prepares:          s.stats.prepares.Load(),
		Commits:           s.stats.commits.Load(),
		Aborts:            s.stats.aborts.Load(),
		PrepareRequests:   s.stats.prepareReqs.Load(),
		CommitRequests:    s.stats.commitReqs.Load(),
		AbortRequests:     s.stats.abortReqs.Load(),
		Queries:           s.stats.queries.Load(),
		QueryFailures:     s.stats.queryFailures.Load(),
		CallFailures:      s.stats.callFailure.Load(),
		ResolvedCommitted: s.stats.resolvedCommit.Load(),
		ResolvedAborted:   s.stats.resolvedAbort.Load(),
		Refused:           s.stats.refused.Load(),
	}
	for _, sh := range s.shards {
		sh.mu.Lock()
		st.InDoubt += len(sh.m.InDoubt())
		st.Remembered += sh.m.Len()
		sh.mu.Unlock()
	}
	return st
}

// InDoubt lists the prepared transactions waiting for a decision, by id.
func (s *Server) InDoubt() []TxInfo {
	var out []TxInfo
	for _, sh := range s.shards {
		sh.mu.Lock()
		for _, t := range sh.m.InDoubt() {
			out = append(out, infoOf(t))
		}
		sh.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b TxInfo) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// Lookup returns what the server remembers of id. A transaction it does not
// remember may still be known to the resource.
func (s *Server) Lookup(id concord.TxID) (TxInfo, bool) {
	sh := s.shardOf(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st, ok := sh.m.Lookup(id)
	if !ok {
		return TxInfo{}, false
	}
	return infoOf(st), true
}

// coordinatorURL is the URL a status page shows for a coordinator key.
func coordinatorURL(key string) string {
	ref, err := DecodeCoordinatorRef([]byte(key))
	if err != nil || len(ref.URLs) == 0 {
		return key
	}
	return ref.URLs[0]
}
