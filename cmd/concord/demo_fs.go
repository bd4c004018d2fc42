package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/concordtx/concord/wal"
)

// errCrashed is returned by every operation on a file opened before a crash.
var errCrashed = errors.New("file system crashed")

// crashFS is the operating system's file system with a simulated power cut:
// it remembers, per file, how much was made durable by Sync and which files
// were created since their directory was last synced, and crash throws the
// rest away (truncating files to their synced size, removing files whose
// creation was never made durable), closes every open file and releases
// every lock, as a killed machine would. Removals and renames are taken as
// durable at once; appends and writes in place, the way the wal writes, are
// what it models exactly: a write over the synced part of a file keeps the
// bytes it replaced until the next sync, and a crash puts them back.
type crashFS struct {
	base wal.FS

	mu     sync.Mutex
	synced map[string]int64      // durable size of each file written through this FS
	undo   map[string][]preimage // per file, what unsynced writes overwrote, oldest first
	fresh  map[string]bool       // created, directory not synced since
	open   []*crashFile
	locks  []io.Closer
	dead   bool // crashed and not revived: every operation fails

	// dropped counts the bytes and files the crashes threw away.
	droppedBytes int64
	droppedFiles int
}

var _ wal.FS = (*crashFS)(nil)

// preimage is the content a write replaced at off.
type preimage struct {
	off int64
	old []byte
}

// alive fails once the file system has crashed, until revive: the crashed
// process can do nothing more, and only its successor revives the disk.
func (c *crashFS) alive() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return errCrashed
	}
	return nil
}

// revive makes the file system usable again after a crash, for the
// process that restarts on it.
func (c *crashFS) revive() {
	c.mu.Lock()
	c.dead = false
	c.mu.Unlock()
}

func newCrashFS() *crashFS {
	return &crashFS{base: wal.OSFS{}, synced: map[string]int64{}, undo: map[string][]preimage{}, fresh: map[string]bool{}}
}

type crashFile struct {
	fs   *crashFS
	name string

	mu      sync.Mutex
	f       wal.File
	crashed bool
}

func (c *crashFS) track(name string, f wal.File, created bool) (*crashFile, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.synced[name]; !ok {
		size := int64(0)
		if !created {
			var err error
			if size, err = f.Size(); err != nil {
				f.Close()
				return nil, err
			}
		}
		c.synced[name] = size
	}
	if created {
		c.fresh[name] = true
	}
	cf := &crashFile{fs: c, name: name, f: f}
	c.open = append(c.open, cf)
	return cf, nil
}

// Create implements wal.FS.
func (c *crashFS) Create(name string) (wal.File, error) {
	if err := c.alive(); err != nil {
		return nil, err
	}
	f, err := c.base.Create(name)
	if err != nil {
		return nil, err
	}
	return c.track(name, f, true)
}

// OpenFile implements wal.FS.
func (c *crashFS) OpenFile(name string, writable bool) (wal.File, error) {
	if err := c.alive(); err != nil {
		return nil, err
	}
	f, err := c.base.OpenFile(name, writable)
	if err != nil {
		return nil, err
	}
	return c.track(name, f, false)
}

// ReadDir implements wal.FS.
func (c *crashFS) ReadDir(dir string) ([]string, error) {
	if err := c.alive(); err != nil {
		return nil, err
	}
	return c.base.ReadDir(dir)
}

// Remove implements wal.FS.
func (c *crashFS) Remove(name string) error {
	if err := c.alive(); err != nil {
		return err
	}
	if err := c.base.Remove(name); err != nil {
		return err
	}
	c.mu.Lock()
	delete(c.synced, name)
	delete(c.undo, name)
	delete(c.fresh, name)
	c.mu.Unlock()
	return nil
}

// Rename implements wal.FS.
func (c *crashFS) Rename(oldname, newname string) error {
	if err := c.alive(); err != nil {
		return err
	}
	if err := c.base.Rename(oldname, newname); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.synced[oldname]; ok {
		c.synced[newname] = s
		delete(c.synced, oldname)
	} else {
		delete(c.synced, newname)
	}
	if u, ok := c.undo[oldname]; ok {
		c.undo[newname] = u
		delete(c.undo, oldname)
	} else {
		delete(c.undo, newname)
	}
	if c.fresh[oldname] {
		c.fresh[newname] = true
	} else {
		delete(c.fresh, newname)
	}
	delete(c.fresh, oldname)
	for _, f := range c.open {
		if f.name == oldname {
			f.name = newname
		}
	}
	return nil
}

// MkdirAll implements wal.FS.
func (c *crashFS) MkdirAll(dir string) error {
	if err := c.alive(); err != nil {
		return err
	}
	return c.base.MkdirAll(dir)
}

// SyncDir implements wal.FS: the files created in dir are durable from now on.
func (c *crashFS) SyncDir(dir string) error {
	if err := c.alive(); err != nil {
		return err
	}
	if err := c.base.SyncDir(dir); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for name := range c.fresh {
		if filepath.Dir(name) == filepath.Clean(dir) {
			delete(c.fresh, name)
		}
	}
	return nil
}

// Lock implements wal.FS.
func (c *crashFS) Lock(dir string) (io.Closer, error) {
	if err := c.alive(); err != nil {
		return nil, err
	}
	l, err := c.base.Lock(dir)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.locks = append(c.locks, l)
	c.mu.Unlock()
	return l, nil
}

// crash cuts the power: every open file is closed and fails from now on,
// every lock is released, what was not made durable is thrown away, and
// every operation fails until revive.
func (c *crashFS) crash() error {
	// Lock order: a file's mu before the FS's.
	c.mu.Lock()
	c.dead = true
	open, locks := c.open, c.locks
	c.open, c.locks = nil, nil
	c.mu.Unlock()
	for _, f := range open {
		f.mu.Lock()
		if !f.crashed {
			f.crashed = true
			f.f.Close()
		}
		f.mu.Unlock()
	}
	for _, l := range locks {
		l.Close()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for name := range c.fresh {
		if st, err := os.Stat(name); err == nil {
			c.droppedBytes += st.Size()
		}
		if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		c.droppedFiles++
		delete(c.synced, name)
		delete(c.undo, name)
	}
	c.fresh = map[string]bool{}
	for name, pre := range c.undo {
		if err := restore(name, pre); err != nil {
			errs = append(errs, err)
		}
		for _, p := range pre {
			c.droppedBytes += int64(len(p.old))
		}
	}
	c.undo = map[string][]preimage{}
	for name, size := range c.synced {
		st, err := os.Stat(name)
		if err != nil {
			continue
		}
		if st.Size() > size {
			c.droppedBytes += unsyncedTail(name, size, st.Size())
			if err := os.Truncate(name, size); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("drop unsynced writes: %w", err)
	}
	return nil
}

// restore writes back, newest first, what unsynced writes overwrote in name.
func restore(name string, pre []preimage) error {
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	for i := len(pre) - 1; i >= 0; i-- {
		if _, err := f.WriteAt(pre[i].old, pre[i].off); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// unsyncedTail returns how many of the bytes of name from synced to size
// are data: up to the last non-zero one (zeros written ahead of the data,
// as the wal does, are not counted as lost).
func unsyncedTail(name string, synced, size int64) int64 {
	f, err := os.Open(name)
	if err != nil {
		return size - synced
	}
	defer f.Close()
	tail := make([]byte, size-synced)
	if _, err := f.ReadAt(tail, synced); err != nil {
		return size - synced
	}
	n := len(tail)
	for n > 0 && tail[n-1] == 0 {
		n--
	}
	return int64(n)
}

// dropped reports how many bytes and files crashes have thrown away.
func (c *crashFS) dropped() (bytes int64, files int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.droppedBytes, c.droppedFiles
}

func (f *crashFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return 0, errCrashed
	}
	return f.f.Write(p)
}

// WriteAt writes p at off, first keeping what it overwrites of the file's
// synced part, for a crash to put back.
func (f *crashFile) WriteAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return 0, errCrashed
	}
	f.fs.mu.Lock()
	synced := f.fs.synced[f.name]
	f.fs.mu.Unlock()
	if end := min(off+int64(len(p)), synced); off >= 0 && off < end {
		old := make([]byte, end-off)
		if _, err := f.f.ReadAt(old, off); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		f.fs.mu.Lock()
		f.fs.undo[f.name] = append(f.fs.undo[f.name], preimage{off: off, old: old})
		f.fs.mu.Unlock()
	}
	return f.f.WriteAt(p, off)
}

func (f *crashFile) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return 0, errCrashed
	}
	return f.f.ReadAt(p, off)
}

func (f *crashFile) Sync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return errCrashed
	}
	if err := f.f.Sync(); err != nil {
		return err
	}
	size, err := f.f.Size()
	if err != nil {
		return err
	}
	f.fs.mu.Lock()
	f.fs.synced[f.name] = size
	delete(f.fs.undo, f.name)
	f.fs.mu.Unlock()
	return nil
}

func (f *crashFile) Truncate(size int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return errCrashed
	}
	if err := f.f.Truncate(size); err != nil {
		return err
	}
	f.fs.mu.Lock()
	if f.fs.synced[f.name] > size {
		// Taken as durable at once: what was overwritten past the new
		// end is gone with it.
		f.fs.synced[f.name] = size
		var kept []preimage
		for _, p := range f.fs.undo[f.name] {
			if p.off < size {
				p.old = p.old[:min(int64(len(p.old)), size-p.off)]
				kept = append(kept, p)
			}
		}
		f.fs.undo[f.name] = kept
	}
	f.fs.mu.Unlock()
	return nil
}

func (f *crashFile) Size() (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return 0, errCrashed
	}
	return f.f.Size()
}

func (f *crashFile) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return nil
	}
	f.crashed = true
	err := f.f.Close()
	f.fs.mu.Lock()
	for i, o := range f.fs.open {
		if o == f {
			f.fs.open = append(f.fs.open[:i], f.fs.open[i+1:]...)
			break
		}
	}
	f.fs.mu.Unlock()
	return err
}
