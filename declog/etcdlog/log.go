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
	// DefaultMaxInFlight is how many chunk Txns a log has in flight at
	// most by default: one. With 64 appenders on this project's 2-core
	// test machine, 8 in flight made twice the Txns but a fifth of the
	// records each, and half the records/s (etcd short of CPU, each Txn's
	// cost mostly fixed); see docs/ha.md. More in flight pays where
	// etcd's latency, not its CPU, is the limit.
	DefaultMaxInFlight = 1
	// MaxMaxInFlight bounds Options.MaxInFlight. A gap (a chunk that never
	// landed, followed by some that did) can only arise among the chunks
	// in flight at once, so Open looks for one in the last MaxMaxInFlight
	// chunks only.
	MaxMaxInFlight = 64
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
	// MaxInFlight is how many chunk Txns may be in flight at once (1 to
	// MaxMaxInFlight). Records are acknowledged in order all the same: a
	// record only once it and every record before it are in etcd. Default
	// DefaultMaxInFlight.
	MaxInFlight int

	// Test seams: called before each attempt of a chunk's Txn and after
	// its outcome was settled, with the chunk's first sequence number.
	beforeTxn, afterTxn func(first uint64)
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
	queue       []*batch   // not yet acknowledged, oldest first
	queued      int        // bytes in queue
	nextSeq     uint64     // of the next record appended
	durableNext uint64     // every record below it is in etcd
	chunks      []uint64   // first sequence numbers of the chunks in etcd, ascending
	low         uint64     // the low key's value
	err         error      // final: fenced or poisoned
	unavailable error      // etcd has not confirmed queue[0] within the timeout
	closed      bool
	change      *sync.Cond // signalled when the writer may have work, or a send ended
	inflight    int        // sends running
	stuck       int        // sends past the timeout without an answer
	writerDone  chan struct{}

	// compactMu: Replay holds it shared, Compact exclusively.
	compactMu sync.RWMutex

	stats struct {
		appends, txns, txnNanos, bytes, compactions, removed, gapChunks atomic.Int64
	}
}

// batch is one chunk: records written by one Txn.
type batch struct {
	buf      []byte
	first    uint64
	n        uint64 // records
	inflight bool   // the writer has taken it: nothing more goes in
	landed   bool   // its Txn succeeded; acknowledged once every batch before it landed
	dropped  bool   // failed and taken from the queue
	stuck    bool   // past the timeout without an answer; counted in Log.stuck
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
	if opts.MaxInFlight == 0 {
		opts.MaxInFlight = DefaultMaxInFlight
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
	case opts.MaxInFlight < 0 || opts.MaxInFlight > MaxMaxInFlight:
		return nil, fmt.Errorf("etcdlog: Options.MaxInFlight %d: want 0 to %d", opts.MaxInFlight, MaxMaxInFlight)
	}
	c := opts.Claim
	l := &Log{
		client:     c.session.client,
		claim:      c,
		keys:       c.keys,
		opts:       opts,
		writerDone: make(chan struct{}),
	}
	l.space = sync.NewCond(&l.mu)
	l.change = sync.NewCond(&l.mu)
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	if err := l.load(ctx); err != nil {
		return nil, err
	}
	go l.writer()
	go l.watchSession()
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
	next, gap, err := l.findGap(ctx)
	if err != nil {
		return err
	}
	if gap < len(l.chunks) {
		if err := l.deleteAfterGap(ctx, gap); err != nil {
			return err
		}
	}
	l.nextSeq, l.durableNext = next, next
	return nil
}

// findGap returns where the log's records end: the end of the chunks that
// follow each other from the first, and the index in l.chunks of the first
// chunk after a gap (len(l.chunks) if none).
//
// The log begins at the first chunk, which starts at or below the low key
// (Compact deletes only chunks wholly below it), or at the low key if no
// chunk is left. With several chunk Txns in flight a later chunk may land
// and an earlier one not (its Txn failed, or was fenced by a new owner):
// its records were never acknowledged, as acknowledgements go in order, and
// they follow a record that was never written, so they are not part of the
// log. Such a gap lies among the last MaxMaxInFlight chunks, as every owner
// deletes the chunks after a gap on opening the log before it writes.
func (l *Log) findGap(ctx context.Context) (next uint64, gap int, err error) {
	start := max(l.low, 1)
	if len(l.chunks) == 0 {
		return start, 0, nil
	}
	if l.chunks[0] > start {
		return start, 0, nil
	}
	// Chunks before the tail are taken to follow each other: decode the
	// tail (and the chunk before it, whose end its first must meet).
	i0 := max(0, len(l.chunks)-MaxMaxInFlight-1)
	resp, err := l.client.Get(ctx, l.keys.chunkKey(l.chunks[i0]), clientv3.WithRange(clientv3.GetPrefixRangeEnd(l.keys.Log)))
	if err != nil {
		return 0, 0, fmt.Errorf("etcdlog: open shard %d: %w", l.claim.shard, err)
	}
	if len(resp.Kvs) != len(l.chunks)-i0 {
		return 0, 0, fmt.Errorf("%w: shard %d: the chunks changed while the log was opened (does another process write it under this claim?)", declog.ErrPoisoned, l.claim.shard)
	}
	next = l.chunks[i0]
	for i, kv := range resp.Kvs {
		key := string(kv.Key)
		first := l.chunks[i0+i]
		if key != l.keys.chunkKey(first) {
			return 0, 0, fmt.Errorf("%w: shard %d: the chunks changed while the log was opened", declog.ErrPoisoned, l.claim.shard)
		}
		if first != next {
			return next, i0 + i, nil
		}
		if next, err = decodeChunk(key, kv.Value, first, l.opts.MaxChunkBytes, nil); err != nil {
			return 0, 0, err
		}
	}
	return max(next, start), len(l.chunks), nil
}

// deleteAfterGap deletes, fenced by the claim, the chunks from l.chunks[gap]
// on: records written after a gap, never acknowledged.
func (l *Log) deleteAfterGap(ctx context.Context, gap int) error {
	from := l.keys.chunkKey(l.chunks[gap])
	resp, err := l.client.Txn(ctx).
		If(l.claim.ownerCmp()).
		Then(clientv3.OpDelete(from, clientv3.WithRange(clientv3.GetPrefixRangeEnd(l.keys.Log)))).
		Commit()
	if err != nil {
		return fmt.Errorf("etcdlog: open shard %d: delete the chunks after a gap, from %s: %w", l.claim.shard, from, err)
	}
	if !resp.Succeeded {
		return l.claim.fenced("lost before the log was opened")
	}
	l.stats.gapChunks.Add(int64(len(l.chunks) - gap))
	l.chunks = l.chunks[:gap]
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
	l.change.Broadcast()
	l.mu.Unlock()
	if !sync {
		return first, nil
	}
	<-w.done
	if w.err != nil {
		return 0, w.err
	}
	return first, nil
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

// writer sends the queued batches, oldest first, each in its own goroutine
// (send), at most MaxInFlight at once, until the log is closed and the
// queue empty, or the log failed for good; then it waits for the sends
// still running.
func (l *Log) writer() {
	defer close(l.writerDone)
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if l.err != nil || (l.closed && len(l.queue) == 0) {
			for l.inflight > 0 {
				l.change.Wait()
			}
			return
		}
		var next *batch
		if l.inflight < l.opts.MaxInFlight && (l.unavailable == nil || l.closed) {
			for _, b := range l.queue {
				if !b.inflight {
					next = b
					break
				}
			}
		}
		if next == nil {
			l.change.Wait()
			continue
		}
		next.inflight = true
		l.inflight++
		go l.send(next)
	}
}

// watchSession fences the log once its session is lost, without waiting
// for a write to be refused.
func (l *Log) watchSession() {
	select {
	case <-l.claim.session.lost:
		l.mu.Lock()
		if l.err == nil {
			l.fail(l.claim.fenced(ErrSessionLost.Error()))
		}
		l.mu.Unlock()
	case <-l.writerDone:
	}
}

// send writes b by one Txn, sent again while etcd does not answer (the
// same Txn, which writes the chunk at most once), and settles it: a batch
// that landed is acknowledged once every batch before it has landed too;
// a final error fails the log and every batch queued. Past the timeout
// without an answer, the waiters of every queued batch are told
// ErrUnavailable and no further batch is sent until this one lands; the
// log goes on trying, unless it is closed, when the records are given up
// as unknown.
func (l *Log) send(b *batch) {
	defer func() {
		l.mu.Lock()
		l.inflight--
		l.change.Broadcast()
		l.mu.Unlock()
	}()
	key := l.keys.chunkKey(b.first)
	val := string(b.buf)
	deadline := time.Now().Add(l.opts.Timeout)
	backoff := minBackoff
	for {
		if h := l.opts.beforeTxn; h != nil {
			h(b.first)
		}
		start := time.Now()
		ctx, cancel := context.WithDeadline(context.Background(), minTime(deadline, start.Add(l.opts.AttemptTimeout)))
		resp, err := l.client.Txn(ctx).
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
			l.mu.Lock()
			if b.stuck {
				l.stuck--
			}
			if err != nil {
				if !b.dropped && l.err == nil {
					l.fail(err)
				}
			} else {
				l.stats.txns.Add(1)
				l.stats.txnNanos.Add(int64(time.Since(start)))
				l.stats.bytes.Add(int64(len(b.buf)))
				if !b.dropped {
					b.landed = true
					l.ack()
				}
			}
			l.mu.Unlock()
			if h := l.opts.afterTxn; h != nil {
				h(b.first)
			}
			return
		}
		l.mu.Lock()
		if b.dropped || l.err != nil {
			// The log failed meanwhile: what this chunk carries was
			// given up. (Should it land, it follows a record that may
			// never have: the next owner deletes it.)
			l.mu.Unlock()
			return
		}
		if !time.Now().Add(backoff).Before(deadline) {
			u := fmt.Errorf("%w: shard %d: chunk %s not confirmed within %v: %w", declog.ErrUnavailable, l.claim.shard, key, l.opts.Timeout, err)
			if l.closed {
				// Close waits for the writer: give the records up as
				// unknown, this batch's and every later one's, rather
				// than retry without end.
				if b.stuck {
					l.stuck--
				}
				l.dropFrom(b, u)
				l.mu.Unlock()
				return
			}
			if !b.stuck {
				b.stuck = true
				l.stuck++
			}
			l.unavailable = u
			for _, q := range l.queue {
				q.wait.err = u
				close(q.wait.done)
				q.wait = newWaiter()
			}
			l.space.Broadcast()
			deadline = time.Now().Add(l.opts.Timeout)
		}
		l.mu.Unlock()
		time.Sleep(backoff)
		backoff = min(2*backoff, maxBackoff)
	}
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

// ack acknowledges the batches at the head of the queue that have landed,
// in order, up to the first that has not. l.mu is held.
func (l *Log) ack() {
	for len(l.queue) > 0 && l.queue[0].landed {
		b := l.queue[0]
		l.queue = l.queue[1:]
		l.queued -= len(b.buf)
		l.chunks = append(l.chunks, b.first)
		l.durableNext = b.first + b.n
		close(b.wait.done)
	}
	if l.stuck == 0 {
		l.unavailable = nil
	}
	l.space.Broadcast()
	l.change.Broadcast()
}

// fail makes err the log's final state and fails everything queued. l.mu
// is held.
func (l *Log) fail(err error) {
	l.err = err
	l.failQueue(err)
}

// failQueue fails every queued batch with err and drops them. l.mu is held.
func (l *Log) failQueue(err error) {
	l.dropFrom(nil, err)
}

// dropFrom fails with err the queued batch b and every one after it (all
// of them if b is nil), and drops them from the queue. l.mu is held.
func (l *Log) dropFrom(b *batch, err error) {
	i := 0
	if b != nil {
		for i < len(l.queue) && l.queue[i] != b {
			i++
		}
	}
	for _, q := range l.queue[i:] {
		q.dropped = true
		q.wait.err = err
		close(q.wait.done)
		l.queued -= len(q.buf)
	}
	l.queue = l.queue[:i]
	l.space.Broadcast()
	l.change.Broadcast()
}

// Replay calls fn for every record with Seq >= from, in order. It first
// waits until every record appended before the call is in etcd (as Sync),
// then reads the chunks, 64 to a request, up to the first gap after those
// records (a later chunk that landed while one before it is in flight).
// Compact waits while Replay runs.
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
				if expect >= end {
					// A chunk after one still in flight (or that
					// failed): not acknowledged, not yet part of the
					// log.
					return nil
				}
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
	l.change.Broadcast()
	l.mu.Unlock()
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
