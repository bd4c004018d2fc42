package wal

import (
	"fmt"
	"time"
)

// Append adds one record and returns its sequence number once it is durable:
// written and synced with fdatasync. Concurrent appends share one write and
// one sync. After a failed write or sync every append fails with ErrPoisoned.
func (l *Log) Append(typ uint8, payload []byte) (uint64, error) {
	if err := l.checkSize(len(payload)); err != nil {
		return 0, err
	}
	seq, err := l.enqueue(func(buf []byte, seq uint64) ([]byte, uint64) {
		return appendFrame(buf, seq, typ, payload), seq + 1
	}, true)
	if err != nil {
		return 0, err
	}
	return seq, nil
}

// AppendAsync adds one record and returns its sequence number without
// waiting for it to be durable: it is durable once a later Append,
// AppendBatch with sync, Sync or Close has returned nil (it is earlier in
// the log). If no flush is under way, AppendAsync writes the record itself
// (without syncing) and returns a failure of that write; otherwise the
// record is written soon after, and a write failure shows on those later
// calls.
func (l *Log) AppendAsync(typ uint8, payload []byte) (uint64, error) {
	if err := l.checkSize(len(payload)); err != nil {
		return 0, err
	}
	return l.enqueue(func(buf []byte, seq uint64) ([]byte, uint64) {
		return appendFrame(buf, seq, typ, payload), seq + 1
	}, false)
}

// AppendBatch adds entries as consecutive records and returns the sequence
// number of the first. With sync it returns once they are all durable;
// without, it behaves as AppendAsync. An empty batch with sync behaves as
// Sync and returns the next sequence number.
func (l *Log) AppendBatch(entries []Entry, sync bool) (uint64, error) {
	for i, e := range entries {
		if err := l.checkSize(len(e.Payload)); err != nil {
			return 0, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	if len(entries) == 0 {
		if sync {
			if err := l.Sync(); err != nil {
				return 0, err
			}
		}
		return l.LastSeq() + 1, nil
	}
	seq, err := l.enqueue(func(buf []byte, seq uint64) ([]byte, uint64) {
		for _, e := range entries {
			buf = appendFrame(buf, seq, e.Type, e.Payload)
			seq++
		}
		return buf, seq
	}, sync)
	if err != nil {
		return 0, err
	}
	return seq, nil
}

// Sync returns once every record appended before it is durable.
func (l *Log) Sync() error {
	l.mu.Lock()
	if err := l.stateErr(); err != nil {
		l.mu.Unlock()
		return err
	}
	if l.cur.empty() {
		if l.syncedSeq == l.nextSeq-1 {
			l.mu.Unlock()
			return nil
		}
		if b := l.inflight; l.flushing && b.needSync {
			// Every record is in the batch being flushed (or earlier), and
			// that flush ends with a sync: wait for it rather than start
			// another.
			l.mu.Unlock()
			<-b.done
			return b.err
		}
	}
	return l.commit(l.cur)
}

func (l *Log) checkSize(n int) error {
	if n > l.opts.MaxRecordSize {
		return fmt.Errorf("%w: %d bytes, maximum %d", ErrRecordTooLarge, n, l.opts.MaxRecordSize)
	}
	return nil
}

// stateErr returns why nothing can be appended now, if so. l.mu is held.
func (l *Log) stateErr() error {
	if l.err != nil {
		return l.err
	}
	if l.closed {
		return ErrClosed
	}
	return nil
}

// enqueue encodes records into the batch being filled with add, which gets
// the buffer and first sequence number and returns both advanced. It
// returns the first sequence number; with sync, once the records are durable.
func (l *Log) enqueue(add func(buf []byte, seq uint64) ([]byte, uint64), sync bool) (uint64, error) {
	l.mu.Lock()
	for l.stateErr() == nil && len(l.cur.buf) >= maxBatchBytes {
		l.space.Wait()
	}
	if err := l.stateErr(); err != nil {
		l.mu.Unlock()
		return 0, err
	}
	b := l.cur
	first := l.nextSeq
	var next uint64
	b.buf, next = add(b.buf, first)
	if b.first == 0 {
		b.first = first
	}
	l.nextSeq = next
	l.stats.appends.Add(int64(next - first))
	if sync {
		return first, l.commit(b)
	}
	if l.flushing {
		// The flush under way passes this batch on when it ends.
		l.mu.Unlock()
		return first, nil
	}
	// Nobody is flushing. Writing the batch here, without a sync, costs
	// less than waking the writer goroutine to do it (a parked thread's
	// wakeup, on the caller's time), and a Sync that often follows then
	// finds the records written. But appends that come in a run, right
	// after a flush, are left to the writer, which takes them many to a
	// write; so is a segment roll, which syncs twice.
	if time.Since(l.flushEnd) < asyncRunGap || l.rollDue() {
		l.mu.Unlock()
		l.kick()
		return first, nil
	}
	l.flushing = true
	l.flushCur()
	if b.err != nil {
		return 0, b.err
	}
	return first, nil
}

// asyncRunGap: an AppendAsync this soon after the end of a flush is taken
// to be one of a run of appends, and left to the writer goroutine to batch.
const asyncRunGap = 50 * time.Microsecond

// commit returns once b, the batch being filled, is written and synced. l.mu
// is held on entry and released on return.
//
// The first goroutine to need a sync while no flush is under way leads: it
// writes and syncs the batch itself, so a lone appender waits for its own
// fsync and for no other goroutine. Needing a sync while a flush is under
// way, the first appender of the next batch becomes that batch's leader: the
// flush under way hands over to it when it ends, and it takes everything
// appended until then. Later appenders of the batch wait for its flush.
func (l *Log) commit(b *batch) error {
	b.needSync = true
	switch {
	case !l.flushing:
		l.flushing = true
	case !b.leader:
		b.leader = true
		b.turn = make(chan struct{})
		l.mu.Unlock()
		<-b.turn // the flush under way has ended and handed over to us
		l.mu.Lock()
	default:
		l.mu.Unlock()
		<-b.done
		return b.err
	}
	// This goroutine holds the flush, so nobody else has taken l.cur: it is
	// still b, with whatever was appended to it meanwhile.
	l.flushCur()
	return b.err
}

// flushCur takes the batch being filled, flushes it and hands the flush
// over: to the leader of the next batch if it has one, else to the writer
// goroutine if records are waiting. The caller holds the flush (l.flushing)
// and l.mu; flushCur releases l.mu.
func (l *Log) flushCur() {
	b := l.cur
	l.cur = newBatch(l.spare)
	l.spare = nil
	l.inflight = b
	last := l.nextSeq - 1
	l.space.Broadcast()
	l.mu.Unlock()

	synced, err := l.flush(b, last)

	l.mu.Lock()
	if err != nil && l.err == nil {
		l.err = err
		l.space.Broadcast()
	}
	if synced && err == nil {
		l.syncedSeq = last
	}
	if err == nil {
		l.armIdle()
	}
	if cap(b.buf) <= maxBatchBytes {
		l.spare = b.buf
	}
	b.err = err
	l.flushEnd = time.Now()
	next := l.cur
	kick := false
	if next.leader {
		close(next.turn) // l.flushing stays set: the flush is the leader's now
	} else {
		l.flushing = false
		kick = !next.empty()
	}
	l.mu.Unlock()
	close(b.done)
	if kick {
		l.kick()
	}
}

// writer is a goroutine that flushes the records no leader takes: those of
// AppendAsync and AppendBatch without sync when no flush is under way, and
// those appended during a flush that are not followed by a synchronous
// append. It exits once the log is closed and no flush is under way.
func (l *Log) writer() {
	defer close(l.writerDone)
	for range l.wake {
		l.mu.Lock()
		for !l.flushing && !l.cur.empty() {
			l.flushing = true
			l.flushCur()
			l.mu.Lock()
		}
		if l.idleDue.Swap(false) && !l.flushing && !l.closed && l.err == nil {
			l.flushing = true
			l.idleFlush()
			l.mu.Lock()
		}
		exit := l.closed && !l.flushing
		l.mu.Unlock()
		if exit {
			return
		}
	}
}

// armIdle starts (or restarts) the idle timer if records are synced that no
// synced mark covers. The caller holds the flush and l.mu.
func (l *Log) armIdle() {
	if l.idle != nil && l.durable > l.covered {
		l.idle.Reset(l.opts.IdleMark)
	}
}

// idleFlush writes and syncs a mark alone, covering the records synced
// since the last synced mark, when no write has come for Options.IdleMark
// after a sync. The caller holds the flush and l.mu; idleFlush releases l.mu
// and hands the flush over as flushCur does.
func (l *Log) idleFlush() {
	l.mu.Unlock()
	err := l.cover()
	l.mu.Lock()
	if err != nil && l.err == nil {
		l.err = err
		l.space.Broadcast()
	}
	if err == nil {
		l.syncedSeq = max(l.syncedSeq, l.durable)
		l.armIdle() // the mark's sync may have made async records durable
	}
	l.flushEnd = time.Now()
	next := l.cur
	kick := false
	if next.leader {
		close(next.turn)
	} else {
		l.flushing = false
		kick = !next.empty()
	}
	l.mu.Unlock()
	if kick {
		l.kick()
	}
}

// cover writes a mark saying every record synced so far was synced, and
// syncs it, unless a synced mark says so already. The caller holds the
// flush.
func (l *Log) cover() error {
	if l.poison != nil {
		return l.poison
	}
	if l.durable <= l.covered && !l.unsynced {
		return nil
	}
	if err := l.writeMark(); err != nil {
		return l.fail(err)
	}
	if err := l.syncActive(); err != nil {
		return l.fail(err)
	}
	l.stats.markSyncs.Add(1)
	return nil
}

// closeSegment ends the active segment for Close: a mark covering the last
// records synced, the zeros ahead cut off, one sync for both. The caller
// holds the flush (or no flush can start).
func (l *Log) closeSegment() error {
	if l.durable > l.covered {
		if err := l.writeMark(); err != nil {
			return l.fail(err)
		}
	}
	if l.zeroedEnd > l.activeSize {
		if err := l.cutZeros(); err != nil {
			return l.fail(err)
		}
	}
	if l.unsynced {
		if err := l.syncActive(); err != nil {
			return l.fail(err)
		}
	}
	return nil
}

// writeMark writes a mark alone after the last record: the next record is
// l.wrote+1, and every record up to l.durable is synced. The caller holds
// the flush and syncs.
func (l *Log) writeMark() error {
	m := make([]byte, markSize)
	putMark(m, l.seed, l.wrote+1, l.durable)
	n, err := l.active.WriteAt(m, l.activeSize)
	l.advance(n)
	if err != nil {
		return fmt.Errorf("write mark: %w", err)
	}
	l.markS = l.durable
	if l.activeSize == l.zeroedEnd {
		return l.zeroAhead()
	}
	return nil
}

// advance records that n more bytes were written at the end of the records.
func (l *Log) advance(n int) {
	l.activeSize += int64(n)
	l.zeroedEnd = max(l.zeroedEnd, l.activeSize)
	l.stats.writes.Add(1)
	l.stats.bytes.Add(int64(n))
	l.unsynced = true
	l.segMu.Lock()
	l.written = l.activeSize
	l.segMu.Unlock()
}

// fail poisons the log with err (a write or sync failure) and leaves a
// durable note of where the last sync ended (see writeSyncFailed). The
// caller holds the flush.
func (l *Log) fail(err error) error {
	if l.poison == nil {
		l.poison = fmt.Errorf("%w: %w", ErrPoisoned, err)
		l.writeSyncFailed()
	}
	return l.poison
}

// flush writes b, whose last record is last, to the active segment,
// rolling to a new segment first if the active one is full, and syncs if b
// asks for it. It reports whether everything written so far is durable.
func (l *Log) flush(b *batch, last uint64) (synced bool, err error) {
	if l.poison != nil {
		return false, l.poison
	}
	defer func() {
		if err != nil {
			err = l.fail(err)
		}
	}()
	if !b.empty() {
		if l.rollDue() {
			if err := l.roll(b.first); err != nil {
				return false, err
			}
		}
		// The mark is filled in now, not when the batch was begun: what
		// it says was synced is exact as of this write.
		putMark(b.buf[:markSize], l.seed, b.first, l.durable)
		n, err := l.active.WriteAt(b.buf, l.activeSize)
		l.advance(n)
		if err != nil {
			return false, fmt.Errorf("write segment: %w", err)
		}
		l.wrote, l.markS = last, l.durable
		if l.activeSize == l.zeroedEnd {
			if err := l.zeroAhead(); err != nil {
				return false, err
			}
		}
	}
	if b.needSync && l.unsynced {
		if err := l.syncActive(); err != nil {
			return false, err
		}
	}
	return !l.unsynced, nil
}

// zeroFill is the zeros zeroAhead writes, shared and never written to.
var zeroFill [DefaultPreallocate]byte

// zeroAhead writes Options.Preallocate bytes of zeros after the last record
// (but not past SegmentSize), which has reached the end of the file. The
// sync that makes the records durable then also commits the file's new
// size; the syncs after it, for records written into those zeros, have only
// data to flush. Zeros after the last record read as the end of the log.
// The caller holds the flush.
func (l *Log) zeroAhead() error {
	end := min(l.activeSize+l.opts.Preallocate, l.opts.SegmentSize)
	for l.zeroedEnd < end {
		n, err := l.active.WriteAt(zeroFill[:min(end-l.zeroedEnd, int64(len(zeroFill)))], l.zeroedEnd)
		l.zeroedEnd += int64(n)
		l.stats.preallocated.Add(int64(n))
		if err != nil {
			return fmt.Errorf("write zeros ahead of the records: %w", err)
		}
	}
	return nil
}

// cutZeros truncates the active segment to its last record, dropping the
// zeros ahead of it; the next sync makes that durable. The caller holds the
// flush.
func (l *Log) cutZeros() error {
	if err := l.active.Truncate(l.activeSize); err != nil {
		return fmt.Errorf("truncate segment to its last record: %w", err)
	}
	l.zeroedEnd = l.activeSize
	l.unsynced = true
	return nil
}

// rollDue reports whether the active segment is full, so that the next
// write goes to a new one. The caller holds the flush.
func (l *Log) rollDue() bool {
	return l.activeSize >= l.opts.SegmentSize && l.activeSize > segHeaderSize
}

func (l *Log) syncActive() error {
	start := time.Now()
	err := l.active.Sync()
	l.countSync(time.Since(start))
	if err != nil {
		return fmt.Errorf("sync segment: %w", err)
	}
	l.unsynced = false
	l.durable, l.covered, l.syncedOff = l.wrote, l.markS, l.activeSize
	return nil
}

// emptyMark is the room a batch keeps at its front for its mark.
var emptyMark [markSize]byte

// newBatch returns an empty batch, reusing buf's memory.
func newBatch(buf []byte) *batch {
	return &batch{buf: append(buf[:0], emptyMark[:]...), done: make(chan struct{})}
}

// empty reports whether b holds no record.
func (b *batch) empty() bool { return len(b.buf) <= markSize }
