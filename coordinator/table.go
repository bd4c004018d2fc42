package coordinator

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/tpc"
	"github.com/concordtx/concord/wire"
)

// txState is one live transaction: the tpc state machine and what the
// driver keeps beside it.
type txState struct {
	id     concord.TxID
	digest digest // of the submitted request; zero when unknown (recovered without it)

	// firstSeq is a lower bound on the log sequence number of this
	// transaction's oldest record still needed; 0 until it is known. Read by
	// compaction without mu.
	firstSeq atomic.Uint64
	// preparing is true until the transaction has a decision; queued
	// PREPAREs of a decided transaction are not sent.
	preparing atomic.Bool
	// answersLeft counts the participants whose answer to PREPARE has not
	// been stepped; a guide to which votes may decide (see mayDecide), zero
	// when not counted. (Beside preparing: together they fill 8 bytes,
	// which keeps a txState within 256.)
	answersLeft atomic.Int32
	// written is when the transaction's state was last written whole to
	// the log (admission, recovery or a refresh), in Unix nanoseconds.
	written atomic.Int64

	done   chan struct{}                       // closed once the outcome is reportable
	result atomic.Pointer[wire.SubmitResponse] // set before done is closed; read without mu

	mu       sync.Mutex
	core     *tpc.CoordinatorTx
	deadline time.Time
	timer    Timer
	wake     time.Time
	gen      uint64 // of the armed timer; a stale timer's tick is ignored
	finished bool   // Done: out of the live table
	// legacy: digest is a requestDigestV1 (recovered from a record of a
	// version before requestDigest). Set before the transaction is in the
	// table, then only read.
	legacy bool
	// chosen: the client chose the id (an idempotency key), so the
	// transaction is kept in the remembered set for the window once
	// finished; one the coordinator made up only in the cache. Set before
	// the transaction is in the table, then only read.
	chosen bool
	hist   history

	// Set before the transaction is in the table, then only read.
	traceparent string // W3C trace context of the submit, "" if none
	owner       string // identity of the submitter; "" without authentication
	admitted    int64  // Unix nanoseconds of admission; 0 if recovered
}

const numShards = 64

// table holds live transactions, and a cache of the finished ones in front
// of the remembered set, in shards, each with its own lock, so that no lock
// is shared by every transaction.
type table struct {
	seed     maphash.Seed
	shards   [numShards]shard
	perShard int // finished transactions cached per shard
	store    *remembered
	// nlive counts live transactions, for Options.MaxLive.
	nlive atomic.Int64
}

type shard struct {
	mu       sync.Mutex
	live     map[concord.TxID]*txState
	finished map[concord.TxID]*finishedTx
	ring     []concord.TxID // finished ids, oldest first at head
	head     int
}

func newTable(cache int, store *remembered) *table {
	t := &table{seed: maphash.MakeSeed(), perShard: max(1, (cache+numShards-1)/numShards), store: store}
	for i := range t.shards {
		t.shards[i].live = make(map[concord.TxID]*txState)
		t.shards[i].finished = make(map[concord.TxID]*finishedTx)
	}
	return t
}

func (t *table) shard(id concord.TxID) *shard {
	return &t.shards[maphash.String(t.seed, string(id))%numShards]
}

// lookup returns the live transaction of id or its remembered finished
// record inside the idempotency window (nil, nil: forgotten, or never
// known).
func (t *table) lookup(id concord.TxID) (*txState, *finishedTx, error) {
	s := t.shard(id)
	s.mu.Lock()
	if tx := s.live[id]; tx != nil {
		s.mu.Unlock()
		return tx, nil, nil
	}
	f := s.finished[id]
	s.mu.Unlock()
	if f != nil && t.store.fresh(f, t.store.clock.Now()) {
		return nil, f, nil
	}
	f, err := t.store.get(id)
	return nil, f, err
}

// live returns the live transaction of id, or nil.
func (t *table) live(id concord.TxID) *txState {
	s := t.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live[id]
}

// admit inserts tx unless id is live; it returns what is there instead.
// Recovery uses it: the remembered set is not asked.
func (t *table) admit(tx *txState) *txState {
	old, _, _, _ := t.admitBounded(tx, 0, false)
	return old
}

// admitBounded inserts tx unless its id is live or (with remembered) in
// the cache or the remembered set, refusing it (ok false) when limit (0:
// none) are live already. The remembered set is asked under the shard's
// lock, so that an id cannot finish and leave the cache unseen meanwhile.
func (t *table) admitBounded(tx *txState, limit int64, remembered bool) (old *txState, fin *finishedTx, ok bool, err error) {
	s := t.shard(tx.id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.live[tx.id]; old != nil {
		return old, nil, true, nil
	}
	if remembered {
		now := t.store.clock.Now()
		if f := s.finished[tx.id]; f != nil && t.store.fresh(f, now) {
			return nil, f, true, nil
		}
		f, err := t.store.get(tx.id)
		if err != nil {
			return nil, nil, false, err
		}
		if f != nil {
			return nil, f, true, nil
		}
	}
	if n := t.nlive.Add(1); limit > 0 && n > limit {
		t.nlive.Add(-1)
		return nil, nil, false, nil
	}
	s.live[tx.id] = tx
	return nil, nil, true, nil
}

// finish moves tx from live to finished: into the remembered set if its
// id is the client's (first, so that compaction, which reads the live
// table and then writes the remembered set out, cannot miss it) and the
// cache.
func (t *table) finish(tx *txState, st tpc.Status) {
	f := &finishedTx{status: st, digest: tx.digest, legacy: tx.legacy, owner: tx.owner, finished: t.store.clock.Now().UnixNano()}
	if tx.chosen {
		t.store.add(f)
	}
	s := t.shard(tx.id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live[tx.id] == tx {
		delete(s.live, tx.id)
		t.nlive.Add(-1)
	}
	s.rememberLocked(tx.id, f, t.perShard)
}

// remember records a finished transaction recovered from the log in the
// cache and the remembered set.
func (t *table) remember(f *finishedTx) {
	t.store.add(f)
	s := t.shard(f.status.TxID)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rememberLocked(f.status.TxID, f, t.perShard)
}

func (s *shard) rememberLocked(id concord.TxID, f *finishedTx, limit int) {
	if _, ok := s.finished[id]; ok {
		s.finished[id] = f
		return
	}
	if len(s.ring) < limit {
		s.ring = append(s.ring, id)
	} else {
		delete(s.finished, s.ring[s.head])
		s.ring[s.head] = id
		s.head = (s.head + 1) % limit
	}
	s.finished[id] = f
}

// forEachLive calls fn for every live transaction, one shard locked at a
// time; fn must not lock a shard or a transaction (the lock order is a
// transaction's mu, then a shard's).
func (t *table) forEachLive(fn func(*txState)) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for _, tx := range s.live {
			fn(tx)
		}
		s.mu.Unlock()
	}
}

// liveList returns the live transactions.
func (t *table) liveList() []*txState {
	var out []*txState
	t.forEachLive(func(tx *txState) { out = append(out, tx) })
	return out
}

// finishedList returns the cached finished transactions.
func (t *table) finishedList() []*finishedTx {
	var out []*finishedTx
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for _, f := range s.finished {
			out = append(out, f)
		}
		s.mu.Unlock()
	}
	return out
}

// counts returns how many transactions are live and cached finished.
func (t *table) counts() (live, finished int) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		live += len(s.live)
		finished += len(s.finished)
		s.mu.Unlock()
	}
	return live, finished
}
