package wal

import (
	"fmt"
	"path/filepath"
	"sync"
)

// Open opens the log in opts.Dir, creating the directory and a first segment
// if needed, and locks the directory. It checks every segment: a torn tail of
// the last one is copied to "<segment>.torn-<offset>" and cut off, so that
// appends continue after the last good record; zeros after it are space
// written ahead of the records, which appends then fill. An earlier segment
// may end in zeros (as a crash could leave one if zeros were ever left at a
// roll) if the next segment starts with the record that follows its last
// one. Any other damage fails with ErrCorrupt
// naming the file and offset, and a gap between segments with
// ErrMissingSegment. The last segment is then synced, so that every record
// Replay returns is durable even if the process that wrote it died before
// its sync.
func Open(opts Options) (*Log, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	fsys := opts.FS
	if err := fsys.MkdirAll(opts.Dir); err != nil {
		return nil, fmt.Errorf("wal: create %s: %w", opts.Dir, err)
	}
	lock, err := fsys.Lock(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("wal: lock %s: %w", opts.Dir, err)
	}
	l := &Log{
		opts:       opts,
		lock:       lock,
		wake:       make(chan struct{}, 1),
		writerDone: make(chan struct{}),
	}
	l.space = sync.NewCond(&l.mu)
	l.cur = &batch{done: make(chan struct{})}
	if err := l.recover(); err != nil {
		if l.active != nil {
			l.active.Close()
		}
		lock.Close()
		return nil, fmt.Errorf("wal: open %s: %w", opts.Dir, err)
	}
	// The last segment may hold records a previous process wrote and never
	// synced (it died first, or its fsync failed): they read back from the
	// page cache now but could still be lost. Sync them before anyone acts
	// on them.
	if err := l.active.Sync(); err != nil {
		l.active.Close()
		lock.Close()
		return nil, fmt.Errorf("wal: open %s: sync the last segment: %w", opts.Dir, err)
	}
	l.syncedSeq = l.nextSeq - 1
	l.stats.segments.Store(int64(len(l.segs)))
	go l.writer()
	return l, nil
}

// recover checks the segments on disk, repairs a torn tail of the last one
// and leaves the last one open as the active segment.
func (l *Log) recover() error {
	fsys := l.opts.FS
	segs, err := listSegments(fsys, l.opts.Dir)
	if err != nil {
		return err
	}
	if len(segs) == 0 {
		f, err := l.createSegment(1)
		if err != nil {
			return err
		}
		l.segs = []segment{{first: 1, path: filepath.Join(l.opts.Dir, segmentName(1))}}
		l.active, l.activeSize, l.zeroedEnd, l.written, l.nextSeq = f, segHeaderSize, segHeaderSize, segHeaderSize, 1
		return nil
	}
	next := segs[0].first
	for i, s := range segs {
		last := i == len(segs)-1
		if s.first != next {
			if s.first > next {
				return fmt.Errorf("%w: %s starts at record %d but the previous segment ends at record %d (records %d..%d are missing)",
					ErrMissingSegment, s.path, s.first, next-1, next, s.first-1)
			}
			return fmt.Errorf("%w: %s starts at record %d but the previous segment already holds records up to %d",
				ErrCorrupt, s.path, s.first, next-1)
		}
		f, err := fsys.OpenFile(s.path, last)
		if err != nil {
			return fmt.Errorf("open segment: %w", err)
		}
		var nextFirst uint64 // first record of the next segment, 0 if none
		if !last {
			nextFirst = segs[i+1].first
		}
		end, n, err := l.checkSegment(f, s, nextFirst)
		if err != nil {
			f.Close()
			return err
		}
		next = n
		if !last {
			if err := f.Close(); err != nil {
				return fmt.Errorf("close %s: %w", s.path, err)
			}
			continue
		}
		zeroed, err := f.Size() // zeros from end to here, if any
		if err != nil {
			f.Close()
			return fmt.Errorf("size of %s: %w", s.path, err)
		}
		l.active, l.activeSize, l.zeroedEnd, l.written = f, end, zeroed, end
	}
	l.segs = segs
	l.nextSeq = next
	return nil
}

// checkSegment reads one segment, repairing the header or a torn tail if it
// is the last (nextFirst 0), and returns the offset just past its last
// record and the sequence number that follows that record. Zeros after the
// last record of the last segment stay (unless preallocation is off). An
// earlier segment must be followed by one that starts at nextFirst.
func (l *Log) checkSegment(f File, s segment, nextFirst uint64) (int64, uint64, error) {
	last := nextFirst == 0
	size, err := f.Size()
	if err != nil {
		return 0, 0, fmt.Errorf("size of %s: %w", s.path, err)
	}
	h, err := readSegHeader(f, size)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", s.path, err)
	}
	first, herr := decodeSegHeader(h)
	if herr != nil {
		// A segment is created, its header written and synced, and only
		// then is the directory synced: a crash in between can leave the
		// last segment with a short or zeroed header and nothing after it.
		repairable := last && size < segHeaderSize
		if last && size >= segHeaderSize {
			all := make([]byte, size)
			if _, err := f.ReadAt(all, 0); err != nil {
				return 0, 0, fmt.Errorf("read %s: %w", s.path, err)
			}
			repairable = isZero(all)
		}
		if !repairable {
			return 0, 0, fmt.Errorf("%w: %s at offset 0: %v", ErrCorrupt, s.path, herr)
		}
		if err := l.cutTail(f, s.path, 0, size); err != nil {
			return 0, 0, err
		}
		if _, err := f.Write(encodeSegHeader(s.first)); err != nil {
			return 0, 0, fmt.Errorf("rewrite header of %s: %w", s.path, err)
		}
		if err := f.Sync(); err != nil {
			return 0, 0, fmt.Errorf("sync %s: %w", s.path, err)
		}
		return segHeaderSize, s.first, nil
	}
	if first != s.first {
		return 0, 0, fmt.Errorf("%w: %s at offset 0: header says first record %d, name says %d", ErrCorrupt, s.path, first, s.first)
	}
	res, err := scanSegment(f, size, s.first, 0, l.opts.MaxRecordSize, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", s.path, err)
	}
	switch {
	case res.kind == damageNone:
		return res.end, res.next, nil
	case !last && res.kind == damageZeros:
		if res.next == nextFirst {
			return res.end, res.next, nil // zeros a roll's cut left: the end of the segment
		}
		return 0, 0, fmt.Errorf("%w: %s at offset %d: zeroed tail after record %d, but the next segment starts at record %d",
			ErrCorrupt, s.path, res.end, res.next-1, nextFirst)
	case !last || res.kind == damageCorrupt:
		return 0, 0, fmt.Errorf("%w: %s at offset %d: %s", ErrCorrupt, s.path, res.end, res.reason)
	case res.kind == damageZeros && l.opts.Preallocate > 0:
		// Zeros written ahead by an earlier run: records go into them,
		// sparing a cut now and new zeros at the first write.
		return res.end, res.next, nil
	}
	if err := l.cutTail(f, s.path, res.end, size); err != nil {
		return 0, 0, err
	}
	return res.end, res.next, nil
}

// cutTail keeps a copy of bytes [off, size) of the file at path beside it
// (unless they are all zero; without the zeros after the last non-zero
// byte, which are preallocated space) and truncates the file to off.
func (l *Log) cutTail(f File, path string, off, size int64) error {
	fsys := l.opts.FS
	tail := make([]byte, size-off)
	if _, err := f.ReadAt(tail, off); err != nil && len(tail) > 0 {
		return fmt.Errorf("read tail of %s: %w", path, err)
	}
	tail = trimZeros(tail)
	if len(tail) > 0 {
		if err := keepCopy(fsys, fmt.Sprintf("%s.torn-%d", path, off), tail); err != nil {
			return fmt.Errorf("keep torn tail of %s: %w", path, err)
		}
		if err := fsys.SyncDir(filepath.Dir(path)); err != nil {
			return fmt.Errorf("sync directory: %w", err)
		}
	}
	if err := f.Truncate(off); err != nil {
		return fmt.Errorf("truncate %s to %d: %w", path, off, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

// keepCopy writes data durably to a new file named name, or name.1, name.2,
// ... if it exists.
func keepCopy(fsys FS, name string, data []byte) error {
	try := name
	for i := 1; ; i++ {
		f, err := fsys.Create(try)
		if err != nil {
			if isExist(err) && i < 1000 {
				try = fmt.Sprintf("%s.%d", name, i)
				continue
			}
			return err
		}
		_, err = f.Write(data)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}
}

// createSegment creates the segment whose first record is first: create,
// write the header, sync the file, sync the directory.
func (l *Log) createSegment(first uint64) (File, error) {
	path := filepath.Join(l.opts.Dir, segmentName(first))
	f, err := l.opts.FS.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	if _, err := f.Write(encodeSegHeader(first)); err != nil {
		f.Close()
		return nil, fmt.Errorf("write header of %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("sync %s: %w", path, err)
	}
	if err := l.opts.FS.SyncDir(l.opts.Dir); err != nil {
		f.Close()
		return nil, fmt.Errorf("sync directory %s: %w", l.opts.Dir, err)
	}
	return f, nil
}

// roll makes a new segment starting at record first the active one. The old
// one is synced first, so that a later sync of the new one covers every
// record before it. It ends with its last record: zeros are never written
// past SegmentSize, and a roll comes only once the records reach it. Should
// any zeros be left all the same, they are cut off before that sync.
func (l *Log) roll(first uint64) error {
	if l.zeroedEnd > l.activeSize {
		if err := l.cutZeros(); err != nil {
			return err
		}
	}
	if l.unsynced {
		if err := l.syncActive(); err != nil {
			return err
		}
	}
	f, err := l.createSegment(first)
	if err != nil {
		return err
	}
	old := l.active
	l.active, l.activeSize, l.zeroedEnd = f, segHeaderSize, segHeaderSize
	l.segMu.Lock()
	l.segs = append(l.segs, segment{first: first, path: filepath.Join(l.opts.Dir, segmentName(first))})
	l.written = segHeaderSize
	n := len(l.segs)
	l.segMu.Unlock()
	l.stats.segments.Store(int64(n))
	if err := old.Close(); err != nil {
		return fmt.Errorf("close old segment: %w", err)
	}
	return nil
}
