package wal

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// FS is the file system a Log uses. Names are paths as accepted by package
// path/filepath. Implementations must be safe for concurrent use.
type FS interface {
	// Create creates a new, empty file open for reading and writing. It
	// fails (wrapping fs.ErrExist) if the name exists.
	Create(name string) (File, error)
	// OpenFile opens an existing file for reading and, if writable, for
	// writing.
	OpenFile(name string, writable bool) (File, error)
	// ReadDir returns the names (not paths) of the regular files in dir,
	// sorted.
	ReadDir(dir string) ([]string, error)
	// Remove deletes a file.
	Remove(name string) error
	// Rename renames a file, replacing newname if it exists.
	Rename(oldname, newname string) error
	// MkdirAll creates dir and any missing parents.
	MkdirAll(dir string) error
	// SyncDir makes the creations, removals and renames of entries in dir
	// durable.
	SyncDir(dir string) error
	// Lock takes an exclusive lock on dir for one Log, failing with an
	// error wrapping ErrLocked if it is held. Closing the result releases it.
	Lock(dir string) (io.Closer, error)
}

// File is an open file of an FS.
type File interface {
	// Write appends p at the end of the file.
	Write(p []byte) (int, error)
	// WriteAt writes p at offset off (see io.WriterAt), growing the file
	// if it ends before off+len(p).
	WriteAt(p []byte, off int64) (int, error)
	// ReadAt reads len(p) bytes at offset off (see io.ReaderAt).
	ReadAt(p []byte, off int64) (int, error)
	// Sync makes the file's content durable (fdatasync on Linux).
	Sync() error
	// Truncate changes the file's size.
	Truncate(size int64) error
	// Size returns the file's current size.
	Size() (int64, error)
	// Close closes the file.
	Close() error
}

// OSFS is the operating system's file system.
type OSFS struct{}

var (
	_ FS   = OSFS{}
	_ File = (*osFile)(nil)
)

type osFile struct{ f *os.File }

// Files are opened without O_APPEND: on Linux, pwrite(2) on a file opened
// with it writes at the end whatever the offset, and the log writes records
// in place, into space it has filled with zeros ahead of them.

// Create implements FS.
func (OSFS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	return &osFile{f}, nil
}

// OpenFile implements FS.
func (OSFS) OpenFile(name string, writable bool) (File, error) {
	flag := os.O_RDONLY
	if writable {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(name, flag, 0)
	if err != nil {
		return nil, err
	}
	return &osFile{f}, nil
}

// ReadDir implements FS.
func (OSFS) ReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// Remove implements FS.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// Rename implements FS.
func (OSFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }

// MkdirAll implements FS: it creates each missing directory with mode 0700
// and syncs its parent, so that the new entry survives a power loss.
func (fsys OSFS) MkdirAll(dir string) error {
	dir = filepath.Clean(dir)
	st, err := os.Stat(dir)
	if err == nil {
		if !st.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: syscallNotDir}
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := fsys.MkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // made meanwhile by someone else, who syncs
		}
		return err
	}
	if err := osSyncDir(parent); err != nil {
		return fmt.Errorf("sync %s after creating %s: %w", parent, dir, err)
	}
	return nil
}

// syscallNotDir is the error for a path that exists but is no directory.
var syscallNotDir = errors.New("not a directory")

// osSyncDir syncs a directory for OSFS.MkdirAll; tests replace it to watch.
var osSyncDir = OSFS{}.SyncDir

// SyncDir implements FS.
func (OSFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Lock implements FS with flock(2) on a file named LOCK in dir, where the
// platform has it.
func (OSFS) Lock(dir string) (io.Closer, error) {
	name := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := flock(f); err != nil {
		f.Close()
		if errors.Is(err, ErrLocked) {
			return nil, fmt.Errorf("%w: %s", err, name)
		}
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return f, nil
}

// LockFile is the name of the lock file OSFS.Lock creates in a log directory.
const LockFile = "LOCK"

func (f *osFile) WriteAt(p []byte, off int64) (int, error) { return f.f.WriteAt(p, off) }
func (f *osFile) ReadAt(p []byte, off int64) (int, error)  { return f.f.ReadAt(p, off) }
func (f *osFile) Sync() error                              { return datasync(f.f) }
func (f *osFile) Truncate(size int64) error                { return f.f.Truncate(size) }
func (f *osFile) Close() error                             { return f.f.Close() }

// Write appends p at the end of the file. Without O_APPEND that is a seek
// to the end and a write; the log writes a file only from one goroutine at
// a time, so nothing can come between them.
func (f *osFile) Write(p []byte) (int, error) {
	if _, err := f.f.Seek(0, io.SeekEnd); err != nil {
		return 0, err
	}
	return f.f.Write(p)
}

func (f *osFile) Size() (int64, error) {
	st, err := f.f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// isExist reports whether err says a file already exists.
func isExist(err error) bool { return errors.Is(err, fs.ErrExist) }
