package coordinator

import (
	"net/http"
	"sync/atomic"

	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wire"
)

// counters are the coordinator's running totals.
type counters struct {
	submitted, committed, aborted, finished                            atomic.Int64
	prepares, commits, aborts, requests, votes, acks, deliveryFailures atomic.Int64
	appends, forcedAppends, records, refreshed, compactions            atomic.Int64
	overloaded, unauthenticated, forbidden                             atomic.Int64
}

// Stats are the coordinator's counters since New, for tests, benchmarks and
// operators. Messages are counted one per transaction, however they were
// batched into requests.
type Stats struct {
	Submitted  int64 `json:"submitted"`  // transactions admitted
	Committed  int64 `json:"committed"`  // outcomes reported committed
	Aborted    int64 `json:"aborted"`    // outcomes reported aborted
	Finished   int64 `json:"finished"`   // transactions that needed nothing more and left the table
	Live       int   `json:"live"`       // transactions in the table now
	Remembered int   `json:"remembered"` // finished transactions in the memory cache now
	// The remembered set (finished transactions kept for the idempotency
	// window): batches written, transactions written, writes that failed
	// (compaction waits for the next that succeeds).
	RememberWrites   int64 `json:"remember_writes"`
	RememberWritten  int64 `json:"remember_written"`
	RememberFailures int64 `json:"remember_failures"`

	PrepareMessages  int64 `json:"prepare_messages"`  // PREPAREs sent
	CommitMessages   int64 `json:"commit_messages"`   // COMMITs sent (retries included)
	AbortMessages    int64 `json:"abort_messages"`    // ABORTs sent
	Requests         int64 `json:"requests"`          // HTTP requests (batches) to participants
	Votes            int64 `json:"votes"`             // votes received (or recorded for failed requests)
	Acks             int64 `json:"acks"`              // acknowledgements received
	DeliveryFailures int64 `json:"delivery_failures"` // phase-2 deliveries that failed

	LogAppends      int64     `json:"log_appends"`      // log entries appended: protocol records and request records
	ProtocolRecords int64     `json:"protocol_records"` // tpc records (begin, commit, abort, end) among them
	ForcedAppends   int64     `json:"forced_appends"`   // appends that waited for a sync
	Refreshed       int64     `json:"refreshed"`        // long-lived transactions rewritten to the log
	Compactions     int64     `json:"compactions"`      // compaction passes that found records to release (most delete no segment: Log.SegmentsRemoved counts deletions)
	Log             wal.Stats `json:"log"`

	Overloaded      int64 `json:"overloaded"`      // submissions refused 503: MaxLive transactions live
	Unauthenticated int64 `json:"unauthenticated"` // requests refused 401: no or bad credentials
	Forbidden       int64 `json:"forbidden"`       // requests refused 403: not the caller's to see or do

	ConnsOpen    int   `json:"conns_open"`    // connections open now (Start's listener)
	ConnsRefused int64 `json:"conns_refused"` // connections closed at accept: MaxConns or MaxConnsPerHost reached
}

// Stats returns the counters. It is cheap and safe to call at any time.
func (c *Coordinator) Stats() Stats {
	live, remembered := c.table.counts()
	c.srvMu.Lock()
	conns := c.conns
	c.srvMu.Unlock()
	var open int
	var refused int64
	if conns != nil {
		open, refused = conns.Open(), conns.Refused()
	}
	return Stats{
		ConnsOpen: open, ConnsRefused: refused,
		Submitted: c.stats.submitted.Load(), Committed: c.stats.committed.Load(),
		Aborted: c.stats.aborted.Load(), Finished: c.stats.finished.Load(),
		Live: live, Remembered: remembered,
		RememberWrites: c.table.store.writes.Load(), RememberWritten: c.table.store.written.Load(),
		RememberFailures: c.table.store.failures.Load(),
		PrepareMessages:  c.stats.prepares.Load(), CommitMessages: c.stats.commits.Load(),
		AbortMessages: c.stats.aborts.Load(), Requests: c.stats.requests.Load(),
		Votes: c.stats.votes.Load(), Acks: c.stats.acks.Load(), DeliveryFailures: c.stats.deliveryFailures.Load(),
		LogAppends: c.stats.appends.Load(), ProtocolRecords: c.stats.records.Load(), ForcedAppends: c.stats.forcedAppends.Load(),
		Refreshed: c.stats.refreshed.Load(), Compactions: c.stats.compactions.Load(),
		Log:        c.log.Stats(),
		Overloaded: c.stats.overloaded.Load(), Unauthenticated: c.stats.unauthenticated.Load(), Forbidden: c.stats.forbidden.Load(),
	}
}

// StatsResponse answers GET wire.PathStats: the counters and the process's
// runtime figures.
type StatsResponse struct {
	Stats
	Runtime wire.RuntimeStats `json:"runtime"`
}

func (c *Coordinator) serveStats(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		wire.MethodNotAllowed(w, r, http.MethodGet)
		return
	}
	wire.WriteJSON(w, http.StatusOK, StatsResponse{Stats: c.Stats(), Runtime: wire.ReadRuntimeStats()})
}
