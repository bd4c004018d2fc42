package wal

import (
	"fmt"
)

// Replay calls fn for every record with Seq >= from, in order, including
// records appended with AppendAsync before the call (Replay waits until
// they are written; it does not wait for them to be durable). Each Payload
// is a fresh slice that fn may keep. Replay stops at fn's first error and
// returns it. Compact waits while Replay runs, so fn must not call Compact;
// it may append.
func (l *Log) Replay(from uint64, fn func(Record) error) error {
	if err := l.waitWritten(); err != nil {
		return err
	}
	l.compactMu.RLock()
	defer l.compactMu.RUnlock()
	l.segMu.Lock()
	segs := append([]segment(nil), l.segs...)
	written := l.written
	l.segMu.Unlock()
	for i, s := range segs {
		var nextFirst uint64 // first record of the next segment, 0 if none
		if i < len(segs)-1 {
			nextFirst = segs[i+1].first
		}
		if nextFirst != 0 && nextFirst <= from {
			continue // every record of s is before from
		}
		if err := l.replaySegment(s, nextFirst, written, from, fn); err != nil {
			return err
		}
	}
	return nil
}

// replaySegment reads s up to written if it is the active segment
// (nextFirst 0), else whole: a sealed segment may end in zeros (see Open)
// if the next one starts at nextFirst.
func (l *Log) replaySegment(s segment, nextFirst uint64, written int64, from uint64, fn func(Record) error) error {
	last := nextFirst == 0
	f, err := l.opts.FS.OpenFile(s.path, false)
	if err != nil {
		return fmt.Errorf("wal: replay: %w", err)
	}
	defer f.Close()
	size := written
	if !last {
		if size, err = f.Size(); err != nil {
			return fmt.Errorf("wal: replay: size of %s: %w", s.path, err)
		}
	}
	var fnErr error
	h, err := readSegHeader(f, size)
	if err != nil {
		return fmt.Errorf("wal: replay: %s: %w", s.path, err)
	}
	_, nonce, err := decodeSegHeader(h)
	if err != nil {
		return fmt.Errorf("wal: replay: %w: %s at offset 0: %v", ErrCorrupt, s.path, err)
	}
	res, err := scanSegment(f, size, s.first, nonce, from, func(r Record) error {
		if err := fn(r); err != nil {
			fnErr = err
			return err
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("wal: replay: %s: %w", s.path, err)
	}
	if res.kind == damageZeros && !last && res.next == nextFirst {
		return nil
	}
	if res.kind != damageNone {
		return fmt.Errorf("wal: replay: %w: %s at offset %d: %s", ErrCorrupt, s.path, res.end, res.reason)
	}
	return nil
}

// waitWritten returns once every record appended before the call is written
// to its segment (not necessarily synced).
func (l *Log) waitWritten() error {
	l.mu.Lock()
	if err := l.stateErr(); err != nil {
		l.mu.Unlock()
		return err
	}
	b := l.cur
	if b.empty() {
		b = l.inflight // nil, or the last batch the writer took
	}
	l.mu.Unlock()
	if b == nil {
		return nil
	}
	l.kick()
	<-b.done
	return b.err
}
