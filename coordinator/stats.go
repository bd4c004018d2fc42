package coordinator

import (
	"sync/atomic"

	"github.com/concordtx/concord/wal"
)

// counters are the coordinator's running totals.
type counters struct {
	submitted, committed, aborted, finished                            atomic.Int64
	prepares, commits, aborts, requests, votes, acks, deliveryFailures atomic.Int64
	appends, forcedAppends, records, refreshed, compactions            atomic.Int64
}

// Stats are the coordinator's counters since New, for tests, benchmarks and
// operators. Messages are counted one per transaction, however they were
// batched into requests.
type Stats struct {
	Submitted  int64 // transactions admitted
	Committed  int64 // outcomes reported committed
	Aborted    int64 // outcomes reported aborted
	Finished   int64 // transactions that needed nothing more and left the table
	Live       int   // transactions in the table now
	Remembered int   // finished transactions remembered now

	PrepareMessages  int64 // PREPAREs sent
	CommitMessages   int64 // COMMITs sent (retries included)
	AbortMessages    int64 // ABORTs sent
	Requests         int64 // HTTP requests (batches) to participants
	Votes            int64 // votes received (or recorded for failed requests)
	Acks             int64 // acknowledgements received
	DeliveryFailures int64 // phase-2 deliveries that failed

	LogAppends      int64 // log entries appended: protocol records and request records
	ProtocolRecords int64 // tpc records (begin, commit, abort, end) among them
	ForcedAppends   int64 // appends that waited for a sync
	Refreshed       int64 // long-lived transactions rewritten to the log
	Compactions     int64 // compaction passes
	Log             wal.Stats
}

// Stats returns the counters. It is cheap and safe to call at any time.
func (c *Coordinator) Stats() Stats {
	live, remembered := c.table.counts()
	return Stats{
		Submitted: c.stats.submitted.Load(), Committed: c.stats.committed.Load(),
		Aborted: c.stats.aborted.Load(), Finished: c.stats.finished.Load(),
		Live: live, Remembered: remembered,
		PrepareMessages: c.stats.prepares.Load(), CommitMessages: c.stats.commits.Load(),
		AbortMessages: c.stats.aborts.Load(), Requests: c.stats.requests.Load(),
		Votes: c.stats.votes.Load(), Acks: c.stats.acks.Load(), DeliveryFailures: c.stats.deliveryFailures.Load(),
		LogAppends: c.stats.appends.Load(), ProtocolRecords: c.stats.records.Load(), ForcedAppends: c.stats.forcedAppends.Load(),
		Refreshed: c.stats.refreshed.Load(), Compactions: c.stats.compactions.Load(),
		Log: c.log.Stats(),
	}
}
