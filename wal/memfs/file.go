package memfs

import (
	"errors"
	"io"
	"io/fs"
)

// File is an open file of an FS. It stays usable after its name is removed
// or renamed, and fails with ErrCrashed after a crash.
type File struct {
	m        *FS
	ino      *inode
	name     string
	gen      uint64
	writable bool
	closed   bool
}

// check returns why f cannot be used for op, counting op and applying
// faults. f.m.mu is held.
func (f *File) check(op Op) error {
	if f.closed {
		return &fs.PathError{Op: string(op), Path: f.name, Err: fs.ErrClosed}
	}
	if f.gen != f.m.gen {
		return &fs.PathError{Op: string(op), Path: f.name, Err: ErrCrashed}
	}
	return f.m.begin(op, f.name)
}

// Write appends p at the end of the file.
func (f *File) Write(p []byte) (int, error) { return f.write(p, 0, true) }

// WriteAt writes p at offset off, growing the file (with zeros between its
// end and off, if off is past it) as needed. It counts as OpWrite. Like
// Write, it is durable only after Sync: a crash before then puts the bytes
// it overwrote back.
func (f *File) WriteAt(p []byte, off int64) (int, error) { return f.write(p, off, false) }

// write writes p at off, or at the end of the file if atEnd.
func (f *File) write(p []byte, off int64, atEnd bool) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.check(OpWrite); err != nil {
		return 0, err
	}
	if !f.writable {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: errors.New("file not open for writing")}
	}
	if atEnd {
		off = int64(len(f.ino.data))
	} else if off < 0 {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: errors.New("negative offset")}
	}
	f.ino.writeAt(p, int(off))
	return len(p), nil
}

// writeAt puts p into the content at off. f.m.mu is held.
func (ino *inode) writeAt(p []byte, off int) {
	start := min(off, len(ino.data)) // a gap up to off fills with zeros
	if end := off + len(p); end > len(ino.data) {
		ino.data = append(ino.data, make([]byte, end-len(ino.data))...)
	}
	copy(ino.data[off:], p)
	ino.written(start, off+len(p))
}

// written records that bytes [start, end) changed since the last Sync.
func (ino *inode) written(start, end int) {
	if ino.dirty >= ino.dirtyEnd { // the first change since the Sync
		ino.dirty, ino.dirtyEnd = start, end
		return
	}
	ino.dirty = min(ino.dirty, start)
	ino.dirtyEnd = max(ino.dirtyEnd, end)
}

// ReadAt reads at offset off; it returns io.EOF if fewer than len(p) bytes
// are there.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.check(OpRead); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: errors.New("negative offset")}
	}
	if off >= int64(len(f.ino.data)) {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Sync makes the file's current content survive a crash. A Sync failed by
// a fault (FailNth, SetFault) behaves as Linux does after a failed fsync:
// the pages written since the last Sync are taken as clean though they
// never reached the disk, so no later Sync (through any handle) makes them
// durable: a crash puts back what was there before them (zeros past the
// old end of the file).
func (f *File) Sync() error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if f.closed || f.gen != f.m.gen {
		return f.check(OpSync)
	}
	ino := f.ino
	if err := f.check(OpSync); err != nil {
		if !ino.diverged && len(ino.data) >= len(ino.synced) {
			ino.synced = append(ino.synced, make([]byte, len(ino.data)-len(ino.synced))...)
			ino.dirty, ino.dirtyEnd = len(ino.synced), len(ino.synced)
		}
		return err
	}
	if ino.diverged || len(ino.data) < len(ino.synced) {
		ino.synced = append([]byte(nil), ino.data...)
	} else {
		// Copy just what changed: bytes past the synced size, and those
		// in [dirty, dirtyEnd) before it.
		ino.synced = append(ino.synced, ino.data[len(ino.synced):]...)
		copy(ino.synced[ino.dirty:ino.dirtyEnd], ino.data[ino.dirty:ino.dirtyEnd])
	}
	ino.dirty, ino.dirtyEnd = len(ino.synced), len(ino.synced)
	ino.diverged = false
	return nil
}

// Truncate changes the file's size, padding with zeros if it grows. Like a
// write, it is durable only after Sync.
func (f *File) Truncate(size int64) error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.check(OpTruncate); err != nil {
		return err
	}
	if !f.writable {
		return &fs.PathError{Op: "truncate", Path: f.name, Err: errors.New("file not open for writing")}
	}
	if size < 0 {
		return &fs.PathError{Op: "truncate", Path: f.name, Err: errors.New("negative size")}
	}
	ino := f.ino
	if size <= int64(len(ino.data)) {
		ino.data = ino.data[:size]
		if size < int64(len(ino.synced)) {
			ino.diverged = true
		}
		ino.dirtyEnd = min(ino.dirtyEnd, len(ino.data))
		return nil
	}
	ino.written(len(ino.data), int(size))
	ino.data = append(ino.data, make([]byte, size-int64(len(ino.data)))...)
	return nil
}

// Size returns the file's current size.
func (f *File) Size() (int64, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if f.closed {
		return 0, &fs.PathError{Op: "size", Path: f.name, Err: fs.ErrClosed}
	}
	if f.gen != f.m.gen {
		return 0, &fs.PathError{Op: "size", Path: f.name, Err: ErrCrashed}
	}
	return int64(len(f.ino.data)), nil
}

// Close closes the handle. Closing does not sync.
func (f *File) Close() error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if f.closed {
		return &fs.PathError{Op: "close", Path: f.name, Err: fs.ErrClosed}
	}
	f.closed = true
	return nil
}
