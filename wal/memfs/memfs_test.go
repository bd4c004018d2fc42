package memfs_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wal/memfs"
)

func mustCreate(t *testing.T, m *memfs.FS, name string, data string) wal.File {
	t.Helper()
	f, err := m.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	return f
}

func content(t *testing.T, m *memfs.FS, name string) (string, bool) {
	t.Helper()
	b, err := m.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

func TestCrashForgetsUnsynced(t *testing.T) {
	m := memfs.New()
	if err := m.MkdirAll("/d"); err != nil {
		t.Fatal(err)
	}
	// Synced content, synced directory entry: survives.
	a := mustCreate(t, m, "/d/a", "hello")
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := m.SyncDir("/d"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte(" world")); err != nil { // not synced
		t.Fatal(err)
	}
	// Synced content, directory not synced: the file is lost.
	b := mustCreate(t, m, "/d/b", "bee")
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	if got, _ := content(t, m, "/d/a"); got != "hello world" {
		t.Fatalf("before crash a = %q", got)
	}
	m.Crash()
	if got, ok := content(t, m, "/d/a"); !ok || got != "hello" {
		t.Fatalf("after crash a = %q, %v; want the synced %q", got, ok, "hello")
	}
	if _, ok := content(t, m, "/d/b"); ok {
		t.Fatal("b survived a crash without SyncDir")
	}
	// Old handles are dead.
	if _, err := a.Write([]byte("x")); !errors.Is(err, memfs.ErrCrashed) {
		t.Fatalf("write on a handle from before the crash = %v", err)
	}
}

func TestRemoveRenameNeedSyncDir(t *testing.T) {
	m := memfs.New()
	m.MkdirAll("/d")
	f := mustCreate(t, m, "/d/old", "x")
	f.Sync()
	m.SyncDir("/d")
	if err := m.Rename("/d/old", "/d/new"); err != nil {
		t.Fatal(err)
	}
	m.Crash()
	if _, ok := content(t, m, "/d/old"); !ok {
		t.Fatal("rename without SyncDir survived a crash")
	}
	m.Rename("/d/old", "/d/new")
	m.SyncDir("/d")
	m.Crash()
	if _, ok := content(t, m, "/d/new"); !ok {
		t.Fatal("synced rename lost")
	}
	if _, ok := content(t, m, "/d/old"); ok {
		t.Fatal("old name back after synced rename")
	}
	m.Remove("/d/new")
	m.Crash()
	if _, ok := content(t, m, "/d/new"); !ok {
		t.Fatal("remove without SyncDir survived a crash")
	}
	m.Remove("/d/new")
	m.SyncDir("/d")
	m.Crash()
	if names, _ := m.ReadDir("/d"); len(names) != 0 {
		t.Fatalf("synced remove undone: %v", names)
	}
}

func TestTruncateThenCrash(t *testing.T) {
	m := memfs.New()
	m.MkdirAll("/d")
	f := mustCreate(t, m, "/d/f", "0123456789")
	f.Sync()
	m.SyncDir("/d")
	f.Truncate(4)
	f.Write([]byte("xy"))
	m.Crash()
	if got, _ := content(t, m, "/d/f"); got != "0123456789" {
		t.Fatalf("unsynced truncate survived: %q", got)
	}
	g, _ := m.OpenFile("/d/f", true)
	g.Truncate(4)
	g.Write([]byte("xy"))
	g.Sync()
	m.Crash()
	if got, _ := content(t, m, "/d/f"); got != "0123xy" {
		t.Fatalf("synced truncate+write = %q", got)
	}
}

func TestCrashPartialKeepsAPrefix(t *testing.T) {
	sawPart := false
	for seed := range uint64(50) {
		m := memfs.New()
		m.MkdirAll("/d")
		f := mustCreate(t, m, "/d/f", "synced.")
		f.Sync()
		m.SyncDir("/d")
		f.Write([]byte("pending-bytes"))
		m.CrashPartial(rand.New(rand.NewPCG(seed, 1)))
		got, _ := content(t, m, "/d/f")
		full := "synced.pending-bytes"
		if len(got) < len("synced.") || got != full[:len(got)] {
			t.Fatalf("seed %d: %q is not a prefix of %q holding the synced part", seed, got, full)
		}
		if len(got) > len("synced.") && len(got) < len(full) {
			sawPart = true
		}
	}
	if !sawPart {
		t.Fatal("CrashPartial never kept part of the pending bytes")
	}
}

func TestFaults(t *testing.T) {
	m := memfs.New()
	m.MkdirAll("/d")
	f := mustCreate(t, m, "/d/f", "a")
	boom := errors.New("boom")
	m.FailNth(memfs.OpSync, 2, boom)
	if err := f.Sync(); err != nil {
		t.Fatalf("first sync: %v", err)
	}
	if err := f.Sync(); !errors.Is(err, boom) {
		t.Fatalf("second sync = %v, want boom", err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("third sync: %v (a fault fails once)", err)
	}
	m.FailNth(memfs.OpWrite, 1, boom)
	if _, err := f.Write([]byte("zzz")); !errors.Is(err, boom) {
		t.Fatalf("write = %v, want boom", err)
	}
	if got, _ := content(t, m, "/d/f"); got != "a" {
		t.Fatalf("failed write changed the file: %q", got)
	}
	m.SetFault(func(op memfs.Op, name string) error {
		if op == memfs.OpCreate && name == "/d/no" {
			return boom
		}
		return nil
	})
	if _, err := m.Create("/d/no"); !errors.Is(err, boom) {
		t.Fatalf("create = %v, want boom", err)
	}
	if _, err := m.Create("/d/yes"); err != nil {
		t.Fatal(err)
	}
	if n := m.Count(memfs.OpSync); n != 3 {
		t.Fatalf("Count(sync) = %d, want 3", n)
	}
}

func TestErrors(t *testing.T) {
	m := memfs.New()
	if _, err := m.Create("/nodir/f"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("create in missing dir = %v", err)
	}
	if _, err := m.OpenFile("/f", false); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("open missing = %v", err)
	}
	if _, err := m.ReadDir("/nodir"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("readdir missing = %v", err)
	}
	mustCreate(t, m, "/f", "x")
	if _, err := m.Create("/f"); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("create existing = %v", err)
	}
	r, _ := m.OpenFile("/f", false)
	if _, err := r.Write([]byte("y")); err == nil {
		t.Fatal("write on a read-only handle succeeded")
	}
	buf := make([]byte, 4)
	if n, err := r.ReadAt(buf, 0); n != 1 || err != io.EOF {
		t.Fatalf("short ReadAt = %d, %v", n, err)
	}
	r.Close()
	if _, err := r.ReadAt(buf, 0); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("read after close = %v", err)
	}
}

func TestLock(t *testing.T) {
	m := memfs.New()
	m.MkdirAll("/d")
	l1, err := m.Lock("/d")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Lock("/d"); !errors.Is(err, wal.ErrLocked) {
		t.Fatalf("second lock = %v", err)
	}
	m.Crash() // a crash releases it
	l2, err := m.Lock("/d")
	if err != nil {
		t.Fatal(err)
	}
	if err := l1.Close(); !errors.Is(err, memfs.ErrCrashed) {
		t.Fatalf("closing a lock from before the crash = %v", err)
	}
	if _, err := m.Lock("/d"); !errors.Is(err, wal.ErrLocked) {
		t.Fatal("an old lock's Close released the new holder")
	}
	l2.Close()
	if _, err := m.Lock("/d"); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentUse(t *testing.T) {
	m := memfs.New()
	m.MkdirAll("/d")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := "/d/f" + string(rune('a'+g))
			f, err := m.Create(name)
			if err != nil {
				t.Error(err)
				return
			}
			for range 100 {
				f.Write([]byte{byte(g)})
				f.Sync()
				m.SyncDir("/d")
				m.ReadDir("/d")
			}
		}()
	}
	wg.Wait()
	m.Crash()
	names, _ := m.ReadDir("/d")
	if len(names) != 8 {
		t.Fatalf("%d files after crash, want 8", len(names))
	}
	for _, n := range names {
		b, _ := m.ReadFile("/d/" + n)
		if len(b) != 100 || !bytes.Equal(b, bytes.Repeat(b[:1], 100)) {
			t.Fatalf("%s holds %d bytes", n, len(b))
		}
	}
}

func TestWriteAtThenCrash(t *testing.T) {
	m := memfs.New()
	m.MkdirAll("/d")
	f := mustCreate(t, m, "/d/f", "head")
	if _, err := f.WriteAt(make([]byte, 12), 4); err != nil { // zeros ahead, as the wal writes them
		t.Fatal(err)
	}
	f.Sync()
	m.SyncDir("/d")
	synced := "head" + strings.Repeat("\x00", 12)
	// Unsynced writes over synced zeros, and past the end, are undone.
	if _, err := f.WriteAt([]byte("abc"), 4); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("xy"), 20); err != nil {
		t.Fatal(err)
	}
	want := "headabc" + strings.Repeat("\x00", 13) + "xy"
	if got, _ := content(t, m, "/d/f"); got != want {
		t.Fatalf("before crash = %q, want %q (a gap reads as zeros)", got, want)
	}
	m.Crash()
	if got, _ := content(t, m, "/d/f"); got != synced {
		t.Fatalf("after crash = %q, want the synced %q", got, synced)
	}
	// Synced, they stay.
	g, _ := m.OpenFile("/d/f", true)
	g.WriteAt([]byte("abc"), 4)
	g.Sync()
	g.WriteAt([]byte("def"), 7) // not synced
	m.Crash()
	if got, want := func() string { s, _ := content(t, m, "/d/f"); return s }(), "headabc"+strings.Repeat("\x00", 9); got != want {
		t.Fatalf("after synced write and crash = %q, want %q", got, want)
	}
	// Bad calls.
	g, _ = m.OpenFile("/d/f", true)
	if _, err := g.WriteAt([]byte("x"), -1); err == nil {
		t.Fatal("write at a negative offset succeeded")
	}
	r, _ := m.OpenFile("/d/f", false)
	if _, err := r.WriteAt([]byte("x"), 0); err == nil {
		t.Fatal("WriteAt on a read-only handle succeeded")
	}
}

func TestCrashPartialWriteAtKeepsAPrefix(t *testing.T) {
	// Writes into synced zeros: what survives is the new content up to some
	// offset at or after the first byte written, and the synced content
	// (zeros) after it; the file keeps its synced size.
	const synced = "synced." + "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	sawPart := false
	for seed := range uint64(50) {
		m := memfs.New()
		m.MkdirAll("/d")
		f := mustCreate(t, m, "/d/f", synced)
		f.Sync()
		m.SyncDir("/d")
		f.WriteAt([]byte("pending-"), 7)
		f.WriteAt([]byte("bytes"), 15)
		full := "synced.pending-bytes\x00\x00\x00"
		m.CrashPartial(rand.New(rand.NewPCG(seed, 1)))
		got, _ := content(t, m, "/d/f")
		cut := 0
		for cut < len(got) && got[cut] == full[cut] {
			cut++
		}
		if len(got) != len(synced) || cut < len("synced.") || got[cut:] != synced[cut:] {
			t.Fatalf("seed %d: %q is not %q up to an offset past the synced part and %q after it", seed, got, full, synced)
		}
		if got != synced && got != full {
			sawPart = true
		}
	}
	if !sawPart {
		t.Fatal("CrashPartial never kept part of the pending bytes")
	}
}

func TestCrashPartialTearsASmallWriteInALargeFile(t *testing.T) {
	// What may survive is bounded by what was written since the Sync, not
	// by the file's size: a small write at the start of a large file of
	// synced zeros is torn in many seeds, not almost never.
	torn := 0
	for seed := range uint64(50) {
		m := memfs.New()
		m.MkdirAll("/d")
		f := mustCreate(t, m, "/d/f", "")
		f.WriteAt(make([]byte, 1<<20), 0)
		f.Sync()
		m.SyncDir("/d")
		f.WriteAt(bytes.Repeat([]byte{'w'}, 100), 0)
		m.CrashPartial(rand.New(rand.NewPCG(seed, 1)))
		b, _ := m.ReadFile("/d/f")
		w := len(b) - len(bytes.TrimLeft(b, "w"))
		if len(b) != 1<<20 || w > 100 || !bytes.Equal(b[w:], make([]byte, len(b)-w)) {
			t.Fatalf("seed %d: %d bytes, not a prefix of the write and zeros", seed, len(b))
		}
		if w > 0 && w < 100 {
			torn++
		}
	}
	if torn < 10 {
		t.Fatalf("a 100-byte write was torn in %d of 50 seeds", torn)
	}
}
