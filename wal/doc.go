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
// On Open, a torn tail of the last segment is copied aside and cut off;
// corruption anywhere else refuses to open with an error naming the file and
// offset. Compact deletes whole segments whose records are no longer needed.
// All file system access goes through the FS interface, so tests can use the
// crash-simulating file system in package wal/memfs.
package wal
