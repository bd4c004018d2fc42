package declog

import (
	"errors"

	"github.com/concordtx/concord/wal"
)

// Log is a decision log. Its methods are safe for concurrent use. See the
// package documentation for the contract; the types of records, entries and
// counters are the wal's, so that both implementations share them.
type Log interface {
	// Append adds one record and returns its sequence number once it is
	// durable.
	Append(typ uint8, payload []byte) (uint64, error)
	// AppendAsync adds one record and returns its sequence number without
	// waiting for it to be durable.
	AppendAsync(typ uint8, payload []byte) (uint64, error)
	// AppendBatch adds entries as consecutive records and returns the
	// sequence number of the first; with sync, once all are durable. An
	// empty batch with sync behaves as Sync and returns the next sequence
	// number.
	AppendBatch(entries []wal.Entry, sync bool) (uint64, error)
	// Sync returns once every record appended before it is durable.
	Sync() error
	// Replay calls fn for every record with Seq >= from, in order, including
	// records appended before the call; it stops at fn's first error and
	// returns it. Each Payload is a fresh slice fn may keep. fn must not
	// call Compact; it may append.
	Replay(from uint64, fn func(wal.Record) error) error
	// Compact tells the log that records with Seq < before are no longer
	// needed; it frees whole units holding only such records.
	Compact(before uint64) error
	// FirstSeq returns the sequence number of the oldest record the log
	// still holds (the next one to be appended if it holds none).
	FirstSeq() uint64
	// LastSeq returns the sequence number of the newest record appended,
	// durable or not, or 0 if there has never been one.
	LastSeq() uint64
	// Stats returns the log's counters since it was opened.
	Stats() wal.Stats
	// Close makes every record appended durable and closes the log; calls
	// after it fail with ErrClosed.
	Close() error
}

// The local write-ahead log is a Log as it is.
var _ Log = (*wal.Log)(nil)

// Errors shared by every implementation; compare with errors.Is. ErrClosed,
// ErrPoisoned, ErrRecordTooLarge and ErrCorrupt are the wal's own, so that
// code written against the wal (errors.Is(err, wal.ErrClosed)) keeps
// working with any Log.
var (
	// ErrClosed is returned by operations on a closed Log.
	ErrClosed = wal.ErrClosed
	// ErrPoisoned is returned once a write has failed in a way that leaves
	// the log unusable; the error also wraps the cause.
	ErrPoisoned = wal.ErrPoisoned
	// ErrRecordTooLarge is returned for a payload above the log's maximum.
	ErrRecordTooLarge = wal.ErrRecordTooLarge
	// ErrCorrupt is returned when stored records fail their checks; the
	// error names where.
	ErrCorrupt = wal.ErrCorrupt
	// ErrFenced is returned by every append, sync and compaction of a log
	// whose process no longer owns its shard. It is final: the log accepts
	// nothing more, and the process must stop acting for the shard (answer
	// no query about it by presumption) until it claims the shard again and
	// replays its log.
	ErrFenced = errors.New("declog: fenced: this process no longer owns the shard")
	// ErrUnavailable is returned when the store did not confirm a write
	// within the log's timeout (etcd without quorum, say). Nothing is
	// acknowledged, and the records may still turn out durable; the log
	// keeps trying in the background and takes appends again once the store
	// answers.
	ErrUnavailable = errors.New("declog: log store unavailable")
)
