package wal

import "errors"

// Sentinel errors. Errors returned by this package wrap them; compare with
// errors.Is.
var (
	// ErrClosed is returned by operations on a closed Log.
	ErrClosed = errors.New("wal: log closed")
	// ErrPoisoned is returned once a write or fsync has failed: the log
	// accepts nothing more, and the error also wraps the original cause.
	ErrPoisoned = errors.New("wal: log poisoned by an earlier write or sync failure")
	// ErrLocked is returned by Open when another Log (in this or another
	// process) holds the directory.
	ErrLocked = errors.New("wal: directory locked by another log")
	// ErrCorrupt is returned when a segment holds damage that is not a torn
	// tail: the error names the file and the offset.
	ErrCorrupt = errors.New("wal: corrupt log")
	// ErrRecordTooLarge is returned by appends of a payload above
	// Options.MaxRecordSize. Reading never applies that limit: a length
	// field is bounded by the bytes left in the file and the format's 1 GiB.
	ErrRecordTooLarge = errors.New("wal: record too large")
	// ErrMissingSegment is returned when the segments on disk do not follow
	// one another without a gap in sequence numbers.
	ErrMissingSegment = errors.New("wal: missing segment")
	// ErrVersion is returned for a segment written in another format
	// version than this build reads; the error names the version.
	ErrVersion = errors.New("wal: unsupported segment format version")
	// ErrInvalidOptions is returned by Open and Inspect for options that
	// cannot be used.
	ErrInvalidOptions = errors.New("wal: invalid options")
)
