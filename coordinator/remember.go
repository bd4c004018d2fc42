package coordinator

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
	"github.com/cockroachdb/pebble/vfs"
	"github.com/concordtx/concord"
	"github.com/concordtx/concord/tpc"
)

// The remembered set holds every finished transaction for the idempotency
// window (Options.IdempotencyWindow), measured from when it finished: a
// resubmission of its id is answered from it, and so are status and
// outcome queries. It lives in a Pebble database beside the log (Options.
// RememberPath), written in batches: a transaction that finishes is added
// to an in-memory batch, which is written in one Pebble batch (one sync)
// when it grows past rememberFlushAt entries and before every log
// compaction. Compaction deletes a finished transaction's records only
// after such a write, so at any crash a finished transaction is either in
// the file or still in the log, where recovery finds it and adds it again.
// Expiry walks a second key space ordered by finish time from its oldest
// entry: each write deletes what has expired since, a bounded number at a
// time, and never scans the rest.

// finishedTx is what is remembered of a finished transaction.
type finishedTx struct {
	status   tpc.Status
	digest   digest
	legacy   bool   // digest is a requestDigestV1
	owner    string // identity of the submitter; "" if unknown
	finished int64  // Unix nanoseconds when it finished (or was recovered finished)
}

// rememberFlushAt is the batch size that starts a write without waiting
// for the next compaction; it bounds the batch's memory.
const rememberFlushAt = 16384

// rememberBackend keeps finished transactions durably.
type rememberBackend interface {
	// get returns the entry of id, or nil.
	get(id concord.TxID) (*finishedTx, error)
	// write stores batch (durably, when it returns nil) and deletes at most
	// limit entries that finished before cutoff, oldest first. It returns
	// the finish time of the oldest entry left (math.MaxInt64 for none).
	write(batch []*finishedTx, cutoff int64, limit int) (oldest int64, err error)
	close() error
}

// remembered is the remembered set: the batch not yet written, then the
// backend.
type remembered struct {
	backend rememberBackend
	window  time.Duration
	clock   Clock
	logf    func(format string, args ...any)

	mu      sync.Mutex
	pending map[concord.TxID]*finishedTx // not yet handed to the backend
	writing map[concord.TxID]*finishedTx // being written now
	kicked  bool                         // a write for a full batch is on its way

	writeMu sync.Mutex // one write at a time
	oldest  int64      // finish time of the oldest stored entry; guarded by writeMu

	// life is held (read) around every use of the backend, and (write)
	// to close it, so that nothing uses a closed backend.
	life   sync.RWMutex
	closed bool

	writes, written, failures atomic.Int64 // for Stats
}

// newRemembered returns the remembered set kept by b, whose oldest entry
// finished at oldest (math.MaxInt64 for none).
func newRemembered(b rememberBackend, oldest int64, window time.Duration, clock Clock, logf func(string, ...any)) *remembered {
	return &remembered{backend: b, window: window, clock: clock, logf: logf,
		pending: make(map[concord.TxID]*finishedTx), oldest: oldest}
}

// fresh reports whether f is still inside the window at now.
func (r *remembered) fresh(f *finishedTx, now time.Time) bool {
	return now.UnixNano()-f.finished < int64(r.window)
}

// add remembers f. It is durable once a write that started after add
// returned has succeeded.
func (r *remembered) add(f *finishedTx) {
	r.mu.Lock()
	r.pending[f.status.TxID] = f
	kick := len(r.pending) >= rememberFlushAt && !r.kicked
	if kick {
		r.kicked = true
	}
	r.mu.Unlock()
	if kick {
		go func() {
			if err := r.flush(); err != nil {
				r.logf("remembered transactions: %v", err)
			}
		}()
	}
}

// get returns the remembered entry of id still inside the window, or nil.
func (r *remembered) get(id concord.TxID) (*finishedTx, error) {
	f, err := r.getAny(id)
	if err != nil || f == nil || !r.fresh(f, r.clock.Now()) {
		return nil, err
	}
	return f, nil
}

// getAny returns the entry of id, expired or not.
func (r *remembered) getAny(id concord.TxID) (*finishedTx, error) {
	r.mu.Lock()
	f := r.pending[id]
	if f == nil {
		f = r.writing[id]
	}
	r.mu.Unlock()
	if f != nil {
		return f, nil
	}
	r.life.RLock()
	defer r.life.RUnlock()
	if r.closed {
		return nil, errRememberedClosed
	}
	return r.backend.get(id)
}

var errRememberedClosed = errors.New("the remembered transactions are closed")

// flush writes every entry added before it was called, and expires what
// the window has passed. A failed batch stays to be written next time.
func (r *remembered) flush() error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.Lock()
	batch := r.pending
	r.kicked = false
	cutoff := r.clock.Now().UnixNano() - int64(r.window)
	if len(batch) == 0 && r.oldest >= cutoff {
		r.mu.Unlock()
		return nil // nothing to write, nothing expired: no sync
	}
	r.pending, r.writing = make(map[concord.TxID]*finishedTx, len(batch)), batch
	r.mu.Unlock()

	list := make([]*finishedTx, 0, len(batch))
	for _, f := range batch {
		list = append(list, f)
	}
	// Expire at least as fast as entries arrive, in bounded steps.
	r.life.RLock()
	oldest, err := int64(0), errRememberedClosed
	if !r.closed {
		oldest, err = r.backend.write(list, cutoff, 2*len(list)+4096)
	}
	r.life.RUnlock()

	r.mu.Lock()
	r.writing = nil
	if err != nil {
		for id, f := range batch {
			if _, newer := r.pending[id]; !newer {
				r.pending[id] = f
			}
		}
	}
	r.mu.Unlock()
	if err != nil {
		r.failures.Add(1)
		return fmt.Errorf("write %d finished transactions: %w", len(list), err)
	}
	r.oldest = oldest
	r.writes.Add(1)
	r.written.Add(int64(len(list)))
	return nil
}

// close writes what is pending (unless skip) and closes the backend.
func (r *remembered) close(skip bool) error {
	var err error
	if !skip {
		err = r.flush()
	}
	r.life.Lock()
	defer r.life.Unlock()
	if r.closed {
		return err
	}
	r.closed = true
	return errors.Join(err, r.backend.close())
}

// Entry encoding, version 1:
//
//	1 version | 8 finished (Unix ns, big-endian) | 1 outcome | 1 flags
//	(1 done, 2 digest present, 4 legacy digest) | [32 digest] | owner | reason | uvarint
//	branches, each: participant | 1 vote | 1 acknowledged | reason
//
// where each string is a uvarint length and its bytes. Reasons are cut to
// maxKeptReason bytes.
const (
	entryVersion  = 1
	maxKeptReason = 512
	flagDone      = 1
	flagDigest    = 2
	flagLegacy    = 4 // the digest is a requestDigestV1
)

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func cut(s string) string {
	if len(s) > maxKeptReason {
		return s[:maxKeptReason]
	}
	return s
}

func encodeFinished(f *finishedTx) []byte {
	st := &f.status
	n := 64 + len(f.owner) + len(st.Reason)
	for _, b := range st.Branches {
		n += 16 + len(b.Participant) + len(b.Reason)
	}
	b := make([]byte, 0, n)
	b = append(b, entryVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(f.finished))
	var flags byte
	if st.Done {
		flags |= flagDone
	}
	if f.digest != (digest{}) {
		flags |= flagDigest
	}
	if f.legacy {
		flags |= flagLegacy
	}
	b = append(b, byte(st.Outcome), flags)
	if flags&flagDigest != 0 {
		b = append(b, f.digest[:]...)
	}
	b = appendString(b, f.owner)
	b = appendString(b, cut(st.Reason))
	b = binary.AppendUvarint(b, uint64(len(st.Branches)))
	for _, br := range st.Branches {
		b = appendString(b, br.Participant)
		var acked byte
		if br.Acknowledged {
			acked = 1
		}
		b = append(b, byte(br.Vote), acked)
		b = appendString(b, cut(br.Reason))
	}
	return b
}

// decodeFinished decodes an entry of id; it copies what it keeps, so b
// may be memory the store reuses.
func decodeFinished(id concord.TxID, b []byte) (*finishedTx, error) {
	bad := func(what string) (*finishedTx, error) {
		return nil, fmt.Errorf("%w: remembered entry of %s: %s", ErrBadLogEntry, id, what)
	}
	if len(b) < 11 || b[0] != entryVersion {
		return bad("unknown version or too short")
	}
	f := &finishedTx{finished: int64(binary.BigEndian.Uint64(b[1:9]))}
	f.status.TxID = id
	f.status.Outcome = concord.Outcome(b[9])
	flags := b[10]
	f.status.Done = flags&flagDone != 0
	f.legacy = flags&flagLegacy != 0
	b = b[11:]
	if f.status.Outcome > concord.OutcomeAborted {
		return bad("unknown outcome")
	}
	if flags&flagDigest != 0 {
		if len(b) < len(f.digest) {
			return bad("short digest")
		}
		copy(f.digest[:], b)
		b = b[len(f.digest):]
	}
	str := func() (string, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return "", false
		}
		s := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return s, true
	}
	var ok bool
	if f.owner, ok = str(); !ok {
		return bad("bad owner")
	}
	if f.status.Reason, ok = str(); !ok {
		return bad("bad reason")
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > tpc.MaxBranches {
		return bad("bad branch count")
	}
	b = b[k:]
	f.status.Branches = make([]tpc.BranchStatus, n)
	for i := range f.status.Branches {
		br := &f.status.Branches[i]
		if br.Participant, ok = str(); !ok || len(b) < 2 {
			return bad("bad branch")
		}
		br.Vote, br.Acknowledged = concord.Vote(b[0]), b[1] == 1
		b = b[2:]
		if br.Reason, ok = str(); !ok {
			return bad("bad branch reason")
		}
	}
	if len(b) != 0 {
		return bad("trailing bytes")
	}
	return f, nil
}

// pebbleBackend keeps the remembered set in a Pebble database (an LSM
// tree: a batch is one sequential write and one sync, whatever its ids;
// bloom filters answer most look-ups of a new id without reading a
// table). Key "i" + id holds an entry; key "e" + finish time (8 bytes,
// big-endian) + id marks it for expiry, so that the oldest come first.
type pebbleBackend struct {
	db    *pebble.DB
	cache *pebble.Cache
	// from is the expiry key of the oldest entry not yet expired, or
	// "e": expiry scans start there, not among the tombstones before it.
	from []byte
}

// Pebble's memory: its block cache, and at most rememberMemTables
// memtables of rememberMemTableSize.
const (
	rememberCacheSize    = 64 << 20
	rememberMemTableSize = 4 << 20
	rememberMemTables    = 4
)

// quietLogger drops Pebble's informational lines; a fatal error panics,
// as Pebble's own logger would exit.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)                   {}
func (quietLogger) Fatalf(format string, args ...any)      { panic(fmt.Sprintf(format, args...)) }
func (quietLogger) Errorf(format string, args ...any)      {}
func (quietLogger) Eventf(context.Context, string, ...any) {}
func (quietLogger) IsTracingEnabled(context.Context) bool  { return false }

// openPebble opens the remembered set in dir on fs (nil: the operating
// system's).
func openPebble(dir string, fs vfs.FS) (*pebbleBackend, int64, error) {
	if fs == nil {
		fs = vfs.Default
	}
	cache := pebble.NewCache(rememberCacheSize)
	opts := &pebble.Options{Cache: cache, MemTableSize: rememberMemTableSize,
		MemTableStopWritesThreshold: rememberMemTables, Logger: quietLogger{}, FS: fs}
	opts.Levels = make([]pebble.LevelOptions, 7)
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		opts.Levels[i].FilterType = pebble.TableFilter
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		cache.Unref()
		return nil, 0, fmt.Errorf("open the remembered transactions in %s: %w", dir, err)
	}
	s := &pebbleBackend{db: db, cache: cache, from: []byte("e")}
	// Pebble syncs its own directory, not the entry that names it in the
	// parent: without this sync a power loss soon after the first open
	// could take the whole directory, and every transaction remembered in
	// it, with it.
	if err := syncParent(opts.FS, dir); err != nil {
		s.close()
		return nil, 0, fmt.Errorf("open the remembered transactions in %s: sync its parent directory: %w", dir, err)
	}
	oldest, err := s.oldest()
	if err != nil {
		s.close()
		return nil, 0, fmt.Errorf("open the remembered transactions in %s: %w", dir, err)
	}
	return s, oldest, nil
}

// syncParent syncs the directory that holds dir.
func syncParent(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(filepath.Dir(filepath.Clean(dir)))
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// oldest returns the finish time of the oldest entry, and moves from to
// its expiry key.
func (s *pebbleBackend) oldest() (int64, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: s.from, UpperBound: []byte("f")})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if it.First() && len(it.Key()) >= 9 {
		s.from = bytes.Clone(it.Key())
		return int64(binary.BigEndian.Uint64(it.Key()[1:9])), nil
	}
	return math.MaxInt64, it.Error()
}

func idKey(id concord.TxID) []byte {
	k := make([]byte, 1, 1+len(id))
	k[0] = 'i'
	return append(k, id...)
}

func (s *pebbleBackend) get(id concord.TxID) (*finishedTx, error) {
	v, closer, err := s.db.Get(idKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return decodeFinished(id, v)
}

func expiryKey(finished int64, id concord.TxID) []byte {
	k := make([]byte, 9, 9+len(id))
	k[0] = 'e'
	binary.BigEndian.PutUint64(k[1:], uint64(finished))
	return append(k, id...)
}

func (s *pebbleBackend) write(batch []*finishedTx, cutoff int64, limit int) (int64, error) {
	b := s.db.NewBatch()
	defer b.Close()
	for _, f := range batch {
		// A later episode of an id leaves the earlier one's expiry key;
		// expiry checks the entry's time before deleting it.
		if err := b.Set(idKey(f.status.TxID), encodeFinished(f), nil); err != nil {
			return 0, err
		}
		if err := b.Set(expiryKey(f.finished, f.status.TxID), nil, nil); err != nil {
			return 0, err
		}
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: s.from, UpperBound: expiryKey(cutoff, "")})
	if err != nil {
		return 0, err
	}
	n := 0
	for ok := it.First(); ok && n < limit; ok = it.Next() {
		k := it.Key()
		if len(k) < 9 {
			continue
		}
		id := concord.TxID(k[9:])
		f, err := s.get(id)
		if err != nil {
			it.Close()
			return 0, err
		}
		if f != nil && f.finished == int64(binary.BigEndian.Uint64(k[1:9])) {
			if err := b.Delete(idKey(id), nil); err != nil {
				it.Close()
				return 0, err
			}
		}
		if err := b.Delete(bytes.Clone(k), nil); err != nil {
			it.Close()
			return 0, err
		}
		n++
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return 0, err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return 0, err
	}
	return s.oldest()
}

func (s *pebbleBackend) close() error {
	err := s.db.Close()
	s.cache.Unref()
	return err
}

// memBackend keeps the remembered set in memory: for a coordinator on a
// file system of a test or simulator (Options.FS without RememberPath).
// Nothing survives a restart but what the log holds.
type memBackend struct {
	mu    sync.Mutex
	ids   map[concord.TxID]*finishedTx
	order []*finishedTx // in order of writing, about that of finishing
}

func (m *memBackend) get(id concord.TxID) (*finishedTx, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ids[id], nil
}

func (m *memBackend) write(batch []*finishedTx, cutoff int64, limit int) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ids == nil {
		m.ids = make(map[concord.TxID]*finishedTx)
	}
	for _, f := range batch {
		m.ids[f.status.TxID] = f
		m.order = append(m.order, f)
	}
	n := 0
	for n < len(m.order) && n < limit && m.order[n].finished < cutoff {
		if f := m.order[n]; m.ids[f.status.TxID] == f {
			delete(m.ids, f.status.TxID)
		}
		n++
	}
	m.order = slices.Delete(m.order, 0, n)
	if len(m.order) == 0 {
		m.order = nil
		return math.MaxInt64, nil
	}
	return m.order[0].finished, nil
}

func (m *memBackend) close() error { return nil }
