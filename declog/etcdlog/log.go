package etcdlog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concordtx/concord/declog"
	"github.com/concordtx/concord/wal"
)

type mvccKV = mvccpb.KeyValue

// Defaults for zero Options fields.
const (
	DefaultTimeout        = 5 * time.Second
	DefaultAttemptTimeout = time.Second
	// DefaultMaxChunkBytes keeps a chunk's Txn well below etcd's default
	// request limit (--max-request-bytes, 1.5 MiB).
	DefaultMaxChunkBytes = 1 << 20
	// DefaultMaxRecordSize is the largest payload by default.
	DefaultMaxRecordSize = DefaultMaxChunkBytes - frameHeaderSize
)

// maxQueuedBytes bounds the bytes waiting to be written: appenders wait
// while that much is queued.
const maxQueuedBytes = 8 << 20

// Retries of a write whose outcome is unknown back off from minBackoff to
// maxBackoff.
const (
	minBackoff = 20 * time.Millisecond
	maxBackoff = 200 * time.Millisecond
)

// Options configures Open.
type Options struct {
	// Claim is the ownership of the shard whose log to open. Required.
	Claim *Claim
	// Timeout bounds how long an append waits for etcd to confirm its
	// chunk, retries included, before it fails with declog.ErrUnavailable;
	// it bounds Open, Replay's reads and Compact too. Default
	// DefaultTimeout.
	Timeout time.Duration
	// AttemptTimeout bounds one attempt of a chunk's Txn, after which it is
	// sent again (the same Txn, which writes the chunk at most once). A
	// request a follower forwarded to a leader that died waits for etcd's
	// own request timeout (5 s and two election timeouts) unless the
	// client gives up on it first. Default DefaultAttemptTimeout, at most
	// Timeout.
	AttemptTimeout time.Duration
	// MaxChunkBytes is the most bytes of frames one Txn writes (one record
	// may take a chunk alone). Default DefaultMaxChunkBytes.
	MaxChunkBytes int
	// MaxRecordSize is the largest payload, at most MaxChunkBytes minus
	// the 20-byte frame header. Default that.
	MaxRecordSize int
}

// Log is one shard's decision log in etcd; it implements declog.Log. Its
// methods are safe for concurrent use.
type Log struct {
	client *clientv3.Client
	claim  *Claim
	keys   Keys
	opts   Options

	mu          sync.Mutex
	space       *sync.Cond // signalled when queued bytes drop
	queue       []*batch   // waiting to be written, oldest first; queue[0] may be in flight
	queued      int        // bytes in queue
	nextSeq     uint64     // of the next record appended
	durableNext uint64     // every record below it is in etcd
	chunks      []uint64   // first sequence numbers of the chunks in etcd, ascending
	low         uint64     // the low key's value
	err         error      // final: fenced or poisoned
	unavailable error      // etcd has not confirmed queue[0] within the timeout
	closed      bool
	wake        chan struct{}
	writerDone  chan struct{}

	// compactMu: Replay holds it shared, Compact exclusively.
	compactMu sync.RWMutex

	stats struct {
		appends, txns, txnNanos, bytes, compactions, removed atomic.Int64
	}
}

// batch is one chunk: records written by one Txn.
type batch struct {
	buf      []byte
	first    uint64
	n        uint64 // records
	inflight bool   // the writer has taken it: nothing more goes in
	wait     *waiter
}

// waiter is what appenders of a batch wait on; a failed batch that stays
// queued (etcd unavailable) gets a fresh one for later waiters.
type waiter struct {
	done chan struct{}
	err  error // set before done is closed
}

func newWaiter() *waiter { return &waiter{done: make(chan struct{})} }

var _ declog.Log = (*Log)(nil)

// Open opens the log of the shard opts.Claim owns: it reads the chunk keys
// and the last chunk (to learn the next sequence number), creating the low
// key if the shard has none yet, all fenced by the claim.
//
// Open a claim's log again only after the previous Log of it closed
// cleanly (Close returned nil). After a Close that gave records up as
// unknown, a Txn of the old Log might still land; claim the shard anew
// (Release, then Claim: a new revision fences every old attempt), or the
// new Log may find its first chunk taken and poison itself.
func Open(ctx context.Context, opts Options) (*Log, error) {
	if opts.Claim == nil {
		return nil, errors.New("etcdlog: Options.Claim is nil")
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.AttemptTimeout == 0 {
		opts.AttemptTimeout = min(DefaultAttemptTimeout, opts.Timeout)
	}
	if opts.MaxChunkBytes == 0 {
		opts.MaxChunkBytes = DefaultMaxChunkBytes
	}
	if opts.MaxRecordSize == 0 {
		opts.MaxRecordSize = opts.MaxChunkBytes - frameHeaderSize
	}
	switch {
	case opts.Timeout < 0:
		return nil, fmt.Errorf("etcdlog: Options.Timeout %v is negative", opts.Timeout)
	case opts.AttemptTimeout < 0 || opts.AttemptTimeout > opts.Timeout:
		return nil, fmt.Errorf("etcdlog: Options.AttemptTimeout %v: want 0 to Timeout (%v)", opts.AttemptTimeout, opts.Timeout)
	case opts.MaxChunkBytes <= frameHeaderSize:
		return nil, fmt.Errorf("etcdlog: Options.MaxChunkBytes %d: want more than %d", opts.MaxChunkBytes, frameHeaderSize)
	case opts.MaxRecordSize < 0 || opts.MaxRecordSize > opts.MaxChunkBytes-frameHeaderSize:
		return nil, fmt.Errorf("etcdlog: Options.MaxRecordSize %d: want 0 to MaxChunkBytes-%d (%d)", opts.MaxRecordSize, frameHeaderSize, opts.MaxChunkBytes-frameHeaderSize)
	}
	c := opts.Claim
	l := &Log{
		client:     c.session.client,
		claim:      c,
		keys:       c.keys,
		opts:       opts,
		wake:       make(chan struct{}, 1),
		writerDone: make(chan struct{}),
	}
	l.space = sync.NewCond(&l.mu)
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	if err := l.load(ctx); err != nil {
		return nil, err
	}
	go l.writer()
	return l, nil
}

// load reads the low key, the chunk keys and the last chunk.
func (l *Log) load(ctx context.Context) error {
	// Create the low key on first use; it must exist for the chunks'
	// comparisons with it to hold.
	_, err := l.client.Txn(ctx).
		If(l.claim.ownerCmp(), clientv3.Compare(clientv3.CreateRevision(l.keys.Low), "=", 0)).
		Then(clientv3.OpPut(l.keys.Low, padSeq(1))).
		Commit()
	if err != nil {
		return fmt.Errorf("etcdlog: open shard %d: %w", l.claim.shard, err)
	}
	resp, err := l.client.Txn(ctx).
		If(l.claim.ownerCmp()).
		Then(
			clientv3.OpGet(l.keys.Low),
			clientv3.OpGet(l.keys.Log, clientv3.WithPrefix(), clientv3.WithKeysOnly()),
			clientv3.OpGet(l.keys.Log, append(clientv3.WithLastKey(), clientv3.WithPrefix())...),
		).
		Commit()
	if err != nil {
		return fmt.Errorf("etcdlog: open shard %d: %w", l.claim.shard, err)
	}
	if !resp.Succeeded {
		return l.claim.fenced("lost before the log was opened")
	}
	lowKVs := resp.Responses[0].GetResponseRange().Kvs
	if len(lowKVs) == 0 {
		return fmt.Errorf("%w: shard %d: low key %s missing", declog.ErrCorrupt, l.claim.shard, l.keys.Low)
	}
	if l.low, err = parseSeq(l.keys.Low, string(lowKVs[0].Value)); err != nil {
		return fmt.Errorf("%w: %w", declog.ErrCorrupt, err)
	}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		first, err := l.keys.parseChunkKey(string(kv.Key))
		if err != nil {
			return fmt.Errorf("%w: %w", declog.ErrCorrupt, err)
		}
		l.chunks = append(l.chunks, first)
	}
	next := max(l.low, 1)
	if last := resp.Responses[2].GetResponseRange().Kvs; len(last) > 0 {
		key := string(last[0].Key)
		first, err := l.keys.parseChunkKey(key)
		if err != nil {
			return fmt.Errorf("%w: %w", declog.ErrCorrupt, err)
		}
		end, err := decodeChunk(key, last[0].Value, first, l.opts.MaxChunkBytes, nil)
		if err != nil {
			return err
		}
		next = max(next, end)
	}
	l.nextSeq, l.durableNext = next, next
	return nil
}

// Claim returns the ownership the log writes under.
func (l *Log) Claim() *Claim { return l.claim }

// Append adds one record and returns its sequence number once etcd has
// committed its chunk.
func (l *Log) Append(typ uint8, payload []byte) (uint64, error) {
	return l.enqueue([]wal.Entry{{Type: typ, Payload: payload}}, true)
}

// AppendAsync adds one record and returns its sequence number without
// waiting: the writer sends it at once, and it is durable once a later
// Append, synchronous AppendBatch, Sync or Close has returned nil.
func (l *Log) AppendAsync(typ uint8, payload []byte) (uint64, error) {
	return l.enqueue([]wal.Entry{{Type: typ, Payload: payload}}, false)
}

// AppendBatch adds entries as consecutive records and returns the sequence
// number of the first; with sync, once all are durable. An empty batch with
// sync behaves as Sync and returns the next sequence number.
func (l *Log) AppendBatch(entries []wal.Entry, sync bool) (uint64, error) {
	if len(entries) == 0 {
		if sync {
			if err := l.Sync(); err != nil {
				return 0, err
			}
		}
		return l.LastSeq() + 1, nil
	}
	return l.enqueue(entries, sync)
}

// stateErr returns why nothing can be appended now, if so. l.mu is held.
func (l *Log) stateErr() error {
	switch {
	case l.err != nil:
		return l.err
	case l.closed:
		return declog.ErrClosed
	case l.unavailable != nil:
		return l.unavailable
	}
	return nil
}

func (l *Log) enqueue(entries []wal.Entry, sync bool) (uint64, error) {
	size := 0
	for i, e := range entries {
		if len(e.Payload) > l.opts.MaxRecordSize {
			return 0, fmt.Errorf("entry %d: %w: %d bytes, maximum %d", i, declog.ErrRecordTooLarge, len(e.Payload), l.opts.MaxRecordSize)
		}
		size += frameHeaderSize + len(e.Payload)
	}
	l.mu.Lock()
	for l.stateErr() == nil && l.queued > 0 && l.queued+size > maxQueuedBytes {
		l.space.Wait()
	}
	if err := l.stateErr(); err != nil {
		l.mu.Unlock()
		return 0, err
	}
	first := l.nextSeq
	var b *batch
	for _, e := range entries {
		n := frameHeaderSize + len(e.Payload)
		if b == nil && len(l.queue) > 0 {
			b = l.queue[len(l.queue)-1]
		}
		if b == nil || b.inflight || len(b.buf)+n > l.opts.MaxChunkBytes {
			b = &batch{first: l.nextSeq, wait: newWaiter()}
			l.queue = append(l.queue, b)
		}
		b.buf = appendFrame(b.buf, l.nextSeq, e.Type, e.Payload)
		b.n++
		l.nextSeq++
		l.queued += n
	}
	w := b.wait
	l.stats.appends.Add(int64(len(entries)))
	l.mu.Unlock()
	l.kick()
	if !sync {
		return first, nil
	}
	<-w.done
	if w.err != nil {
		return 0, w.err
	}
	return first, nil
}

func (l *Log) kick() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Sync returns once every record appended before it is in etcd.
func (l *Log) Sync() error {
	l.mu.Lock()
	if err := l.stateErr(); err != nil {
		l.mu.Unlock()
		return err
	}
	if len(l.queue) == 0 {
		l.mu.Unlock()
		return nil
	}
	w := l.queue[len(l.queue)-1].wait
	l.mu.Unlock()
	<-w.done
	return w.err
}

// writer writes the queued batches, oldest first, one Txn each, until the
// log is closed and the queue empty, or the log fails for good.
func (l *Log) writer() {
	defer close(l.writerDone)
	backoff := minBackoff
	for {
		l.mu.Lock()
		for len(l.queue) == 0 && !l.closed && l.err == nil {
			l.mu.Unlock()
			select {
			case <-l.wake:
			case <-l.claim.session.lost:
				l.mu.Lock()
				if l.err == nil {
					l.fail(l.claim.fenced(ErrSessionLost.Error()))
				}
				l.mu.Unlock()
			}
			l.mu.Lock()
		}
		if len(l.queue) == 0 || l.err != nil {
			l.mu.Unlock()
			return
		}
		if l.closed && l.unavailable != nil {
			// Closing while etcd does not answer: one last try each, then
			// give the records up as unknown.
			if err := l.writeBatch(l.queue[0], l.opts.Timeout, true); err != nil {
				l.mu.Unlock()
				return
			}
			l.mu.Unlock()
			continue
		}
		b := l.queue[0]
		b.inflight = true
		l.mu.Unlock()

		if err := l.writeOne(b); err != nil {
			// Unavailable: every waiter has been told; retry after a pause,
			// unless closed meanwhile (then the branch above decides).
			select {
			case <-time.After(backoff):
			case <-l.wake:
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = minBackoff
	}
}

// writeOne writes b, retrying for up to the timeout (or one timeout while
// unavailable), and settles its waiters: nil on success, an error when the
// log failed for good or etcd did not confirm in time. It returns the
// latter error, for which b stays queued.
func (l *Log) writeOne(b *batch) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.writeBatch(b, l.opts.Timeout, false)
}

// writeBatch is writeOne's body; l.mu is held, and released while etcd is
// asked. With once, it makes a single attempt.
func (l *Log) writeBatch(b *batch, timeout time.Duration, once bool) error {
	key := l.keys.chunkKey(b.first)
	val := string(b.buf)
	deadline := time.Now().Add(timeout)
	backoff := minBackoff
	l.mu.Unlock()
	var err error
	for {
		start := time.Now()
		ctx, cancel := context.WithDeadline(context.Background(), minTime(deadline, start.Add(l.opts.AttemptTimeout)))
		var resp *clientv3.TxnResponse
		resp, err = l.client.Txn(ctx).
			If(
				l.claim.ownerCmp(),
				clientv3.Compare(clientv3.CreateRevision(key), "=", 0),
				clientv3.Compare(clientv3.Value(l.keys.Low), "<", padSeq(b.first+1)),
			).
			Then(clientv3.OpPut(key, val)).
			Else(clientv3.OpGet(l.claim.keys.Owner), clientv3.OpGet(key), clientv3.OpGet(l.keys.Low)).
			Commit()
		cancel()
		if err == nil {
			err = l.settled(resp, key, val)
			if err == nil {
				l.stats.txns.Add(1)
				l.stats.txnNanos.Add(int64(time.Since(start)))
				l.stats.bytes.Add(int64(len(b.buf)))
			}
			l.mu.Lock()
			if err != nil {
				l.fail(err)
				return nil
			}
			l.done(b)
			return nil
		}
		if once || !time.Now().Add(backoff).Before(deadline) {
			break
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, maxBackoff)
	}
	l.mu.Lock()
	u := fmt.Errorf("%w: shard %d: chunk %s not confirmed within %v: %w", declog.ErrUnavailable, l.claim.shard, key, timeout, err)
	if l.closed {
		// Close waits for the writer: give the records up as unknown
		// rather than retry without end.
		l.failQueue(u)
		return u
	}
	l.unavailable = u
	for _, q := range l.queue {
		q.wait.err = u
		close(q.wait.done)
		q.wait = newWaiter()
	}
	l.space.Broadcast()
	return u
}

// settled interprets a chunk Txn that etcd answered: nil if the chunk is
// in etcd (now, or by an earlier attempt), else the final error.
func (l *Log) settled(resp *clientv3.TxnResponse, key, val string) error {
	if resp.Succeeded {
		return nil
	}
	owner := resp.Responses[0].GetResponseRange().Kvs
	chunk := resp.Responses[1].GetResponseRange().Kvs
	if len(chunk) > 0 && string(chunk[0].Value) == val {
		return nil // an earlier attempt, whose answer was lost, wrote it
	}
	if err := l.claim.checkOwner(owner); err != nil {
		return err
	}
	if len(chunk) > 0 {
		return fmt.Errorf("%w: chunk %s holds other records than this log wrote", declog.ErrPoisoned, key)
	}
	low := "?"
	if kvs := resp.Responses[2].GetResponseRange().Kvs; len(kvs) > 0 {
		low = string(kvs[0].Value)
	}
	return fmt.Errorf("%w: chunk %s is below the log's low key (%s)", declog.ErrPoisoned, key, low)
}

// done records b as written and releases its waiters. l.mu is held.
func (l *Log) done(b *batch) {
	l.queue = l.queue[1:]
	l.queued -= len(b.buf)
	l.chunks = append(l.chunks, b.first)
	l.durableNext = b.first + b.n
	l.unavailable = nil
	close(b.wait.done)
	l.space.Broadcast()
}

// fail makes err the log's final state and fails everything queued. l.mu
// is held.
func (l *Log) fail(err error) {
	l.err = err
	l.failQueue(err)
}

// failQueue fails every queued batch with err and drops them. l.mu is held.
func (l *Log) failQueue(err error) {
	for _, q := range l.queue {
		q.wait.err = err
		close(q.wait.done)
	}
	l.queue, l.queued = nil, 0
	l.space.Broadcast()
}

// Replay calls fn for every record with Seq >= from, in order. It first
// waits until every record appended before the call is in etcd (as Sync),
// then reads the chunks, 64 to a request. Compact waits while Replay runs.
func (l *Log) Replay(from uint64, fn func(wal.Record) error) error {
	if err := l.Sync(); err != nil && !errors.Is(err, declog.ErrClosed) {
		return err
	}
	l.compactMu.RLock()
	defer l.compactMu.RUnlock()
	l.mu.Lock()
	start := l.keys.Log
	// Start at the last chunk that begins at or before from.
	for i := len(l.chunks) - 1; i >= 0; i-- {
		if l.chunks[i] <= from {
			start = l.keys.chunkKey(l.chunks[i])
			break
		}
	}
	end := l.durableNext
	l.mu.Unlock()
	// Pages are read at the latest revision each, not at one: a chunk's
	// value never changes once written, only this process deletes chunks
	// (Compact, which waits), so pages at later revisions see the same
	// chunks plus perhaps newer ones after them; and a revision held for
	// a long replay could be compacted away under it.
	const page = 64
	var expect uint64 // the next record's sequence number, once known
	for {
		ctx, cancel := context.WithTimeout(context.Background(), l.opts.Timeout)
		resp, err := l.client.Get(ctx, start, clientv3.WithRange(clientv3.GetPrefixRangeEnd(l.keys.Log)), clientv3.WithLimit(page))
		cancel()
		if err != nil {
			return fmt.Errorf("etcdlog: replay shard %d from %s: %w", l.claim.shard, start, err)
		}
		for _, kv := range resp.Kvs {
			key := string(kv.Key)
			first, err := l.keys.parseChunkKey(key)
			if err != nil {
				return fmt.Errorf("%w: %w", declog.ErrCorrupt, err)
			}
			if expect != 0 && first != expect {
				return fmt.Errorf("%w: shard %d: chunk %s follows records up to %d", declog.ErrCorrupt, l.claim.shard, key, expect-1)
			}
			expect, err = decodeChunk(key, kv.Value, first, l.opts.MaxChunkBytes, func(r wal.Record) error {
				if r.Seq < from {
					return nil
				}
				return fn(r)
			})
			if err != nil {
				return err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	if expect != 0 && expect < end {
		return fmt.Errorf("%w: shard %d: records end at %d, want up to %d", declog.ErrCorrupt, l.claim.shard, expect-1, end-1)
	}
	return nil
}

// Compact deletes, in one Txn fenced by the claim, every chunk whose
// records all have Seq < before (and are in etcd), and raises the low key
// so that none is ever written again. It waits for running Replay calls.
func (l *Log) Compact(before uint64) error {
	l.mu.Lock()
	err := l.stateErr()
	l.mu.Unlock()
	if err != nil {
		return err
	}
	l.compactMu.Lock()
	defer l.compactMu.Unlock()
	l.mu.Lock()
	low := max(l.low, min(before, l.durableNext))
	n := 0 // chunks to delete
	for n < len(l.chunks) {
		end := l.durableNext
		if n+1 < len(l.chunks) {
			end = l.chunks[n+1]
		}
		if end > low {
			break
		}
		n++
	}
	// The range ends at the first chunk kept, or at the first record not
	// yet in etcd: a chunk the writer puts meanwhile starts there or later
	// and must survive.
	rangeEnd := l.keys.chunkKey(l.durableNext)
	if n < len(l.chunks) {
		rangeEnd = l.keys.chunkKey(l.chunks[n])
	}
	same := n == 0 && low == l.low
	l.mu.Unlock()
	if same {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.Timeout)
	defer cancel()
	resp, err := l.client.Txn(ctx).
		If(l.claim.ownerCmp()).
		Then(
			clientv3.OpDelete(l.keys.Log, clientv3.WithRange(rangeEnd)),
			clientv3.OpPut(l.keys.Low, padSeq(low)),
		).
		Else(clientv3.OpGet(l.keys.Owner)).
		Commit()
	if err != nil {
		return fmt.Errorf("%w: compact shard %d: %w", declog.ErrUnavailable, l.claim.shard, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !resp.Succeeded {
		err := l.claim.checkOwner(resp.Responses[0].GetResponseRange().Kvs)
		if err == nil {
			err = l.claim.fenced("compaction refused")
		}
		if l.err == nil {
			l.fail(err)
		}
		return l.err
	}
	l.chunks = l.chunks[n:]
	l.low = low
	if n > 0 {
		l.stats.compactions.Add(1)
		l.stats.removed.Add(int64(n))
	}
	return nil
}

// FirstSeq returns the sequence number of the oldest record the log still
// holds (the next one to be appended if it holds none).
func (l *Log) FirstSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.chunks) > 0 {
		return l.chunks[0]
	}
	return l.durableNext
}

// LastSeq returns the sequence number of the newest record appended,
// durable or not, or 0 if there has never been one.
func (l *Log) LastSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nextSeq - 1
}

// DurableSeq returns the sequence number up to which every record is known
// to be in etcd.
func (l *Log) DurableSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.durableNext - 1
}

// Stats returns the log's counters, in the wal's terms: Writes and Syncs
// count chunk Txns (each both), SyncTime their time, Segments the chunks in
// etcd, SegmentsRemoved the chunks Compact deleted.
func (l *Log) Stats() wal.Stats {
	l.mu.Lock()
	chunks := len(l.chunks)
	l.mu.Unlock()
	return wal.Stats{
		Appends:         l.stats.appends.Load(),
		Writes:          l.stats.txns.Load(),
		Syncs:           l.stats.txns.Load(),
		SyncTime:        time.Duration(l.stats.txnNanos.Load()),
		Bytes:           l.stats.bytes.Load(),
		Segments:        chunks,
		Compactions:     l.stats.compactions.Load(),
		SegmentsRemoved: l.stats.removed.Load(),
	}
}

// Close writes every queued record (waiting up to the timeout if etcd does
// not answer) and stops the log; calls after it fail with ErrClosed. It
// does not release the claim (Claim.Release does). It returns the error
// that kept records from etcd, if any.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return declog.ErrClosed
	}
	l.closed = true
	var w *waiter
	if len(l.queue) > 0 {
		w = l.queue[len(l.queue)-1].wait
	}
	err := l.err
	l.space.Broadcast()
	l.mu.Unlock()
	l.kick()
	<-l.writerDone
	if w != nil {
		<-w.done
		if w.err != nil {
			return w.err
		}
	}
	return err
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
