package wal

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
)

// SyncFailedFile is the name of the note a log leaves in its directory when
// a write or sync fails: the segment, offset and sequence number where its
// last successful sync ended. On Linux a failed fsync's error is reported
// once, to the file handle that made the write; a restarted process's
// fsync of the same pages then succeeds though they may never reach the
// disk. Open, finding the note, cuts everything after that point (kept
// aside as torn copies), removes the note durably, and only then reads the
// log.
const SyncFailedFile = "SYNC-FAILED"

// writeSyncFailed writes the note of where the last successful sync ended,
// durably and on a best-effort basis (the disk is failing): a fresh file,
// synced, renamed over any older note, and the directory synced. The
// caller holds the flush.
func (l *Log) writeSyncFailed() {
	if l.activePath == "" {
		return
	}
	// A handle that no longer answers (a file system gone under the
	// process) names nothing worth trusting.
	if _, err := l.active.Size(); err != nil {
		return
	}
	fsys, dir := l.opts.FS, l.opts.Dir
	note := fmt.Sprintf("segment %s\noffset %d\nseq %d\n", filepath.Base(l.activePath), l.syncedOff, l.durable)
	tmp := filepath.Join(dir, SyncFailedFile+".tmp")
	_ = fsys.Remove(tmp)
	if _, err := keepCopy(fsys, tmp, []byte(note)); err != nil {
		l.opts.Logger.Error("wal: cannot leave a note of the last good sync after a write or sync failure",
			"dir", dir, "err", err)
		return
	}
	if err := fsys.Rename(tmp, filepath.Join(dir, SyncFailedFile)); err != nil {
		l.opts.Logger.Error("wal: cannot leave a note of the last good sync", "dir", dir, "err", err)
		return
	}
	_ = fsys.SyncDir(dir)
}

// syncFailedNote is a parsed SyncFailedFile.
type syncFailedNote struct {
	segment string // base name
	offset  int64
	seq     uint64
}

func parseSyncFailed(b []byte) (syncFailedNote, error) {
	var n syncFailedNote
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if !ok {
			return n, fmt.Errorf("line %q is not \"key value\"", line)
		}
		var err error
		switch k {
		case "segment":
			if _, ok := parseSegmentName(v); !ok || v != filepath.Base(v) {
				return n, fmt.Errorf("segment %q is not a segment file name", v)
			}
			n.segment = v
		case "offset":
			n.offset, err = strconv.ParseInt(v, 10, 64)
			if err == nil && n.offset < segHeaderSize {
				err = fmt.Errorf("offset %d inside the segment header", n.offset)
			}
		case "seq":
			n.seq, err = strconv.ParseUint(v, 10, 64)
		default:
			return n, fmt.Errorf("unknown key %q", k)
		}
		if err != nil {
			return n, fmt.Errorf("%s: %w", k, err)
		}
		seen++
	}
	if seen != 3 || n.segment == "" {
		return n, errors.New("want the keys segment, offset and seq")
	}
	return n, nil
}

// honorSyncFailed applies a SyncFailedFile left by an earlier process: the
// named segment is cut at the offset, later segments are removed, what is
// cut is kept aside, and the note is removed durably.
func (l *Log) honorSyncFailed() error {
	fsys, dir := l.opts.FS, l.opts.Dir
	notePath := filepath.Join(dir, SyncFailedFile)
	b, err := readWhole(fsys, notePath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", notePath, err)
	}
	note, err := parseSyncFailed(b)
	if err != nil {
		return fmt.Errorf("%w: %s: %v (the note of an earlier write or sync failure; see docs/operations.md)", ErrCorrupt, notePath, err)
	}
	segs, err := listSegments(fsys, dir)
	if err != nil {
		return err
	}
	found := false
	for _, s := range segs {
		if filepath.Base(s.path) == note.segment {
			found = true
			if err := l.cutAt(s.path, note.offset); err != nil {
				return err
			}
			continue
		}
		if !found {
			continue
		}
		// A segment begun after the last good sync: nothing in it was
		// acknowledged.
		data, err := readWhole(fsys, s.path)
		if err != nil {
			return fmt.Errorf("read %s: %w", s.path, err)
		}
		kept, err := keepCopy(fsys, s.path+".torn-0", data)
		if err != nil {
			return fmt.Errorf("keep %s: %w", s.path, err)
		}
		if err := fsys.Remove(s.path); err != nil {
			return err
		}
		l.opts.Logger.Warn("wal: removed a segment begun after the last good sync of a process whose write or sync failed",
			"file", s.path, "bytes", len(data), "kept", kept)
	}
	if !found {
		return fmt.Errorf("%w: %s names segment %s, which is not in the log", ErrMissingSegment, notePath, note.segment)
	}
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	if err := fsys.Remove(notePath); err != nil {
		return fmt.Errorf("remove %s: %w", notePath, err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

// cutAt cuts the segment at path to off (if it is longer), keeping the cut
// bytes aside, after a write or sync failure.
func (l *Log) cutAt(path string, off int64) error {
	f, err := l.opts.FS.OpenFile(path, true)
	if err != nil {
		return fmt.Errorf("open segment: %w", err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return fmt.Errorf("size of %s: %w", path, err)
	}
	if size <= off {
		return nil // what the scan finds there decides
	}
	kept, err := l.cutTail(f, path, off, size)
	if err != nil {
		return err
	}
	l.opts.Logger.Warn("wal: cut what an earlier process wrote after its last good sync (its write or sync failed)",
		"file", path, "offset", off, "bytes", size-off, "kept", kept)
	return nil
}

// readWhole returns the content of the named file.
func readWhole(fsys FS, name string) ([]byte, error) {
	f, err := fsys.OpenFile(name, false)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && size > 0 {
		return nil, err
	}
	return b, nil
}
