// Package wal is Concord's segmented, checksummed, group-committed write-ahead log.
//
// A log is a directory of segment files named after the sequence number of
// their first record. Every record is framed with its length, type, sequence
// number and a CRC32C over header and payload. Append returns only once the
// record is on stable storage (write and fdatasync both succeeded); concurrent
// appenders share one write and one fsync (group commit). The appender that
// finds no flush under way writes and syncs in its own goroutine; those that
// arrive meanwhile are flushed together next, by one of them, so a lone
// appender waits for its fsync and not for another goroutine. A failed write
// or fsync poisons the log: nothing is acknowledged after it.
//
// Records are written in place, into zeros written ahead of them: when a
// write reaches the end of the active segment, the same flush writes
// Options.Preallocate bytes of zeros after it (1 MiB by default, never past
// SegmentSize) before its fdatasync. That sync commits the file's new size
// once; the syncs of the many writes that follow find the space allocated
// and have only data to flush, which costs a file system such as ext4
// markedly less time and CPU than appending. A frame header of zeros is the
// end of the log, so zeros a crash leaves after the last record written
// read as its end. Sealed segments end with their last frame (a roll comes
// once the records reach SegmentSize), and Close cuts the zeros off the last
// one.
//
// # What is promised after a crash
//
// A record that was synced (Append returned, or a Sync after it did) is
// either replayed intact by the next Open or that Open fails with
// ErrCorrupt naming the file and offset of the damage. A record that was
// never synced may be lost. Nothing else: no synced record is ever dropped
// silently, and an ordinary power loss (any subset of the sectors of the
// unsynced writes persisted, in any order, some torn) never makes Open
// refuse.
//
// The log decides from where its last sync ended, not from the shape of
// the bytes. Every write begins with a mark (see format.go): a small frame,
// never returned by Replay, saying up to which sequence number every record
// was durable when the write was issued. Writes are serialized, so a mark
// on disk is true whatever else a crash lost. When Open finds damage in the
// last segment where record n was expected, it looks for the valid marks
// of the segment, before the damage and after it: if one says records up
// to S >= n were synced, record n was synced and is damaged, and Open
// refuses; otherwise the damage is a torn tail of records never synced: it
// is copied to "<segment>.torn-<offset>", cut off, and logged at WARN with
// what was cut (offset, bytes, the records still readable after it). Zeros
// after the last record are the end of the log (space written ahead, see
// below), unless a mark after them says otherwise. Damage in a sealed
// segment always refuses.
//
// The last synced write is covered by no later mark until one is written:
// when no write follows a sync within Options.IdleMark (10 ms by default)
// the log writes and syncs a mark alone, and Close and Open do the same;
// under load the next write's own mark covers the previous sync at no cost.
// The residual case: a synced write damaged at rest (a bit flip, a lost
// sector) within the idle delay before a crash, with no later mark on disk,
// cannot be told from a torn write. It is cut like one, but kept aside and
// logged at WARN, so that an operator can find it. Likewise a segment cut
// short (a truncated file) takes its later marks with it and reads as a
// torn tail; a file store (package participant/filestore) refuses a log
// that ends before the records its snapshot covers.
//
// A failed write or fsync poisons the log in the process, and leaves a
// note, SyncFailedFile, naming where the last successful sync ended: on
// Linux a restarted process's fsync of pages the kernel failed to write
// succeeds, so the next Open cuts everything after that point (kept aside,
// logged at WARN) before it reads the log. Reading never applies
// Options.MaxRecordSize, only the bytes left in the file and the format's
// 1 GiB, so that lowering the limit across a restart keeps every record.
// Compact syncs the directory after each segment it deletes, oldest first,
// so that a crash never leaves a gap. Segments of format version 1 are
// refused with ErrVersion. For a log that refuses to open, `concord log
// check` shows the damage and what a salvage loses, and `concord log
// salvage` (Salvage) copies the log up to the damage into a new directory;
// docs/operations.md has the procedure.
//
// Compact deletes whole segments whose records are no longer needed.
// All file system access goes through the FS interface, so tests can use the
// crash-simulating file system in package wal/memfs.
package wal
