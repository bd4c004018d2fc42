package wal_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wal/memfs"
)

// TestIdleMarkCoversTheLastSync: once appends stop, the log writes a mark
// alone after Options.IdleMark, and from then damage to the last synced
// record refuses to open. Before it (the residual window the package doc
// states), the same damage cannot be told from a torn write: it is cut,
// kept aside.
func TestIdleMarkCoversTheLastSync(t *testing.T) {
	for _, wait := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			m := memfs.New()
			l, err := wal.Open(wal.Options{Dir: testDir, FS: m, IdleMark: 10 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			appendN(t, l, 1, 5)
			synctest.Wait()
			seg := segments(t, m)[0]
			lastMark := func() frameAt {
				b, _ := m.ReadFile(seg)
				fr := layout(b)
				return fr[len(fr)-1]
			}
			if f := lastMark(); !(!f.mark && f.seq == 5) {
				t.Fatalf("last frame before the idle delay = %+v, want record 5", f)
			}
			writes := m.Count(memfs.OpWrite)
			if wait {
				time.Sleep(10 * time.Millisecond)
				synctest.Wait()
				if f := lastMark(); !f.mark || f.synced != 5 {
					t.Fatalf("last frame after the idle delay = %+v, want a mark of 5", f)
				}
				if got := m.Count(memfs.OpWrite) - writes; got != 1 {
					t.Fatalf("%d writes for the idle mark, want 1", got)
				}
				time.Sleep(time.Second) // nothing more to cover: no more writes
				synctest.Wait()
				if got := m.Count(memfs.OpWrite) - writes; got != 1 {
					t.Fatalf("%d writes after a second idle, want 1", got)
				}
			}
			b, _ := m.ReadFile(seg)
			rec5 := recEnd(layout(b), 5) - 1 // the last byte of record 5
			m.Crash()
			l.Close()
			m.FlipBit(seg, int64(rec5), 0)
			l, err = wal.Open(wal.Options{Dir: testDir, FS: m, IdleMark: -1})
			if wait {
				if !errors.Is(err, wal.ErrCorrupt) || !strings.Contains(err.Error(), seg) {
					t.Fatalf("open = %v, want ErrCorrupt naming %s", err, seg)
				}
				return
			}
			if err != nil {
				t.Fatalf("open in the residual window = %v, want the damage cut as a torn tail", err)
			}
			defer l.Close()
			checkRecords(t, replayAll(t, l), 4)
			if len(tornCopies(t, m)) != 1 {
				t.Fatal("the cut record was not kept aside")
			}
		})
	}
}

// TestOSFSModesAndParentSync: segment files, torn copies and the lock are
// 0600, directories 0700, and MkdirAll syncs the parent of every
// directory it creates.
func TestOSFSModesAndParentSync(t *testing.T) {
	root := t.TempDir()
	var synced []string
	restore := wal.SetOSSyncDir(func(dir string) error {
		synced = append(synced, dir)
		return wal.OSFS{}.SyncDir(dir)
	})
	defer restore()
	dir := filepath.Join(root, "a", "b", "log")
	l, err := wal.Open(wal.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{root, filepath.Join(root, "a"), filepath.Join(root, "a", "b")}
	if !slices.Equal(synced, want) {
		t.Fatalf("MkdirAll synced %v, want %v", synced, want)
	}
	appendN(t, l, 1, 3)
	l.Close()
	seg := filepath.Join(dir, "00000000000000000001.wal")
	st, _ := os.Stat(seg)
	os.Truncate(seg, st.Size()-markLen-1) // a torn tail, kept aside at Open
	l, err = wal.Open(wal.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	for _, d := range []string{filepath.Join(root, "a"), filepath.Join(root, "a", "b"), dir} {
		if st, err := os.Stat(d); err != nil || st.Mode().Perm() != 0o700 {
			t.Fatalf("%s: mode %v, %v; want 0700", d, st.Mode().Perm(), err)
		}
	}
	names, _ := os.ReadDir(dir)
	if len(names) < 3 {
		t.Fatalf("files %v, want a segment, a torn copy and the lock", names)
	}
	for _, n := range names {
		if st, err := os.Stat(filepath.Join(dir, n.Name())); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v, %v; want 0600", n.Name(), st.Mode().Perm(), err)
		}
	}
}
