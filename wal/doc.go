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
// read as its end. Sealed segments end with their last record (a roll comes
// once the records reach SegmentSize), and Close cuts the zeros off the last
// one.
//
// On Open, a torn tail of the last segment is copied aside and cut off;
// zeros after its last record stay, for the records to come. A power loss
// during an in-place write can leave a later sector of it on disk and an
// earlier one still zero: a whole sector of zeros before valid records is
// such a torn tail too (those records came after the last sync that
// returned, so none was acknowledged). A sealed segment may end in zeros
// only if the next segment starts with the record after its last one.
// Corruption anywhere else, or bytes changed rather than a sector left
// unwritten, refuses to open with an error naming the file and offset. Compact deletes whole segments whose records are no longer needed.
// All file system access goes through the FS interface, so tests can use the
// crash-simulating file system in package wal/memfs.
package wal
