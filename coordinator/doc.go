// Package coordinator is Concord's coordinator service: it admits client
// transactions, drives the tpc state machine with the wal log, batches the
// participant protocol's messages, recovers from its log on start and serves
// the client API over HTTP.
//
// # Embedding
//
//	c, err := coordinator.New(coordinator.Options{
//		Dir:          "data/coordinator/wal",
//		Participants: map[string]string{"flights": "http://127.0.0.1:7071"},
//	})
//	...
//	err = c.Start(nil) // or c.Start(listener); c.URL() is then the base URL
//	defer c.Close()
//
// Handler returns the HTTP API for a server of one's own; Submit, Status,
// List and Outcome are the same operations in process.
//
// # Guarantees
//
// The driver performs each tpc.Ready in order: its records are appended
// (and synced when MustSync) before any of its messages is handed to a
// sender and before its outcome is reported, so a client hears "committed"
// only once the commit record is durable, and the outcome endpoint answers
// "committed" only then. The log's group commit shares one sync among the
// transactions deciding at the same time. After a commit decision the
// coordinator never aborts: it resends COMMIT with capped exponential
// backoff (Options.RetryMin to RetryMax) until every yes voter acknowledges.
//
// # Idempotency window
//
// A submitted id is remembered with a digest of its request (requestDigest:
// the set of branches with their payloads in canonical JSON, see
// docs/protocol.md): while it runs, resubmissions wait for its outcome;
// once finished, a transaction whose id the client chose is kept for
// Options.IdempotencyWindow (24 hours by default) from when it finished, in
// the remembered set (a Pebble database at Options.RememberPath, with the
// last Options.RememberFinished in a memory cache in front), across
// restarts and compactions: a resubmission of the same request is answered
// as the first time and runs nothing, a different one gets ErrConflict.
// The set is written in batches; compaction writes it out before it deletes
// any log record, so a finished transaction is always in the set or still
// in the log. Expiry follows finish time, from the oldest entry, a bounded
// number per write. An id the coordinator made up is only cached (and
// rebuilt from the log while its records last).
//
// Past the window an id is forgotten (ErrForgotten): resubmitting it runs a
// new transaction, and the outcome endpoint answers aborted with
// "forgotten" set. That presumption misleads no participant: a transaction
// is forgotten only once finished, which for a commit means every yes
// voter acknowledged it.
//
// # Log size
//
// Every CompactInterval the log is compacted up to the oldest record of any
// live transaction; a transaction live longer than RefreshAfter (a commit a
// participant does not acknowledge) has its state rewritten so that it does
// not pin old segments.
//
// # Testing hooks
//
// Options.Clock makes time an input, Options.Transport replaces HTTP (a
// simulator supplies its own), Options.FS and Options.RememberFS replace
// the disks of the log and of the remembered set, Options.CrashHook stops
// the coordinator at any CrashPoint as if its process had died there, and
// Options.VotesHook lets a simulator plant a defect in how votes are
// counted (internal/sim/prodsim runs this package under all of them).
package coordinator
