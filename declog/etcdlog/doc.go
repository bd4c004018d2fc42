// Package etcdlog is a decision log (declog.Log) kept in etcd: one log per
// shard of a coordinator cluster, written only by the process that owns the
// shard, so that coordinators can take over each other's shards.
//
// Layout. Everything of shard n of cluster C lives under
// /concord/C/shards/n/ (Keys):
//
//	owner                   the owner's name, put with its session's lease
//	low                     20-digit decimal: no chunk may start below it
//	log/<20-digit seq>      a chunk: the records from seq on, in the wal's
//	                        frame format (see below), one after another
//
// A chunk is what one group commit wrote: the records waiting for one sync
// ride in one etcd Txn, which puts one chunk key. Record frames are the
// wal's, byte for byte: CRC32C (Castagnoli) over bytes [4:20] and the
// payload, payload length, type, three zero bytes, sequence number, all
// little-endian, then the payload. Sequence numbers run from 1 without
// gaps across chunks; a chunk's key is the sequence number of its first
// record.
//
// Pipelining. Up to Options.MaxInFlight chunk Txns are in flight at once
// (each the next chunk's records), and they may land in any order; a record
// is acknowledged only once its chunk and every chunk before it have
// landed. A chunk refused for good fails the log and everything after it;
// one etcd does not confirm in time makes the log unavailable until it
// lands. A later chunk may thus be in etcd while an earlier one never
// landed (a gap): its records were never acknowledged. Replay stops at the
// first gap after the records acknowledged, and Open, under a new claim,
// deletes (fenced) every chunk after a gap before writing, so that a
// record after a gap is never replayed.
//
// Ownership and fencing. Each coordinator process holds a Session: an etcd
// lease, kept alive. Session.Claim puts the shard's owner key with that
// lease if the key is absent (a Txn comparing its CreateRevision with 0);
// the revision of that put identifies the claim. Every write of the log is
// a Txn that compares the owner key's ModRevision with it, so once the
// shard has been released, or the lease has lapsed (etcd then deletes the
// key) and perhaps another process has claimed it, no write of the former
// owner can succeed: its log is fenced (declog.ErrFenced) and fails every
// append from then on. Claim.Release deletes the owner key (a planned
// hand-off: others may claim at once), Session.Close revokes the lease
// (every claim at once). A chunk's Txn also compares the chunk key's
// CreateRevision with 0 and the low key with the chunk's first sequence
// number, so each chunk is written at most once and never below what
// Compact removed, even by a retry that arrives late.
//
// Writes whose outcome is unknown (a timeout, a lost leader) are retried,
// the same Txn, until Options.Timeout has passed since the first attempt;
// then every appender waiting gets declog.ErrUnavailable, the log refuses
// appends and keeps retrying in the background, and takes appends again
// once the store has confirmed that chunk (written now, or by an attempt
// that had landed). A failed append acknowledges nothing, but its records
// may turn out durable. Without quorum, a Session's lease cannot be kept
// alive: past its TTL the session counts as lost and its logs as fenced.
//
// Compact(before) deletes, in one fenced Txn (a ranged delete), the chunks
// whose records are all below before, and raises the low key. Every chunk
// and every deletion leaves a revision in etcd's history, so etcd itself
// must compact its history: CompactHistory does so (one process of the
// cluster calls it every few seconds), and etcd's own auto compaction
// (--auto-compaction-mode/-retention; `concord etcd` sets it by default)
// is the backstop. Its space quota (--quota-backend-bytes) must hold the
// chunks kept between two compactions of the logs and the history kept;
// see docs/ha.md.
package etcdlog
