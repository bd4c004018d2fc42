// Package declog defines the decision log: the ordered, durable, group-
// committed record log a coordinator writes its decisions to and replays on
// start, whatever stores it.
//
// Log is the interface. Two implementations satisfy it: *wal.Log, the local
// segmented write-ahead log (the default; it satisfies Log directly, with no
// adapter), and package declog/etcdlog, one log per shard kept in etcd and
// fenced by the shard's ownership. Both pass the conformance suite in
// package declog/declogtest.
//
// The contract, common to both:
//
//   - Records are numbered from 1 without gaps; Append, AppendAsync and
//     AppendBatch return the sequence number of their (first) record.
//   - Append, and AppendBatch with sync, return once their records are
//     durable: on stable storage (wal) or committed by a quorum (etcd).
//     Concurrent appenders share one write and one sync (group commit).
//   - AppendAsync and AppendBatch without sync return at once; their records
//     are durable once a later Append, synchronous AppendBatch, Sync or
//     Close has returned nil.
//   - A failed append or sync acknowledges nothing, but does not say the
//     records are absent: they may turn out durable (a write whose outcome
//     is unknown). Callers treat them as "maybe", never as "not logged".
//   - Replay(from, fn) calls fn for every record with Seq >= from, in order.
//   - Compact(before) says that records with Seq < before are no longer
//     needed; the log frees whole units of them (segments, chunks). Records
//     with Seq >= before are never removed.
//   - After Close every call fails with an error that wraps ErrClosed.
//   - A log that lost its ownership (etcd: another process claimed the
//     shard) is fenced: every append, sync and compaction from then on fails
//     with an error wrapping ErrFenced, and the process must stop acting for
//     the shard at once. The local wal is never fenced.
package declog
