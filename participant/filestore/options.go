package filestore

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/wal"
)

// Machine is a service's domain logic, kept in memory and made durable by
// the Store. The Store calls it under its own lock, never concurrently, and
// calls Prepare, Commit and Abort again in log order when it reopens, so
// every method must be deterministic: the same calls on the same state give
// the same votes and the same state, with no clock, randomness or I/O.
type Machine interface {
	// Prepare decides the vote of transaction id on payload and, for
	// VoteYes, takes what the transaction needs (a hold) in memory. For
	// VoteNo or VoteReadOnly it changes nothing.
	Prepare(id concord.TxID, payload json.RawMessage) participant.PrepareResult
	// Commit makes the holds of a transaction Prepare voted yes on
	// permanent.
	Commit(id concord.TxID)
	// Abort releases the holds of a transaction Prepare voted yes on.
	Abort(id concord.TxID)
	// Snapshot encodes the whole state, holds included.
	Snapshot() ([]byte, error)
	// Restore replaces the state with one Snapshot returned. It is called
	// at most once, on open, before any other method.
	Restore(data []byte) error
}

// Options configures Open. Dir and Machine are required; zero fields of the
// others take DefaultOptions' values.
type Options struct {
	// Dir holds the store: the log in Dir/wal and snapshots beside it.
	Dir string
	// FS is the file system; nil means the real one (wal.OSFS{}).
	FS wal.FS
	// Machine is the domain logic.
	Machine Machine
	// SegmentSize is the log's segment size.
	SegmentSize int64
	// Preallocate is the log's wal.Options.Preallocate: how many bytes of
	// zeros it writes ahead of its records. Negative disables it.
	Preallocate int64
	// IdleMark is the log's wal.Options.IdleMark: how soon after its last
	// sync an idle log writes a mark saying that sync happened. Zero means
	// the wal's default; negative disables it (a deterministic simulation,
	// whose time is not the wall clock's).
	IdleMark time.Duration
	// Logger receives the log's warnings at Open (a torn tail cut); nil
	// means slog.Default().
	Logger *slog.Logger
	// SnapshotEvery is how many log records are appended between
	// snapshots, at least: a snapshot writes every remembered transaction,
	// so while the store remembers more than SnapshotEvery the period
	// stretches to that many records, and each record pays for about one
	// entry of a snapshot. A snapshot lets the log drop older segments, so
	// that reopening replays at most about max(SnapshotEvery, remembered)
	// records.
	SnapshotEvery int
	// Retention is the time rule for remembering decisions, across
	// restarts (the remembered set is in the log and its snapshots): a
	// decision (a commit, an abort, a no vote) is remembered until its
	// transaction's deadline plus Retention.ClockSkew has passed by Now,
	// and forgotten then; an abort of a transaction never prepared here is
	// remembered as if its deadline were Retention.AbortDeadline of its
	// time. A PREPARE the store holds no record of is refused (voted no,
	// nothing remembered) once its deadline has passed. While remembered,
	// a duplicate prepare, commit or abort is answered like the first;
	// once forgotten, a commit is answered ErrUnknownTx. Zero fields take
	// participant.DefaultRetention's values.
	Retention participant.Retention
	// Now is the store's clock for Retention; nil means time.Now.
	Now func() time.Time
	// MaxPayload bounds a prepare payload in bytes; a larger one is voted
	// no.
	MaxPayload int
	// CommitSyncDelay is how long the COMMIT record of a two-phase commit
	// may wait for another sync (a later prepare's) to make it durable
	// before Commit syncs it itself. Commit still returns only once the
	// record is durable: the wait delays its acknowledgement, which is off
	// the client's path (it only lets the coordinator forget), and at low
	// load saves one fsync per transaction and keeps that fsync from
	// queueing in front of the next prepare's. Negative means sync at once.
	CommitSyncDelay time.Duration

	// BatchWait, for tests only (nil in production), chooses the record a
	// batch of calls waits to be durable before it answers, given the
	// batch's first and newest records (the correct choice is newest). A
	// simulator plants a defect with it to prove its checker catches one
	// in the batch path.
	BatchWait func(first, newest uint64) uint64
}

// DefaultOptions holds the defaults for Options' zero fields.
var DefaultOptions = Options{
	SegmentSize:   16 << 20,
	Preallocate:   wal.DefaultPreallocate,
	SnapshotEvery: 100_000,
	MaxPayload:    1 << 20,

	CommitSyncDelay: time.Millisecond,
}

// ErrBadOptions is returned by Open for invalid Options.
var ErrBadOptions = errors.New("filestore: bad options")

// ErrNondeterministic is returned by Open when replaying the log makes the
// Machine vote differently than it did when the record was written.
var ErrNondeterministic = errors.New("filestore: machine is not deterministic")

// ErrCorrupt is returned by Open for a log record or snapshot that cannot be
// decoded or contradicts the records before it.
var ErrCorrupt = errors.New("filestore: corrupt store")

// ErrFailed wraps the error that broke the store: after a failed log write
// or sync, every call fails with it until the store is reopened.
var ErrFailed = errors.New("filestore: store failed")

// ErrClosed is returned by calls after Close.
var ErrClosed = errors.New("filestore: store closed")

func (o *Options) setDefaults() {
	d := DefaultOptions
	if o.FS == nil {
		o.FS = wal.OSFS{}
	}
	if o.SegmentSize == 0 {
		o.SegmentSize = d.SegmentSize
	}
	if o.Preallocate == 0 {
		o.Preallocate = d.Preallocate
	}
	if o.SnapshotEvery == 0 {
		o.SnapshotEvery = d.SnapshotEvery
	}
	o.Retention = o.Retention.WithDefaults()
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxPayload == 0 {
		o.MaxPayload = d.MaxPayload
	}
	if o.CommitSyncDelay == 0 {
		o.CommitSyncDelay = d.CommitSyncDelay
	}
}

func (o *Options) validate() error {
	switch {
	case o.Dir == "":
		return fmt.Errorf("%w: Dir is required", ErrBadOptions)
	case o.Machine == nil:
		return fmt.Errorf("%w: Machine is required", ErrBadOptions)
	case o.SegmentSize < 0:
		return fmt.Errorf("%w: SegmentSize %d is negative", ErrBadOptions, o.SegmentSize)
	case o.SnapshotEvery < 0:
		return fmt.Errorf("%w: SnapshotEvery %d is negative", ErrBadOptions, o.SnapshotEvery)
	case o.Retention.Validate() != nil:
		return fmt.Errorf("%w: %v", ErrBadOptions, o.Retention.Validate())
	case o.MaxPayload < 0:
		return fmt.Errorf("%w: MaxPayload %d is negative", ErrBadOptions, o.MaxPayload)
	}
	return nil
}
