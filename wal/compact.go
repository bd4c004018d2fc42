package wal

import "fmt"

// Compact tells the log that records with Seq < before are no longer needed.
// It deletes, oldest first, every segment that holds only such records,
// never the active one, syncing the directory after each: removals reach
// the disk in any order otherwise, and a crash could leave an older segment
// with a newer one gone, a gap Open refuses. It waits for running Replay
// calls.
func (l *Log) Compact(before uint64) error {
	l.mu.Lock()
	err := l.stateErr()
	l.mu.Unlock()
	if err != nil {
		return err
	}
	l.compactMu.Lock()
	defer l.compactMu.Unlock()
	l.segMu.Lock()
	segs := append([]segment(nil), l.segs...)
	l.segMu.Unlock()
	n := 0
	for n < len(segs)-1 && segs[n+1].first <= before {
		n++
	}
	if n == 0 {
		return nil
	}
	removed := 0
	for _, s := range segs[:n] {
		if err = l.opts.FS.Remove(s.path); err != nil {
			err = fmt.Errorf("wal: compact: %w", err)
			break
		}
		removed++
		if err = l.opts.FS.SyncDir(l.opts.Dir); err != nil {
			err = fmt.Errorf("wal: compact: sync directory: %w", err)
			break
		}
	}
	if removed > 0 {
		l.segMu.Lock()
		l.segs = l.segs[removed:]
		left := len(l.segs)
		l.segMu.Unlock()
		l.stats.segments.Store(int64(left))
		l.stats.removed.Add(int64(removed))
		l.stats.compactions.Add(1)
	}
	return err
}
