package filestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/wal"
)

// Compile-time checks.
var (
	_ participant.Resource              = (*Store)(nil)
	_ participant.OnePhaseResource      = (*Store)(nil)
	_ participant.OnePhaseBatchResource = (*Store)(nil)
	_ participant.BatchResource         = (*Store)(nil)
)

// TxState is where a transaction stands in a Store.
type TxState uint8

// Transaction states.
const (
	StateUnknown   TxState = iota // never seen, or forgotten
	StatePrepared                 // voted yes, durable, undecided
	StateCommitted                // committed (in two phases or one)
	StateAborted                  // aborted, voted no, or aborted before its prepare
)

var stateNames = [...]string{"unknown", "prepared", "committed", "aborted"}

func (s TxState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state(?)"
}

type txEntry struct {
	id     concord.TxID
	state  TxState
	seq    uint64 // the record that put it in this state
	reason string // for aborted
	// deadline is the transaction's (Unix ms): a decision is remembered
	// until Retention.ForgetAt of it.
	deadline int64
	// coord is the encoded participant.CoordinatorRef of a prepared
	// transaction's PREPARE; often shared by every entry.
	coord string
}

func (e *txEntry) deadlineTime() time.Time { return time.UnixMilli(e.deadline) }

// Store is a durable participant.Resource over a Machine, and a
// OnePhaseResource, BatchResource and OnePhaseBatchResource. It owns
// durability: the PREPARED record, with its payload, is synced before a yes
// vote; a COMMIT record is synced before Commit returns; a one-phase commit
// is one synced record, and so is a one-phase refusal (it is the
// transaction's outcome); the ABORT of a transaction never prepared here is
// synced (it must refuse a late prepare, even after a crash); the ABORT of a
// prepared transaction and a two-phase no vote are not forced (presumed
// abort: a lost one is re-derived by asking the coordinator). The calls of
// one batch share one fsync, and concurrent calls share fsyncs (group
// commit).
// On Open it restores the newest snapshot and replays the log after it.
// Every SnapshotEvery records it writes a snapshot and compacts the log, so
// that reopening stays bounded.
//
// A Store is safe for concurrent use. After a failed log write or sync every
// call fails with ErrFailed; reopen the store to go on from what is durable.
type Store struct {
	opts   Options
	m      Machine
	log    *wal.Log
	walDir string

	// mu orders every change: Machine calls, table changes and log
	// appends happen under it, in one order. tmu guards the tables for
	// readers that do not hold mu (State, also from inside View); writers
	// hold mu and take tmu only while they change a table. Every
	// transaction has at most one entry, in txs; a prepared one is in
	// prepared too and becomes decided in place, and a decided one is in
	// decided, once, until its time (Retention.ForgetAt of its deadline)
	// has passed and it is forgotten.
	mu       sync.RWMutex
	tmu      sync.RWMutex
	txs      map[concord.TxID]*txEntry
	prepared map[concord.TxID]*txEntry
	decided  forgetQueue
	// loading is set while Open replays: nothing is forgotten then, and a
	// PREPARED record may follow a decision of the same id (written after
	// it was forgotten).
	loading   bool
	lastRef   participant.CoordinatorRef // the coordinator of the latest prepare,
	lastCoord string                     // and its encoding
	bodyBuf   []byte                     // encodes a record's body
	err       error                      // ErrFailed or ErrClosed once broken
	sinceSnap int                        // records appended since the last snapshot
	recBuf    []byte                     // encodes the record being appended; the log copies it

	syncMu sync.Mutex
	synced chan struct{} // closed and replaced after every sync durable makes

	snapMu    sync.Mutex // one snapshot at a time
	snapping  bool       // a background snapshot is running (guarded by mu)
	snapWG    sync.WaitGroup
	stats     Stats
	lastSnap  uint64
	snapshots int
}

// Stats are a Store's counters.
type Stats struct {
	Prepared    int    // transactions prepared and undecided now
	Remembered  int    // transactions remembered, decided ones included
	Snapshots   int    // snapshots written since Open
	SnapshotSeq uint64 // log sequence number the newest snapshot covers
	Replayed    int    // log records replayed by Open
	Log         wal.Stats
}

// Open opens (or creates) the store in opts.Dir: it restores the newest
// snapshot into the Machine and replays the log records after it.
func Open(opts Options) (*Store, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if err := opts.FS.MkdirAll(opts.Dir); err != nil {
		return nil, fmt.Errorf("create %s: %w", opts.Dir, err)
	}
	s := &Store{opts: opts, m: opts.Machine, walDir: filepath.Join(opts.Dir, "wal"),
		txs: make(map[concord.TxID]*txEntry), prepared: make(map[concord.TxID]*txEntry), synced: make(chan struct{})}
	log, err := wal.Open(wal.Options{Dir: s.walDir, FS: opts.FS, SegmentSize: opts.SegmentSize,
		Preallocate: opts.Preallocate, MaxRecordSize: opts.MaxPayload + 1024, IdleMark: opts.IdleMark, Logger: opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	s.log = log
	s.loading = true
	if err := s.load(); err != nil {
		log.Close()
		return nil, err
	}
	s.loading = false
	s.forgetDue(s.opts.Now())
	return s, nil
}

// load restores the newest snapshot and replays the log after it.
func (s *Store) load() error {
	snapSeq, err := s.restoreSnapshot()
	if err != nil {
		return err
	}
	s.lastSnap = snapSeq
	if first := s.log.FirstSeq(); first > snapSeq+1 {
		return fmt.Errorf("%w: log starts at record %d but the snapshot covers only up to %d", ErrCorrupt, first, snapSeq)
	}
	// The log was synced up to snapSeq before the snapshot was written: a
	// log that ends before it lost synced records, and appending would
	// reuse sequence numbers the snapshot already covers.
	if last := s.log.LastSeq(); last < snapSeq {
		return fmt.Errorf("%w: the log in %s ends at record %d but snapshot %s covers records up to %d, which were synced before it: synced log records are lost (see docs/operations.md)",
			ErrCorrupt, s.walDir, last, snapName(snapSeq), snapSeq)
	}
	err = s.log.Replay(snapSeq+1, func(r wal.Record) error {
		if err := s.apply(r); err != nil {
			return fmt.Errorf("replay record %d: %w", r.Seq, err)
		}
		s.stats.Replayed++
		s.sinceSnap++
		return nil
	})
	if err != nil {
		return err
	}
	return nil
}

// apply replays one log record into the tables and the Machine.
func (s *Store) apply(r wal.Record) error {
	id, body, err := decodeRec(r.Payload)
	if err != nil {
		return err
	}
	e := s.txs[id]
	// A record of the older types carries no deadline: its transaction
	// gets that of a PREPARE that named none.
	deadline := s.opts.Retention.Admit(participant.PrepareInfo{}, s.opts.Now()).Deadline.UnixMilli()
	coord := ""
	switch r.Type {
	case recPrepared2:
		if deadline, coord, body, err = decodePreparedBody(body); err != nil {
			return err
		}
	case recOnePhase2, recAbort2:
		if deadline, body, err = decodeDeadlineBody(body); err != nil {
			return err
		}
	}
	switch r.Type {
	case recPrepared, recOnePhase, recPrepared2, recOnePhase2:
		if e != nil && e.state == StatePrepared {
			return fmt.Errorf("%w: %s prepared again while prepared", ErrCorrupt, id)
		}
		if e != nil {
			// Decided, then forgotten before this record was written.
			s.forget(e)
		}
		if v := s.m.Prepare(id, json.RawMessage(body)); v.Vote != concord.VoteYes {
			return fmt.Errorf("%w: replaying the prepare of %s voted %s (%s); it voted yes when written",
				ErrNondeterministic, id, v.Vote, v.Reason)
		}
		if r.Type == recPrepared || r.Type == recPrepared2 {
			s.setPrepared(id, r.Seq, deadline, coord)
			return nil
		}
		s.m.Commit(id)
		s.setDecided(id, StateCommitted, r.Seq, "", deadline)
	case recCommit:
		if e == nil || e.state != StatePrepared {
			return fmt.Errorf("%w: commit of %s, which is not prepared", ErrCorrupt, id)
		}
		s.m.Commit(id)
		s.setDecided(id, StateCommitted, r.Seq, "", e.deadline)
	case recAbort, recAbort2:
		switch {
		case e == nil:
			s.setDecided(id, StateAborted, r.Seq, string(body), deadline)
		case e.state == StatePrepared:
			s.m.Abort(id)
			if r.Type == recAbort {
				deadline = e.deadline
			}
			s.setDecided(id, StateAborted, r.Seq, string(body), deadline)
		case e.state == StateCommitted:
			// Decided, then forgotten before this record was written (the
			// store records an ABORT of an id it no longer knows), as for
			// a prepare above; the commit stays done in the Machine.
			s.forget(e)
			s.setDecided(id, StateAborted, r.Seq, string(body), deadline)
		}
	default:
		return fmt.Errorf("%w: unknown record type %d", ErrCorrupt, r.Type)
	}
	return nil
}

// setPrepared enters id, which has no entry, as prepared by record seq.
func (s *Store) setPrepared(id concord.TxID, seq uint64, deadline int64, coord string) *txEntry {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	e := &txEntry{id: id, state: StatePrepared, seq: seq, deadline: deadline, coord: coord}
	s.txs[id] = e
	s.prepared[id] = e
	return e
}

// setDecided records a decision of a transaction that is prepared or has
// no entry, remembered until Retention.ForgetAt of deadline.
func (s *Store) setDecided(id concord.TxID, st TxState, seq uint64, reason string, deadline int64) {
	if e := s.prepared[id]; e != nil {
		e.deadline = deadline
		s.decidePrepared(e, st, seq, reason)
		return
	}
	s.tmu.Lock()
	defer s.tmu.Unlock()
	e := &txEntry{id: id, state: st, seq: seq, reason: reason, deadline: deadline}
	s.txs[id] = e
	s.remember(e)
}

// decidePrepared is setDecided for e, the entry of a prepared transaction,
// which the caller has at hand: its id is not looked up again. It keeps
// e's deadline.
func (s *Store) decidePrepared(e *txEntry, st TxState, seq uint64, reason string) {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	delete(s.prepared, e.id)
	e.state, e.seq, e.reason, e.coord = st, seq, reason, ""
	s.remember(e)
}

// remember queues e, just decided, for forgetting once its time has
// passed. s.tmu is held.
func (s *Store) remember(e *txEntry) {
	s.decided.add(e, s.opts.Retention.ForgetAt(e.deadlineTime()))
}

// forgetDue forgets the decisions whose time has passed by now; s.mu is
// held (or the store is being opened). Nothing is forgotten while the log
// is replayed: a decision is forgotten by the clock, not by the records.
func (s *Store) forgetDue(now time.Time) {
	if s.loading {
		return
	}
	if !s.decided.anyDue(now) {
		return
	}
	s.tmu.Lock()
	defer s.tmu.Unlock()
	s.decided.due(now, func(e *txEntry) {
		if s.txs[e.id] == e {
			delete(s.txs, e.id)
		}
	})
}

// forget drops e, a decided entry, from the table before its time: during
// replay, for a PREPARED record written after e was forgotten.
func (s *Store) forget(e *txEntry) {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if s.txs[e.id] == e {
		delete(s.txs, e.id)
	}
}

// coordKey returns the stored form of ref, encoded once for a run of
// prepares naming the same coordinator; s.mu is held.
func (s *Store) coordKey(ref participant.CoordinatorRef) string {
	if !ref.Equal(s.lastRef) || (s.lastCoord == "" && !ref.IsZero()) {
		s.lastRef = participant.CoordinatorRef{URLs: slices.Clone(ref.URLs), Identity: ref.Identity}
		s.lastCoord = string(ref.Encode())
	}
	return s.lastCoord
}

// appendAbort appends the recAbort2 record of an abort or a no vote.
func (s *Store) appendAbort(id concord.TxID, reason string, deadline int64) (uint64, error) {
	s.bodyBuf = appendDeadlineBody(s.bodyBuf[:0], deadline, reason)
	return s.appendRec(recAbort2, id, s.bodyBuf)
}

// appendRec appends a record without waiting; s.mu is held, so records
// reach the log in the order their effects were applied.
func (s *Store) appendRec(typ uint8, id concord.TxID, body []byte) (uint64, error) {
	s.recBuf = appendRecord(s.recBuf[:0], id, body)
	seq, err := s.log.AppendAsync(typ, s.recBuf)
	if err != nil {
		s.fail(err)
		return 0, s.err
	}
	s.sinceSnap++
	// A snapshot writes every remembered decision: with more of them than
	// SnapshotEvery (a high rate times the time they are kept), wait for
	// as many records, so that each record still pays for about one entry.
	if s.sinceSnap >= s.opts.SnapshotEvery && s.sinceSnap >= len(s.txs) && !s.snapping && s.err == nil {
		s.snapping = true
		s.snapWG.Add(1)
		go s.backgroundSnapshot()
	}
	return seq, nil
}

// fail breaks the store; s.mu is held.
func (s *Store) fail(err error) {
	if s.err == nil {
		s.err = fmt.Errorf("%w: %w", ErrFailed, err)
	}
}

// durable waits until record seq is on stable storage.
func (s *Store) durable(seq uint64) error {
	if s.log.DurableSeq() >= seq {
		return nil
	}
	if err := s.log.Sync(); err != nil {
		s.mu.Lock()
		s.fail(err)
		err = s.err
		s.mu.Unlock()
		return err
	}
	s.syncMu.Lock()
	close(s.synced)
	s.synced = make(chan struct{})
	s.syncMu.Unlock()
	return nil
}

// durableSoon waits until record seq is on stable storage, giving other
// calls' syncs CommitSyncDelay to cover it before it syncs by itself.
func (s *Store) durableSoon(seq uint64) error {
	if d := s.opts.CommitSyncDelay; d > 0 && s.log.DurableSeq() < seq {
		timer := time.NewTimer(d)
		defer timer.Stop()
		for {
			s.syncMu.Lock()
			synced := s.synced
			s.syncMu.Unlock()
			if s.log.DurableSeq() >= seq {
				return nil
			}
			select {
			case <-synced:
				continue
			case <-timer.C:
			}
			break
		}
	}
	return s.durable(seq)
}

// Prepare implements participant.Resource. A yes vote returns once the
// PREPARED record is durable.
func (s *Store) Prepare(ctx context.Context, id concord.TxID, payload json.RawMessage, info participant.PrepareInfo) (participant.PrepareResult, error) {
	s.mu.Lock()
	now := s.opts.Now()
	s.forgetDue(now)
	r, seq, err := s.prepareLocked(id, payload, info, now)
	s.mu.Unlock()
	if seq != 0 {
		if err := s.durable(seq); err != nil {
			return participant.PrepareResult{}, err
		}
	}
	return r, err
}

// PrepareBatch implements participant.BatchResource: every call is
// prepared as by Prepare, and one sync makes every yes vote durable.
func (s *Store) PrepareBatch(ctx context.Context, calls []participant.PrepareCall) {
	err := s.batch(len(calls), s.durable, func(i int, now time.Time) (seq uint64) {
		c := &calls[i]
		c.Result, seq, c.Err = s.prepareLocked(c.ID, c.Payload, c.Info, now)
		return seq
	})
	if err != nil {
		for i := range calls {
			if c := &calls[i]; c.Err == nil && c.Result.Vote == concord.VoteYes {
				c.Result, c.Err = participant.PrepareResult{}, err
			}
		}
	}
}

// batch makes the n calls of a batch, step(i, now) for each under one
// hold of s.mu, each returning the record it needs durable (or 0), then
// waits with wait for the newest of them. It returns wait's error.
func (s *Store) batch(n int, wait func(seq uint64) error, step func(i int, now time.Time) uint64) error {
	var first, last uint64
	s.mu.Lock()
	now := s.opts.Now()
	s.forgetDue(now)
	for i := range n {
		seq := step(i, now)
		if first == 0 {
			first = seq
		}
		last = max(last, seq)
	}
	s.mu.Unlock()
	if last == 0 {
		return nil
	}
	if s.opts.BatchWait != nil {
		last = s.opts.BatchWait(first, last)
	}
	return wait(last)
}

// validateNewID checks the id of a PREPARE: the strict check, which refuses
// ids made only of dots. What was stored before is read with
// concord.ValidateStoredTxID. A variable so that a test can write what an
// older version wrote.
var validateNewID = concord.ValidateTxID

// prepareLocked is Prepare without the wait for durability. For a yes
// vote it also returns the record that must be durable before the vote
// leaves (a duplicate's earlier one included); else 0. s.mu is held.
func (s *Store) prepareLocked(id concord.TxID, payload json.RawMessage, info participant.PrepareInfo, now time.Time) (participant.PrepareResult, uint64, error) {
	if err := validateNewID(id); err != nil {
		return participant.PrepareResult{}, 0, err
	}
	if s.err != nil {
		return participant.PrepareResult{}, 0, s.err
	}
	if e := s.txs[id]; e != nil { // a duplicate: the earlier vote
		if e.state == StatePrepared || e.state == StateCommitted {
			return participant.PrepareResult{Vote: concord.VoteYes}, e.seq, nil
		}
		return participant.PrepareResult{Vote: concord.VoteNo, Reason: e.reason}, 0, nil
	}
	adm := s.opts.Retention.Admit(info, now)
	deadline := adm.Deadline.UnixMilli()
	if adm.Refuse != "" {
		if !adm.Remember {
			return participant.PrepareResult{Vote: concord.VoteNo, Reason: adm.Refuse}, 0, nil
		}
		r, _, err := s.refuse(id, adm.Refuse, deadline)
		return r, 0, err
	}
	if len(payload) > s.opts.MaxPayload {
		r, _, err := s.refuse(id, fmt.Sprintf("payload of %d bytes is over the limit of %d", len(payload), s.opts.MaxPayload), deadline)
		return r, 0, err
	}
	r := s.m.Prepare(id, payload)
	switch r.Vote {
	case concord.VoteYes:
		coord := s.coordKey(info.Coordinator)
		s.bodyBuf = appendPreparedBody(s.bodyBuf[:0], deadline, coord, payload)
		seq, err := s.appendRec(recPrepared2, id, s.bodyBuf)
		if err != nil {
			return participant.PrepareResult{}, 0, err
		}
		s.setPrepared(id, seq, deadline, coord)
		return r, seq, nil
	case concord.VoteNo:
		r, _, err := s.refuse(id, r.Reason, deadline)
		return r, 0, err
	case concord.VoteReadOnly:
		return r, 0, nil
	default:
		return participant.PrepareResult{}, 0, fmt.Errorf("filestore: machine voted %s on %s; want yes, no or read-only", r.Vote, id)
	}
}

// refuse records a no vote (not forced) so that a duplicate prepare gets
// the same answer until its time has passed, and returns its record; s.mu
// is held.
func (s *Store) refuse(id concord.TxID, reason string, deadline int64) (participant.PrepareResult, uint64, error) {
	seq, err := s.appendAbort(id, reason, deadline)
	if err != nil {
		return participant.PrepareResult{}, 0, err
	}
	s.setDecided(id, StateAborted, seq, reason, deadline)
	return participant.PrepareResult{Vote: concord.VoteNo, Reason: reason}, seq, nil
}

// Commit implements participant.Resource: it returns once the COMMIT record
// is durable, which another call's sync may achieve within CommitSyncDelay.
func (s *Store) Commit(ctx context.Context, id concord.TxID) error {
	s.mu.Lock()
	s.forgetDue(s.opts.Now())
	seq, err := s.commitLocked(id)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.durableSoon(seq)
}

// CommitBatch implements participant.BatchResource: every call is
// committed as by Commit, and one sync (another call's, within
// CommitSyncDelay) makes them all durable.
func (s *Store) CommitBatch(ctx context.Context, calls []participant.CommitCall) {
	err := s.batch(len(calls), s.durableSoon, func(i int, _ time.Time) (seq uint64) {
		c := &calls[i]
		seq, c.Err = s.commitLocked(c.ID)
		return seq
	})
	if err != nil {
		for i := range calls {
			if c := &calls[i]; c.Err == nil {
				c.Err = err
			}
		}
	}
}

// commitLocked is Commit without the wait for durability: it returns the
// record to wait for. s.mu is held.
func (s *Store) commitLocked(id concord.TxID) (uint64, error) {
	if s.err != nil {
		return 0, s.err
	}
	e := s.txs[id]
	switch {
	case e == nil:
		return 0, fmt.Errorf("commit %s: %w", id, participant.ErrUnknownTx)
	case e.state == StateAborted:
		return 0, fmt.Errorf("commit %s: %w: it is aborted", id, participant.ErrAlreadyDecided)
	case e.state == StateCommitted:
		return e.seq, nil
	}
	s.m.Commit(id)
	seq, err := s.appendRec(recCommit, id, nil)
	if err != nil {
		return 0, err
	}
	s.decidePrepared(e, StateCommitted, seq, "")
	return seq, nil
}

// Abort implements participant.Resource. The ABORT of a prepared
// transaction is not forced (presumed abort: if it is lost, the transaction
// is prepared again after a restart and in-doubt resolution aborts it). The
// ABORT of a transaction the store does not know is forced: it is what
// refuses a late prepare, and a late one-phase prepare accepted after a
// crash would commit a transaction the coordinator reported aborted.
func (s *Store) Abort(ctx context.Context, id concord.TxID) error {
	// The stored check: the abort of a transaction prepared before ids
	// made only of dots were refused must reach it.
	if err := concord.ValidateStoredTxID(id); err != nil {
		return err
	}
	s.mu.Lock()
	if s.err != nil {
		defer s.mu.Unlock()
		return s.err
	}
	now := s.opts.Now()
	s.forgetDue(now)
	e := s.txs[id]
	reason := "aborted"
	var deadline int64
	switch {
	case e == nil:
		reason = "aborted before prepare"
		deadline = s.opts.Retention.AbortDeadline(now).UnixMilli()
	case e.state == StateAborted:
		seq := e.seq
		s.mu.Unlock()
		return s.durable(seq) // a duplicate of a forced abort may come before its sync
	case e.state == StateCommitted:
		s.mu.Unlock()
		return fmt.Errorf("abort %s: %w: it is committed", id, participant.ErrAlreadyDecided)
	default:
		s.m.Abort(id)
		deadline = e.deadline
	}
	seq, err := s.appendAbort(id, reason, deadline)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	s.setDecided(id, StateAborted, seq, reason, deadline)
	s.mu.Unlock()
	if e == nil {
		return s.durable(seq)
	}
	return nil
}

// CommitOnePhase implements participant.OnePhaseResource: the work and the
// commit are one synced record.
func (s *Store) CommitOnePhase(ctx context.Context, id concord.TxID, payload json.RawMessage, info participant.PrepareInfo) (concord.Outcome, string, error) {
	s.mu.Lock()
	now := s.opts.Now()
	s.forgetDue(now)
	o, reason, seq, err := s.commitOnePhaseLocked(id, payload, info, now)
	s.mu.Unlock()
	if err != nil {
		return concord.OutcomePending, "", err
	}
	if seq != 0 {
		if err := s.durable(seq); err != nil {
			return concord.OutcomePending, "", err
		}
	}
	return o, reason, nil
}

// CommitOnePhaseBatch implements participant.OnePhaseBatchResource: every
// call is made as by CommitOnePhase, and one sync makes every outcome
// durable.
func (s *Store) CommitOnePhaseBatch(ctx context.Context, calls []participant.OnePhaseCall) {
	err := s.batch(len(calls), s.durable, func(i int, now time.Time) (seq uint64) {
		c := &calls[i]
		c.Outcome, c.Reason, seq, c.Err = s.commitOnePhaseLocked(c.ID, c.Payload, c.Info, now)
		return seq
	})
	if err != nil {
		for i := range calls {
			if c := &calls[i]; c.Err == nil {
				c.Outcome, c.Reason, c.Err = concord.OutcomePending, "", err
			}
		}
	}
}

// commitOnePhaseLocked is CommitOnePhase without the wait for durability:
// it also returns the record that must be durable before the outcome is
// reported (a duplicate's earlier one included), or 0. A refusal is forced
// like a commit: it is the transaction's outcome, reported to the client as
// final, so a duplicate of the request after a crash must be refused too
// (by then stock may have freed up). s.mu is held.
func (s *Store) commitOnePhaseLocked(id concord.TxID, payload json.RawMessage, info participant.PrepareInfo, now time.Time) (concord.Outcome, string, uint64, error) {
	if err := validateNewID(id); err != nil {
		return concord.OutcomePending, "", 0, err
	}
	if s.err != nil {
		return concord.OutcomePending, "", 0, s.err
	}
	if e := s.txs[id]; e != nil {
		switch e.state {
		case StateAborted:
			return concord.OutcomeAborted, e.reason, e.seq, nil
		case StateCommitted:
			return concord.OutcomeCommitted, "", e.seq, nil
		}
		// Prepared in two phases already: this request decides it.
		seq, err := s.commitLocked(id)
		if err != nil {
			return concord.OutcomePending, "", 0, err
		}
		return concord.OutcomeCommitted, "", seq, nil
	}
	adm := s.opts.Retention.Admit(info, now)
	deadline := adm.Deadline.UnixMilli()
	if adm.Refuse != "" {
		if !adm.Remember {
			return concord.OutcomeAborted, adm.Refuse, 0, nil
		}
		return s.refuseOnePhase(id, adm.Refuse, deadline)
	}
	if len(payload) > s.opts.MaxPayload {
		return s.refuseOnePhase(id, fmt.Sprintf("payload of %d bytes is over the limit of %d", len(payload), s.opts.MaxPayload), deadline)
	}
	r := s.m.Prepare(id, payload)
	switch r.Vote {
	case concord.VoteYes:
		s.m.Commit(id)
		s.bodyBuf = appendDeadlineBody(s.bodyBuf[:0], deadline, payload)
		seq, err := s.appendRec(recOnePhase2, id, s.bodyBuf)
		if err != nil {
			return concord.OutcomePending, "", 0, err
		}
		s.setDecided(id, StateCommitted, seq, "", deadline)
		return concord.OutcomeCommitted, r.Reason, seq, nil
	case concord.VoteReadOnly:
		return concord.OutcomeCommitted, r.Reason, 0, nil
	case concord.VoteNo:
		return s.refuseOnePhase(id, r.Reason, deadline)
	default:
		return concord.OutcomePending, "", 0, fmt.Errorf("filestore: machine voted %s on %s; want yes, no or read-only", r.Vote, id)
	}
}

// refuseOnePhase records a one-phase refusal and returns it with its
// record; s.mu is held.
func (s *Store) refuseOnePhase(id concord.TxID, reason string, deadline int64) (concord.Outcome, string, uint64, error) {
	r, seq, err := s.refuse(id, reason, deadline)
	if err != nil {
		return concord.OutcomePending, "", 0, err
	}
	return concord.OutcomeAborted, r.Reason, seq, nil
}

// Recover implements participant.Resource: the prepared, undecided
// transactions, by id, each with the coordinator its PREPARE named.
func (s *Store) Recover(ctx context.Context) ([]participant.RecoveredTx, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.err != nil {
		return nil, s.err
	}
	txs := make([]participant.RecoveredTx, 0, len(s.prepared))
	for id, e := range s.prepared {
		ref, err := participant.DecodeCoordinatorRef([]byte(e.coord))
		if err != nil {
			return nil, fmt.Errorf("%w: prepared transaction %s: %v", ErrCorrupt, id, err)
		}
		txs = append(txs, participant.RecoveredTx{ID: id, Coordinator: ref})
	}
	slices.SortFunc(txs, func(a, b participant.RecoveredTx) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return txs, nil
}

// Remembered counts the transactions whose id starts with prefix that the
// store holds an entry for, prepared or decided, after forgetting the
// decisions whose time has passed (participanttest.Remembering).
func (s *Store) Remembered(ctx context.Context, prefix string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgetDue(s.opts.Now())
	n := 0
	for id := range s.txs {
		if strings.HasPrefix(string(id), prefix) {
			n++
		}
	}
	return n, nil
}

// State returns where id stands, and for an aborted one why. It may be
// called from inside View.
func (s *Store) State(id concord.TxID) (TxState, string) {
	s.tmu.RLock()
	defer s.tmu.RUnlock()
	if e := s.txs[id]; e != nil {
		return e.state, e.reason
	}
	return StateUnknown, ""
}

// View runs fn while no call changes the Machine, so that fn may read the
// Machine's state consistently. fn may call State, and no other method of
// the Store.
func (s *Store) View(fn func()) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fn()
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	s.mu.RLock()
	st := s.stats
	st.Snapshots = s.snapshots
	st.SnapshotSeq = s.lastSnap
	s.mu.RUnlock()
	s.tmu.RLock()
	st.Prepared = len(s.prepared)
	st.Remembered = len(s.txs)
	s.tmu.RUnlock()
	st.Log = s.log.Stats()
	return st
}

// Close waits for a running snapshot, syncs and closes the log. Prepared
// transactions stay prepared.
func (s *Store) Close() error {
	s.mu.Lock()
	if errors.Is(s.err, ErrClosed) {
		s.mu.Unlock()
		return nil
	}
	broken := s.err
	s.err = ErrClosed
	s.mu.Unlock()
	s.snapWG.Wait()
	err := s.log.Close()
	if broken != nil {
		return broken
	}
	return err
}
