package wal

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"
)

// Open opens the log in opts.Dir, creating the directory and a first segment
// if needed, and locks the directory. It checks every segment and decides
// from the marks (see the package doc) where the last sync ended:
//
//   - damage in the last segment where a valid mark (before or after it)
//     says the damaged record was synced fails with ErrCorrupt naming the
//     file and offset: a synced record is never dropped;
//   - other damage there is a torn tail, of records never synced: it is
//     copied to "<segment>.torn-<offset>", cut off and logged at WARN;
//   - zeros after the last record are space written ahead of the records,
//     which appends then fill;
//   - an earlier segment may end in zeros only if the next segment starts
//     with the record that follows its last one; any other damage in it
//     fails with ErrCorrupt, and a gap between segments with
//     ErrMissingSegment.
//
// If the previous process failed to write or sync (see ErrPoisoned), Open
// first cuts everything after its last successful sync (kept aside, logged
// at WARN): pages the kernel failed to write may still read back, and must
// not be trusted. The last segment is then synced, so that every record
// Replay returns is durable even if the process that wrote it died before
// its sync, and a mark covering it is written.
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
	l.cur = newBatch(nil)
	fail := func(what string, err error) (*Log, error) {
		if l.active != nil {
			l.active.Close()
		}
		lock.Close()
		return nil, fmt.Errorf("wal: open %s: %s%w", opts.Dir, what, err)
	}
	if err := l.honorSyncFailed(); err != nil {
		return fail("", err)
	}
	if err := l.recover(); err != nil {
		return fail("", err)
	}
	// The last segment may hold records a previous process wrote and never
	// synced (it died first): they read back from the page cache now but
	// could still be lost. Sync them before anyone acts on them, and cover
	// them with a mark.
	if err := l.active.Sync(); err != nil {
		return fail("sync the last segment: ", err)
	}
	l.wrote = l.nextSeq - 1
	l.durable = l.wrote
	l.syncedOff = l.activeSize
	if l.durable > l.covered {
		if err := l.writeMark(); err != nil {
			return fail("", err)
		}
		if err := l.syncActive(); err != nil {
			return fail("", err)
		}
	}
	l.syncedSeq = l.nextSeq - 1
	l.stats.segments.Store(int64(len(l.segs)))
	if opts.IdleMark > 0 {
		l.idle = time.AfterFunc(time.Hour, func() {
			l.idleDue.Store(true)
			l.kick()
		})
		l.idle.Stop()
	}
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
		f, nonce, err := l.createSegment(1)
		if err != nil {
			return err
		}
		l.segs = []segment{{first: 1, path: filepath.Join(l.opts.Dir, segmentName(1))}}
		l.active, l.activeSize, l.zeroedEnd, l.written, l.nextSeq = f, segHeaderSize, segHeaderSize, segHeaderSize, 1
		l.seed, l.activePath = nonceSeed(nonce), l.segs[0].path
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
		c, err := l.checkSegment(f, s, nextFirst)
		if err != nil {
			f.Close()
			return err
		}
		next = c.next
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
		l.active, l.activeSize, l.zeroedEnd, l.written = f, c.end, zeroed, c.end
		l.seed, l.activePath, l.covered, l.markS = nonceSeed(c.nonce), s.path, c.synced, c.synced
	}
	l.segs = segs
	l.nextSeq = next
	return nil
}

// checked is what checkSegment found.
type checked struct {
	end    int64  // offset just past the last frame
	next   uint64 // sequence number of the record after the last
	nonce  uint64
	synced uint64 // what the marks say was synced
}

// checkSegment reads one segment, repairing the header or a torn tail if it
// is the last (nextFirst 0). Zeros after the last record of the last
// segment stay (unless preallocation is off). An earlier segment must be
// followed by one that starts at nextFirst.
func (l *Log) checkSegment(f File, s segment, nextFirst uint64) (checked, error) {
	last := nextFirst == 0
	size, err := f.Size()
	if err != nil {
		return checked{}, fmt.Errorf("size of %s: %w", s.path, err)
	}
	h, err := readSegHeader(f, size)
	if err != nil {
		return checked{}, fmt.Errorf("%s: %w", s.path, err)
	}
	first, nonce, herr := decodeSegHeader(h)
	if errors.Is(herr, ErrVersion) {
		return checked{}, fmt.Errorf("%s: %w", s.path, herr)
	}
	if herr != nil {
		// A segment is created, its header written and synced, and only
		// then is the directory synced: a crash in between can leave the
		// last segment with a short or zeroed header and nothing after it.
		repairable := last && size < segHeaderSize
		if last && size >= segHeaderSize {
			all := make([]byte, size)
			if _, err := f.ReadAt(all, 0); err != nil {
				return checked{}, fmt.Errorf("read %s: %w", s.path, err)
			}
			repairable = isZero(all)
		}
		if !repairable {
			return checked{}, fmt.Errorf("%w: %s at offset 0: %v", ErrCorrupt, s.path, herr)
		}
		if _, err := l.cutTail(f, s.path, 0, size); err != nil {
			return checked{}, err
		}
		nonce := newNonce()
		if _, err := f.Write(encodeSegHeader(s.first, nonce)); err != nil {
			return checked{}, fmt.Errorf("rewrite header of %s: %w", s.path, err)
		}
		if err := f.Sync(); err != nil {
			return checked{}, fmt.Errorf("sync %s: %w", s.path, err)
		}
		l.opts.Logger.Warn("wal: rewrote the torn header of the last segment", "file", s.path, "bytes", size)
		return checked{end: segHeaderSize, next: s.first, nonce: nonce}, nil
	}
	if first != s.first {
		return checked{}, fmt.Errorf("%w: %s at offset 0: header says first record %d, name says %d", ErrCorrupt, s.path, first, s.first)
	}
	res, err := scanSegment(f, size, s.first, nonce, 0, nil)
	if err != nil {
		return checked{}, fmt.Errorf("%s: %w", s.path, err)
	}
	c := checked{end: res.end, next: res.next, nonce: nonce, synced: res.synced}
	switch {
	case res.kind == damageNone:
		return c, nil
	case !last && res.kind == damageZeros:
		if res.next == nextFirst {
			return c, nil // zeros a roll's cut left: the end of the segment
		}
		return checked{}, fmt.Errorf("%w: %s at offset %d: zeroed tail after record %d, but the next segment starts at record %d",
			ErrCorrupt, s.path, res.end, res.next-1, nextFirst)
	case !last:
		return checked{}, fmt.Errorf("%w: %s at offset %d: %s", ErrCorrupt, s.path, res.end, res.reason)
	case res.syncedLost():
		return checked{}, fmt.Errorf("%w: %s at offset %d: %s", ErrCorrupt, s.path, res.end, res.lastReason())
	case res.kind == damageZeros && l.opts.Preallocate > 0:
		// Zeros written ahead by an earlier run: records go into them,
		// sparing a cut now and new zeros at the first write.
		return c, nil
	}
	kept, err := l.cutTail(f, s.path, res.end, size)
	if err != nil {
		return checked{}, err
	}
	if res.kind == damageBad {
		l.opts.Logger.Warn("wal: cut a torn tail (records never synced) off the last segment",
			"file", s.path, "offset", res.end, "bytes", size-res.end, "reason", res.reason,
			"kept", kept, "records_after", res.after.records, "first_after", res.after.first, "last_after", res.after.last,
			"synced_up_to", res.synced, "next_record", res.next)
	}
	return c, nil
}

// cutTail keeps a copy of bytes [off, size) of the file at path beside it
// (unless they are all zero; without the zeros after the last non-zero
// byte, which are preallocated space), truncates the file to off and
// returns the copy's name ("" if none).
func (l *Log) cutTail(f File, path string, off, size int64) (string, error) {
	fsys := l.opts.FS
	tail := make([]byte, size-off)
	if _, err := f.ReadAt(tail, off); err != nil && len(tail) > 0 {
		return "", fmt.Errorf("read tail of %s: %w", path, err)
	}
	tail = trimZeros(tail)
	var kept string
	if len(tail) > 0 {
		var err error
		if kept, err = keepCopy(fsys, fmt.Sprintf("%s.torn-%d", path, off), tail); err != nil {
			return "", fmt.Errorf("keep torn tail of %s: %w", path, err)
		}
		if err := fsys.SyncDir(filepath.Dir(path)); err != nil {
			return "", fmt.Errorf("sync directory: %w", err)
		}
	}
	if err := f.Truncate(off); err != nil {
		return "", fmt.Errorf("truncate %s to %d: %w", path, off, err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("sync %s: %w", path, err)
	}
	return kept, nil
}

// keepCopy writes data durably to a new file named name, or name.1, name.2,
// ... if it exists, and returns the name used. The caller syncs the
// directory.
func keepCopy(fsys FS, name string, data []byte) (string, error) {
	try := name
	for i := 1; ; i++ {
		f, err := fsys.Create(try)
		if err != nil {
			if isExist(err) && i < 1000 {
				try = fmt.Sprintf("%s.%d", name, i)
				continue
			}
			return "", err
		}
		_, err = f.Write(data)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return try, err
	}
}

// createSegment creates the segment whose first record is first: create,
// write the header, sync the file, sync the directory. It returns the file
// and its nonce.
func (l *Log) createSegment(first uint64) (File, uint64, error) {
	path := filepath.Join(l.opts.Dir, segmentName(first))
	f, err := l.opts.FS.Create(path)
	if err != nil {
		return nil, 0, fmt.Errorf("create segment: %w", err)
	}
	nonce := newNonce()
	if _, err := f.Write(encodeSegHeader(first, nonce)); err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("write header of %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("sync %s: %w", path, err)
	}
	if err := l.opts.FS.SyncDir(l.opts.Dir); err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("sync directory %s: %w", l.opts.Dir, err)
	}
	return f, nonce, nil
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
	f, nonce, err := l.createSegment(first)
	if err != nil {
		return err
	}
	old := l.active
	l.active, l.activeSize, l.zeroedEnd = f, segHeaderSize, segHeaderSize
	l.seed, l.activePath, l.syncedOff = nonceSeed(nonce), filepath.Join(l.opts.Dir, segmentName(first)), segHeaderSize
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
