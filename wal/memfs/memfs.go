package memfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"sync"

	"github.com/concordtx/concord/wal"
)

// ErrCrashed is returned by every operation on a File opened, or a lock
// taken, before the last Crash.
var ErrCrashed = errors.New("memfs: file handle from before a crash")

// Op names a kind of FS or File operation, for fault injection and counts.
type Op string

// Operations.
const (
	OpCreate   Op = "create"
	OpOpen     Op = "open"
	OpReadDir  Op = "readdir"
	OpRemove   Op = "remove"
	OpRename   Op = "rename"
	OpMkdir    Op = "mkdir"
	OpSyncDir  Op = "syncdir"
	OpLock     Op = "lock"
	OpWrite    Op = "write"
	OpRead     Op = "read"
	OpSync     Op = "sync"
	OpTruncate Op = "truncate"
)

// FS is an in-memory file system. Its zero value is not usable; call New.
// It is safe for concurrent use.
//
// Durability model: a file's content survives Crash only as it was at its
// last Sync: bytes written since (appended or overwritten) are lost, and
// overwritten bytes go back to what they were then. A file's creation,
// removal or rename survives only once SyncDir of its directory has run
// since. Directories themselves (MkdirAll) are always durable. Three crash
// modes refine what survives of the writes since the last Sync: Crash
// (none), CrashPartial (a prefix, in offset order) and CrashSectors (any
// subset of their 512-byte sectors, some torn, and any subset of the
// pending directory changes), each replayable from a seed. A Sync failed
// by a fault loses its pages for good, as Linux does. FlipBit and
// LoseSector damage durable data at rest.
type FS struct {
	mu      sync.Mutex
	files   map[string]*inode // the namespace as programs see it
	durable map[string]*inode // the namespace as it survives a crash
	dirs    map[string]bool
	locks   map[string]*lock
	gen     uint64 // bumped by every crash; older handles fail
	counts  map[Op]int
	faults  []fault
	hook    func(op Op, name string) error
}

type inode struct {
	data   []byte // current content
	synced []byte // content as it survives a crash
	// [dirty, dirtyEnd) bounds what changed since the last Sync (empty,
	// both len(synced), if nothing did). Unless diverged, dirty <=
	// len(synced), and data equals synced outside those bounds.
	dirty, dirtyEnd int
	// diverged: the file was cut below its synced size since the last
	// Sync, so data is no longer synced plus later writes.
	diverged bool
}

type fault struct {
	op  Op
	n   int // fails on the n-th call of op from when it was set; counts down
	err error
}

var (
	_ wal.FS   = (*FS)(nil)
	_ wal.File = (*File)(nil)
)

// New returns an empty file system holding only the root directory "/" and
// the current directory ".".
func New() *FS {
	return &FS{
		files:   map[string]*inode{},
		durable: map[string]*inode{},
		dirs:    map[string]bool{"/": true, ".": true},
		locks:   map[string]*lock{},
		counts:  map[Op]int{},
	}
}

// FailNth makes the n-th call of op from now (n = 1: the next one) fail with
// err, once. Several faults may be pending at once.
func (m *FS) FailNth(op Op, n int, err error) {
	if n < 1 {
		n = 1
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.faults = append(m.faults, fault{op: op, n: n, err: err})
}

// SetFault installs fn, called before every operation with its kind and
// file (or directory) name; a non-nil result fails the operation with that
// error and no effect. fn runs with the file system locked and must not call
// it; while fn blocks, every other operation waits (a test can hold an fsync
// this way, as a slow disk would). A nil fn removes the hook.
func (m *FS) SetFault(fn func(op Op, name string) error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hook = fn
}

// Count returns how many times op has been called (including failed calls).
func (m *FS) Count(op Op) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counts[op]
}

// begin counts op and returns the fault to fail it with, if any. m.mu is held.
func (m *FS) begin(op Op, name string) error {
	m.counts[op]++
	var err error
	kept := m.faults[:0]
	for _, f := range m.faults {
		if f.op == op {
			f.n--
			if f.n == 0 {
				if err == nil {
					err = f.err
				}
				continue
			}
		}
		kept = append(kept, f)
	}
	m.faults = kept
	if err == nil && m.hook != nil {
		err = m.hook(op, name)
	}
	if err != nil {
		return &fs.PathError{Op: string(op), Path: name, Err: err}
	}
	return nil
}

// Crash simulates a power loss: every file goes back to its content at its
// last Sync (see also CrashPartial and CrashSectors), the namespace goes back to its state at the last SyncDir of
// each directory, locks are released, and every open File and lock fails
// with ErrCrashed from now on.
func (m *FS) Crash() { m.crash(nil) }

// CrashPartial is Crash, except that of each file's bytes written since its
// last Sync a random prefix (chosen with r) survives, in offset order, as a
// disk may have written some of the pending bytes (a torn write): the file
// holds its current content up to a random offset between the lowest and
// the highest one written since the Sync, and its synced content after it.
// Bytes written over synced ones past that offset go back to their synced
// value; appended ones are cut. A file cut below its synced size since its
// last Sync goes back to its synced content whole.
func (m *FS) CrashPartial(r *rand.Rand) { m.crash(r) }

// SectorSize is the unit CrashSectors persists whole (or, torn, in part).
const SectorSize = 512

// CrashSectors is Crash as a disk without ordering guarantees would leave
// it: of each file's bytes written since its last Sync, every 512-byte
// sector (SectorSize, aligned to the file's start) is persisted or not on
// its own, chosen with r, in any combination; with torn, a persisted
// sector may be persisted only in part (a prefix of it, as a disk that
// loses power mid-sector may leave). A file grows to the end of the last
// byte persisted past its synced size. A file cut below its synced size
// since its last Sync goes back to its synced content whole. Likewise each
// creation, removal or rename in a directory since its last SyncDir
// persists or not on its own (a rename as a whole: both names or neither),
// as a file system may commit them in any order. Everything else is as
// Crash.
func (m *FS) CrashSectors(r *rand.Rand, torn bool) { m.crashSectors(r, torn) }

func (m *FS) crashSectors(r *rand.Rand, torn bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen++
	m.locks = map[string]*lock{}
	// The namespace: each pending change on its own, in name order so that
	// r's choices replay from a seed.
	set := map[string]bool{}
	for n := range m.files {
		set[n] = true
	}
	for n := range m.durable {
		set[n] = true
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	decided := map[*inode]bool{}
	ns := make(map[string]*inode, len(names))
	for _, n := range names {
		cur, dur := m.files[n], m.durable[n]
		if cur == dur {
			if cur != nil {
				ns[n] = cur
			}
			continue
		}
		key := cur
		if key == nil {
			key = dur
		}
		keepNew, ok := decided[key]
		if !ok {
			keepNew = r.IntN(2) == 0
			decided[key] = keepNew
		}
		if keepNew {
			if cur != nil {
				ns[n] = cur
			}
		} else if dur != nil {
			ns[n] = dur
		}
	}
	m.durable = ns
	m.files = make(map[string]*inode, len(ns))
	visited := map[*inode]bool{}
	for _, n := range names {
		ino := ns[n]
		if ino == nil {
			continue
		}
		m.files[n] = ino
		if visited[ino] {
			continue
		}
		visited[ino] = true
		ino.crashSectors(r, torn)
	}
}

// crashSectors replaces the content of ino by what survives a crash with
// sectors persisted on their own (see FS.CrashSectors).
func (ino *inode) crashSectors(r *rand.Rand, torn bool) {
	defer func() {
		ino.data = append([]byte(nil), ino.synced...)
		ino.dirty, ino.dirtyEnd = len(ino.synced), len(ino.synced)
		ino.diverged = false
	}()
	if ino.diverged || ino.dirtyEnd <= ino.dirty {
		return
	}
	lo, hi := ino.dirty, min(ino.dirtyEnd, len(ino.data))
	out := append([]byte(nil), ino.synced...)
	for sec := lo / SectorSize * SectorSize; sec < hi; sec += SectorSize {
		a, b := max(sec, lo), min(sec+SectorSize, hi)
		if r.IntN(2) == 0 {
			continue // not persisted
		}
		if torn && r.IntN(4) == 0 {
			b = a + r.IntN(b-a+1)
		}
		if b > len(out) {
			out = append(out, make([]byte, b-len(out))...)
		}
		copy(out[a:b], ino.data[a:b])
	}
	ino.synced = out
}

// FlipBit flips bit (0..7) of the byte at off of the named file, in its
// current and its durable content: damage at rest, as a disk may do to
// data it once wrote. It is meant for tests.
func (m *FS) FlipBit(name string, off int64, bit uint) error {
	return m.damage(name, off, 1, func(b []byte) { b[0] ^= 1 << (bit % 8) })
}

// LoseSector zeroes the 512-byte sector (SectorSize) that holds offset off
// of the named file, in its current and durable content (as far as each
// reaches): a sector of synced data the disk lost. It is meant for tests.
func (m *FS) LoseSector(name string, off int64) error {
	start := off / SectorSize * SectorSize
	return m.damage(name, start, SectorSize, func(b []byte) { clear(b) })
}

func (m *FS) damage(name string, off, n int64, fn func([]byte)) error {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	ino, ok := m.files[name]
	if !ok {
		return &fs.PathError{Op: "damage", Path: name, Err: fs.ErrNotExist}
	}
	if off < 0 || off >= int64(len(ino.synced)) {
		return &fs.PathError{Op: "damage", Path: name, Err: fmt.Errorf("offset %d outside the %d durable bytes", off, len(ino.synced))}
	}
	for _, b := range [][]byte{ino.synced, ino.data} {
		if off < int64(len(b)) {
			fn(b[off:min(off+n, int64(len(b)))])
		}
	}
	return nil
}

func (m *FS) crash(r *rand.Rand) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen++
	m.locks = map[string]*lock{}
	m.files = make(map[string]*inode, len(m.durable))
	// Visit in name order so that r's choices replay from a seed.
	names := make([]string, 0, len(m.durable))
	for name := range m.durable {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ino := m.durable[name]
		m.files[name] = ino
		keep := 0
		if r != nil && !ino.diverged && ino.dirtyEnd > ino.dirty {
			keep = r.IntN(ino.dirtyEnd - ino.dirty + 1)
		}
		if keep > 0 {
			cut := min(ino.dirty+keep, len(ino.data))
			kept := append(ino.data[:0:0], ino.data[:cut]...)
			if cut < len(ino.synced) {
				kept = append(kept, ino.synced[cut:]...)
			}
			ino.data = kept
			ino.synced = append(ino.synced[:0:0], kept...)
		} else {
			ino.data = append([]byte(nil), ino.synced...)
		}
		ino.dirty, ino.dirtyEnd = len(ino.synced), len(ino.synced)
		ino.diverged = false
	}
}

// ReadFile returns a copy of the current content of the named file.
func (m *FS) ReadFile(name string) ([]byte, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	ino, ok := m.files[name]
	if !ok {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
	}
	return append([]byte(nil), ino.data...), nil
}

// WriteFile replaces (or creates) the named file with data, durably: content
// and directory entry both survive a crash. It is meant for tests that
// damage a file. Its directory must exist.
func (m *FS) WriteFile(name string, data []byte) error {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dirs[filepath.Dir(name)] {
		return &fs.PathError{Op: "write", Path: name, Err: fs.ErrNotExist}
	}
	ino, ok := m.files[name]
	if !ok {
		ino = &inode{}
		m.files[name] = ino
	}
	m.durable[name] = ino
	ino.data = append([]byte(nil), data...)
	ino.synced = append([]byte(nil), data...)
	ino.dirty, ino.dirtyEnd = len(data), len(data)
	ino.diverged = false
	return nil
}

// Create implements wal.FS.
func (m *FS) Create(name string) (wal.File, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.begin(OpCreate, name); err != nil {
		return nil, err
	}
	if !m.dirs[filepath.Dir(name)] {
		return nil, &fs.PathError{Op: "create", Path: name, Err: fs.ErrNotExist}
	}
	if _, ok := m.files[name]; ok || m.dirs[name] {
		return nil, &fs.PathError{Op: "create", Path: name, Err: fs.ErrExist}
	}
	ino := &inode{}
	m.files[name] = ino
	return &File{m: m, ino: ino, name: name, gen: m.gen, writable: true}, nil
}

// OpenFile implements wal.FS.
func (m *FS) OpenFile(name string, writable bool) (wal.File, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.begin(OpOpen, name); err != nil {
		return nil, err
	}
	ino, ok := m.files[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &File{m: m, ino: ino, name: name, gen: m.gen, writable: writable}, nil
}

// ReadDir implements wal.FS.
func (m *FS) ReadDir(dir string) ([]string, error) {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.begin(OpReadDir, dir); err != nil {
		return nil, err
	}
	if !m.dirs[dir] {
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: fs.ErrNotExist}
	}
	var names []string
	for name := range m.files {
		if filepath.Dir(name) == dir {
			names = append(names, filepath.Base(name))
		}
	}
	sort.Strings(names)
	return names, nil
}

// Remove implements wal.FS. Open handles of the file keep working.
func (m *FS) Remove(name string) error {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.begin(OpRemove, name); err != nil {
		return err
	}
	if _, ok := m.files[name]; !ok {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	delete(m.files, name)
	return nil
}

// Rename implements wal.FS.
func (m *FS) Rename(oldname, newname string) error {
	oldname, newname = clean(oldname), clean(newname)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.begin(OpRename, oldname); err != nil {
		return err
	}
	ino, ok := m.files[oldname]
	if !ok {
		return &fs.PathError{Op: "rename", Path: oldname, Err: fs.ErrNotExist}
	}
	if !m.dirs[filepath.Dir(newname)] || m.dirs[newname] {
		return &fs.PathError{Op: "rename", Path: newname, Err: fs.ErrNotExist}
	}
	delete(m.files, oldname)
	m.files[newname] = ino
	return nil
}

// MkdirAll implements wal.FS. Directories are durable at once.
func (m *FS) MkdirAll(dir string) error {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.begin(OpMkdir, dir); err != nil {
		return err
	}
	for d := dir; !m.dirs[d]; d = filepath.Dir(d) {
		if _, ok := m.files[d]; ok {
			return &fs.PathError{Op: "mkdir", Path: d, Err: errors.New("not a directory")}
		}
		m.dirs[d] = true
	}
	return nil
}

// SyncDir implements wal.FS: creations, removals and renames in dir become
// durable.
func (m *FS) SyncDir(dir string) error {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.begin(OpSyncDir, dir); err != nil {
		return err
	}
	if !m.dirs[dir] {
		return &fs.PathError{Op: "syncdir", Path: dir, Err: fs.ErrNotExist}
	}
	for name := range m.durable {
		if filepath.Dir(name) == dir && m.files[name] == nil {
			delete(m.durable, name)
		}
	}
	for name, ino := range m.files {
		if filepath.Dir(name) == dir {
			m.durable[name] = ino
		}
	}
	return nil
}

type lock struct {
	m   *FS
	dir string
	gen uint64
}

// Lock implements wal.FS: one holder per directory until Close or a crash.
func (m *FS) Lock(dir string) (io.Closer, error) {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.begin(OpLock, dir); err != nil {
		return nil, err
	}
	if !m.dirs[dir] {
		return nil, &fs.PathError{Op: "lock", Path: dir, Err: fs.ErrNotExist}
	}
	if m.locks[dir] != nil {
		return nil, fmt.Errorf("%w: %s", wal.ErrLocked, dir)
	}
	l := &lock{m: m, dir: dir, gen: m.gen}
	m.locks[dir] = l
	return l, nil
}

// Close releases the lock (if a crash has not already).
func (l *lock) Close() error {
	l.m.mu.Lock()
	defer l.m.mu.Unlock()
	if l.m.locks[l.dir] != l {
		if l.gen != l.m.gen {
			return ErrCrashed
		}
		return errors.New("memfs: lock already released")
	}
	delete(l.m.locks, l.dir)
	return nil
}

func clean(name string) string { return filepath.Clean(name) }
