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
	seq, b, err := l.enqueue(func(buf []byte, seq uint64) ([]byte, uint64) {
		return appendFrame(buf, seq, typ, payload), seq + 1
	}, true)
	if err != nil {
		return 0, err
	}
	<-b.done
	if b.err != nil {
		return 0, b.err
	}
	return seq, nil
}

// AppendAsync adds one record and returns its sequence number without
// waiting: the record is written soon after and is durable once a later
// Append, AppendBatch with sync, Sync or Close has returned nil (it is
// earlier in the log). A write failure shows on those later calls.
func (l *Log) AppendAsync(typ uint8, payload []byte) (uint64, error) {
	if err := l.checkSize(len(payload)); err != nil {
		return 0, err
	}
	seq, _, err := l.enqueue(func(buf []byte, seq uint64) ([]byte, uint64) {
		return appendFrame(buf, seq, typ, payload), seq + 1
	}, false)
	return seq, err
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
	seq, b, err := l.enqueue(func(buf []byte, seq uint64) ([]byte, uint64) {
		for _, e := range entries {
			buf = appendFrame(buf, seq, e.Type, e.Payload)
			seq++
		}
		return buf, seq
	}, sync)
	if err != nil || !sync {
		return seq, err
	}
	<-b.done
	if b.err != nil {
		return 0, b.err
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
	if len(l.cur.buf) == 0 && l.syncedSeq == l.nextSeq-1 {
		l.mu.Unlock()
		return nil
	}
	b := l.cur
	b.needSync = true
	l.mu.Unlock()
	l.kick()
	<-b.done
	return b.err
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
// returns the first sequence number and the batch to wait for.
func (l *Log) enqueue(add func(buf []byte, seq uint64) ([]byte, uint64), sync bool) (uint64, *batch, error) {
	l.mu.Lock()
	for l.stateErr() == nil && len(l.cur.buf) >= maxBatchBytes {
		l.space.Wait()
	}
	if err := l.stateErr(); err != nil {
		l.mu.Unlock()
		return 0, nil, err
	}
	b := l.cur
	first := l.nextSeq
	var next uint64
	b.buf, next = add(b.buf, first)
	if b.first == 0 {
		b.first = first
	}
	l.nextSeq = next
	if sync {
		b.needSync = true
	}
	l.mu.Unlock()
	l.stats.appends.Add(int64(next - first))
	l.kick()
	return first, b, nil
}

// writer is the one goroutine that writes and syncs segment files. It takes
// the whole batch waiting, writes it at once, syncs once if any appender
// asked, and releases every waiter; appenders fill the next batch meanwhile.
func (l *Log) writer() {
	defer close(l.writerDone)
	for range l.wake {
		l.mu.Lock()
		b := l.cur
		closed := l.closed
		if len(b.buf) == 0 && !b.needSync && !closed {
			l.mu.Unlock()
			continue
		}
		l.cur = &batch{buf: l.spare[:0], done: make(chan struct{})}
		l.spare = nil
		l.inflight = b
		last := l.nextSeq - 1
		l.space.Broadcast()
		l.mu.Unlock()

		synced, err := l.flush(b)

		l.mu.Lock()
		if err != nil && l.err == nil {
			l.err = err
			l.space.Broadcast()
		}
		if synced && err == nil {
			l.syncedSeq = last
		}
		if cap(b.buf) <= maxBatchBytes {
			l.spare = b.buf
		}
		l.mu.Unlock()
		b.err = err
		close(b.done)
		if closed {
			return
		}
	}
}

// flush writes b to the active segment, rolling to a new segment first if
// the active one is full, and syncs if b asks for it. It reports whether
// everything written so far is durable.
func (l *Log) flush(b *batch) (synced bool, err error) {
	if l.poison != nil {
		return false, l.poison
	}
	defer func() {
		if err != nil {
			l.poison = fmt.Errorf("%w: %w", ErrPoisoned, err)
			err = l.poison
		}
	}()
	if len(b.buf) > 0 {
		if l.activeSize >= l.opts.SegmentSize && l.activeSize > segHeaderSize {
			if err := l.roll(b.first); err != nil {
				return false, err
			}
		}
		n, err := l.active.Write(b.buf)
		l.activeSize += int64(n)
		l.stats.writes.Add(1)
		l.stats.bytes.Add(int64(n))
		l.unsynced = true
		l.segMu.Lock()
		l.written = l.activeSize
		l.segMu.Unlock()
		if err != nil {
			return false, fmt.Errorf("write segment: %w", err)
		}
	}
	if b.needSync && l.unsynced {
		if err := l.syncActive(); err != nil {
			return false, err
		}
	}
	return !l.unsynced, nil
}

func (l *Log) syncActive() error {
	start := time.Now()
	err := l.active.Sync()
	l.stats.syncs.Add(1)
	l.stats.syncNanos.Add(int64(time.Since(start)))
	if err != nil {
		return fmt.Errorf("sync segment: %w", err)
	}
	l.unsynced = false
	return nil
}
