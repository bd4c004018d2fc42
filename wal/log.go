package wal

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// maxBatchBytes bounds the bytes waiting to be written: appenders wait
// while that much is queued, so a disk slower than its appenders does not
// let memory grow without bound.
const maxBatchBytes = 8 << 20

// Log is an open write-ahead log. Its methods are safe for concurrent use.
type Log struct {
	opts Options
	lock io.Closer

	// mu guards the queue: the batch being filled, sequence numbers and state.
	mu        sync.Mutex
	space     *sync.Cond // signalled when a flush takes a batch, or on close/poison
	cur       *batch
	inflight  *batch    // the batch a flush took last
	flushing  bool      // a goroutine holds the flush: it alone writes and syncs
	flushEnd  time.Time // when the last flush ended
	spare     []byte    // a drained batch's buffer, reused for the next one
	nextSeq   uint64    // sequence number the next append gets
	syncedSeq uint64    // every record up to this one is durable
	err       error     // poison: wraps ErrPoisoned and the cause
	closed    bool

	wake       chan struct{} // capacity 1: the writer goroutine may have work
	writerDone chan struct{}

	// Owned by the goroutine holding the flush (and by Open before any).
	active     File
	activeSize int64 // end of the last record written to active
	zeroedEnd  int64 // active is this long: zeros from activeSize to here
	unsynced   bool  // bytes written to active since its last sync
	poison     error
	seed       uint32 // nonceSeed of the active segment's nonce
	activePath string
	wrote      uint64 // highest sequence number written
	durable    uint64 // highest sequence number synced
	markS      uint64 // what the last mark written says was synced
	covered    uint64 // what the last mark synced says was synced
	syncedOff  int64  // end of active's bytes at its last sync
	idle       *time.Timer
	idleDue    atomic.Bool // the idle timer fired: the writer checks for a mark to write

	// segMu guards segs and written; compactMu keeps Compact from deleting
	// segments that Replay is reading.
	segMu     sync.Mutex
	segs      []segment
	written   int64 // bytes of the active segment written (readable)
	compactMu sync.RWMutex

	stats struct {
		appends, syncs, syncNanos, bytes, writes, compactions, removed, markSyncs atomic.Int64
		preallocated, segments                                                    atomic.Int64
		// syncsIn[i] counts fsyncs slower than SyncBuckets[i-1] and at
		// most SyncBuckets[i]; the last, those slower than every bound.
		syncsIn [len(SyncBuckets) + 1]atomic.Int64
	}
}

// batch is a group of records written with one write and, if any appender
// asked for it, made durable with one sync.
type batch struct {
	buf      []byte
	first    uint64 // sequence number of the first record, 0 if none
	needSync bool
	done     chan struct{} // closed once written (and synced if needSync)
	err      error         // set before done is closed

	// leader: a synchronous appender waits on turn, closed when the flush
	// before this batch ends, to flush this one itself.
	leader bool
	turn   chan struct{}
}

// SyncBuckets are the upper bounds of the fsync latency histogram in
// Stats.SyncsWithin, from a fast SSD's flush to a stalled disk's.
var SyncBuckets = [...]time.Duration{
	50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second,
}

// Stats are counters of a Log since Open.
type Stats struct {
	Appends int64 `json:"appends"` // records appended
	Writes  int64 `json:"writes"`  // write calls (batches) to segment files
	Syncs   int64 `json:"syncs"`   // fsyncs of segment files
	// MarkSyncs counts the syncs (among Syncs) of a mark written alone,
	// when the log went idle after a sync (Options.IdleMark): none is
	// needed by an append, so they are no part of any record's cost.
	MarkSyncs int64         `json:"mark_syncs"`
	SyncTime  time.Duration `json:"sync_time_ns"` // total time spent in those fsyncs
	// SyncsWithin[i] counts the fsyncs that took at most SyncBuckets[i]
	// (cumulative, as a Prometheus histogram's buckets; Syncs counts all).
	SyncsWithin     [len(SyncBuckets)]int64 `json:"syncs_within"`
	Bytes           int64                   `json:"bytes"`              // bytes of records written to segment files
	Preallocated    int64                   `json:"preallocated_bytes"` // bytes of zeros written ahead of the records (Options.Preallocate)
	Segments        int                     `json:"segments"`           // segment files now
	Compactions     int64                   `json:"compactions"`        // Compact calls that removed at least one segment
	SegmentsRemoved int64                   `json:"segments_removed"`   // segments removed by Compact
}

// Stats returns the log's counters. It is cheap and safe to call at any time.
func (l *Log) Stats() Stats {
	st := Stats{
		Appends:         l.stats.appends.Load(),
		Writes:          l.stats.writes.Load(),
		Syncs:           l.stats.syncs.Load(),
		MarkSyncs:       l.stats.markSyncs.Load(),
		SyncTime:        time.Duration(l.stats.syncNanos.Load()),
		Bytes:           l.stats.bytes.Load(),
		Preallocated:    l.stats.preallocated.Load(),
		Segments:        int(l.stats.segments.Load()),
		Compactions:     l.stats.compactions.Load(),
		SegmentsRemoved: l.stats.removed.Load(),
	}
	var n int64
	for i := range st.SyncsWithin {
		n += l.stats.syncsIn[i].Load()
		st.SyncsWithin[i] = n
	}
	return st
}

// countSync adds one fsync that took d to the counters.
func (l *Log) countSync(d time.Duration) {
	l.stats.syncs.Add(1)
	l.stats.syncNanos.Add(int64(d))
	i := 0
	for i < len(SyncBuckets) && d > SyncBuckets[i] {
		i++
	}
	l.stats.syncsIn[i].Add(1)
}

// FirstSeq returns the sequence number of the oldest record the log still
// holds (the next one to be appended if it holds none).
func (l *Log) FirstSeq() uint64 {
	l.segMu.Lock()
	defer l.segMu.Unlock()
	return l.segs[0].first
}

// LastSeq returns the sequence number of the newest record appended, durable
// or not, or 0 if there has never been one.
func (l *Log) LastSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nextSeq - 1
}

// DurableSeq returns the sequence number up to which every record is known
// to be durable.
func (l *Log) DurableSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.syncedSeq
}

// Close writes and syncs every record appended, cuts the zeros ahead of the
// records off the last segment (so that a log closed cleanly ends with its
// last record), stops the log and releases its directory. Appends after
// Close fail with ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closed = true
	l.space.Broadcast()
	// Nothing can be appended any more: once the batch being filled is
	// flushed, every record is written and synced (the flush of an empty
	// batch with nothing unsynced does nothing).
	err := l.commit(l.cur)
	l.kick()
	<-l.writerDone
	// No flush is under way nor can start: the active segment is ours.
	// A mark covers the last records synced, so that damage to them later
	// is told from a torn write; then the zeros are cut, one sync for both.
	if l.idle != nil {
		l.idle.Stop()
	}
	if err == nil && l.poison == nil {
		err = l.closeSegment()
	}
	if cerr := l.active.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close segment: %w", cerr)
	}
	if cerr := l.lock.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("unlock: %w", cerr)
	}
	return err
}

func (l *Log) kick() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}
