package coordinator

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/tpc"
	bolt "go.etcd.io/bbolt"
)

// The remembered set holds every finished transaction for the idempotency
// window (Options.IdempotencyWindow), measured from when it finished: a
// resubmission of its id is answered from it, and so are status and
// outcome queries. It lives in a bbolt file beside the log (Options.
// RememberPath), written in batches: a transaction that finishes is added
// to an in-memory batch, which is written in one bbolt transaction (one
// sync) when it grows past rememberFlushAt entries and before every log
// compaction. Compaction deletes a finished transaction's records only
// after such a write, so at any crash a finished transaction is either in
// the file or still in the log, where recovery finds it and adds it again.
// Expiry walks a second bucket ordered by finish time from its oldest
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

	writes, written, expired, failures atomic.Int64
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
	return r.backend.get(id)
}

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
	// In key order, so that the B+tree's pages are visited once each.
	slices.SortFunc(list, func(a, b *finishedTx) int {
		return bytes.Compare([]byte(a.status.TxID), []byte(b.status.TxID))
	})
	// Expire at least as fast as entries arrive, in bounded steps.
	oldest, err := r.backend.write(list, cutoff, 2*len(list)+4096)

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

// boltBackend keeps the remembered set in a bbolt file: bucket "ids" maps
// an id to its entry, bucket "expiry" holds one key per entry, its finish
// time (8 bytes, big-endian) then its id, so that the oldest come first.
type boltBackend struct {
	db *bolt.DB
}

var (
	bucketIDs    = []byte("ids")
	bucketExpiry = []byte("expiry")
)

func openBolt(path string) (*boltBackend, int64, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second,
		NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, 0, fmt.Errorf("open the remembered transactions in %s: %w", path, err)
	}
	oldest := int64(math.MaxInt64)
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketIDs); err != nil {
			return err
		}
		exp, err := tx.CreateBucketIfNotExists(bucketExpiry)
		if err != nil {
			return err
		}
		if k, _ := exp.Cursor().First(); len(k) >= 8 {
			oldest = int64(binary.BigEndian.Uint64(k))
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, 0, fmt.Errorf("open the remembered transactions in %s: %w", path, err)
	}
	return &boltBackend{db: db}, oldest, nil
}

func (s *boltBackend) get(id concord.TxID) (*finishedTx, error) {
	var f *finishedTx
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketIDs).Get([]byte(id))
		if v == nil {
			return nil
		}
		var err error
		f, err = decodeFinished(id, v)
		return err
	})
	return f, err
}

func expiryKey(finished int64, id concord.TxID) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(finished))
	return append(k, id...)
}

func (s *boltBackend) write(batch []*finishedTx, cutoff int64, limit int) (int64, error) {
	oldest := int64(math.MaxInt64)
	err := s.db.Update(func(tx *bolt.Tx) error {
		ids, exp := tx.Bucket(bucketIDs), tx.Bucket(bucketExpiry)
		for _, f := range batch {
			key := []byte(f.status.TxID)
			if old := ids.Get(key); len(old) >= 9 {
				// A later episode of the id: its old expiry key goes.
				if err := exp.Delete(expiryKey(int64(binary.BigEndian.Uint64(old[1:9])), f.status.TxID)); err != nil {
					return err
				}
			}
			if err := ids.Put(key, encodeFinished(f)); err != nil {
				return err
			}
			if err := exp.Put(expiryKey(f.finished, f.status.TxID), nil); err != nil {
				return err
			}
		}
		var gone [][]byte
		c := exp.Cursor()
		k, _ := c.First()
		for ; k != nil && len(gone) < limit; k, _ = c.Next() {
			if len(k) < 8 || int64(binary.BigEndian.Uint64(k)) >= cutoff {
				break
			}
			gone = append(gone, bytes.Clone(k))
		}
		for _, k := range gone {
			if err := exp.Delete(k); err != nil {
				return err
			}
			if err := ids.Delete(k[8:]); err != nil {
				return err
			}
		}
		if k, _ := c.First(); len(k) >= 8 {
			oldest = int64(binary.BigEndian.Uint64(k))
		}
		return nil
	})
	return oldest, err
}

func (s *boltBackend) close() error { return s.db.Close() }

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
