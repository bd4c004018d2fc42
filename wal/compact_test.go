package wal_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wal/memfs"
)

// segFirsts returns the first sequence number of each segment of m.
func segFirsts(t *testing.T, m *memfs.FS) []uint64 {
	t.Helper()
	var firsts []uint64
	for _, s := range segments(t, m) {
		var n uint64
		fmt.Sscanf(filepath.Base(s), "%d", &n)
		firsts = append(firsts, n)
	}
	return firsts
}

func TestCompactDeletesExactlyWholeSegmentsBefore(t *testing.T) {
	m := memfs.New()
	l := openMem(t, m, 200)
	appendN(t, l, 1, 60)
	firsts := segFirsts(t, m)
	if len(firsts) < 5 {
		t.Fatalf("only %d segments", len(firsts))
	}
	for _, before := range []uint64{0, 1, firsts[1] - 1, firsts[1], firsts[1] + 1, firsts[3], 61, 1000} {
		// Which segments must survive: those holding a record >= before,
		// and always the last.
		var want []uint64
		cur := segFirsts(t, m)
		for i, f := range cur {
			if i == len(cur)-1 || cur[i+1] > before {
				want = append(want, f)
			}
		}
		if err := l.Compact(before); err != nil {
			t.Fatalf("Compact(%d): %v", before, err)
		}
		got := segFirsts(t, m)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("Compact(%d) left segments %v, want %v", before, got, want)
		}
		if l.FirstSeq() != want[0] || l.Stats().Segments != len(want) {
			t.Fatalf("Compact(%d): FirstSeq %d, Segments %d; want %d, %d", before, l.FirstSeq(), l.Stats().Segments, want[0], len(want))
		}
		// Nothing at or after before was lost.
		recs := replayAll(t, l)
		if len(recs) == 0 || recs[0].Seq != want[0] || recs[len(recs)-1].Seq != 60 || recs[0].Seq > max(before, 1) {
			t.Fatalf("Compact(%d): replay gives %d records from %d", before, len(recs), recs[0].Seq)
		}
	}
	// Deletions are durable, and appends go on after compaction.
	kept := segFirsts(t, m)
	appendN(t, l, 61, 70)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	m.Crash()
	if got := segFirsts(t, m); got[0] != kept[0] {
		t.Fatalf("after a crash the first segment is %d, want %d: a deletion was not durable", got[0], kept[0])
	}
	l = openMem(t, m, 200)
	defer l.Close()
	recs := replayAll(t, l)
	if recs[0].Seq != kept[0] || recs[len(recs)-1].Seq != 70 {
		t.Fatalf("reopened compacted log holds %d..%d", recs[0].Seq, recs[len(recs)-1].Seq)
	}
	if st := l.Stats(); st.Segments != len(segFirsts(t, m)) {
		t.Fatalf("Stats.Segments = %d, files %d", st.Segments, len(segFirsts(t, m)))
	}
}

func TestMissingSegment(t *testing.T) {
	m := memfs.New()
	l := openMem(t, m, 200)
	appendN(t, l, 1, 40)
	l.Close()
	segs := segments(t, m)
	if len(segs) < 3 {
		t.Fatalf("only %d segments", len(segs))
	}
	if err := m.Remove(segs[1]); err != nil {
		t.Fatal(err)
	}
	_, err := wal.Open(wal.Options{Dir: testDir, FS: m})
	if !errors.Is(err, wal.ErrMissingSegment) || !strings.Contains(err.Error(), segs[2]) {
		t.Fatalf("open with a missing segment = %v, want ErrMissingSegment naming %s", err, segs[2])
	}
	d, err := wal.Inspect(wal.Options{Dir: testDir, FS: m}, 0, func(wal.Record) error { return nil })
	if err != nil || d.File != segs[2] || !strings.Contains(d.Reason, "missing") {
		t.Fatalf("inspect = %v, %v", d, err)
	}
}

func TestLockMemFS(t *testing.T) {
	m := memfs.New()
	l := openMem(t, m, 0)
	if _, err := wal.Open(wal.Options{Dir: testDir, FS: m}); !errors.Is(err, wal.ErrLocked) {
		t.Fatalf("second open = %v, want ErrLocked", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openMem(t, m, 0)
	l.Close()
}

func TestOSFS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	opts := wal.Options{Dir: dir, SegmentSize: 300}
	l, err := wal.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	// A second Log on the same directory, in the same process, is refused.
	if _, err := wal.Open(opts); !errors.Is(err, wal.ErrLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second open = %v, want ErrLocked naming %s", err, dir)
	}
	appendN(t, l, 1, 40)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Tear the last record of the last segment on the real file system.
	names, _ := wal.OSFS{}.ReadDir(dir)
	last := ""
	for _, n := range names {
		if strings.HasSuffix(n, ".wal") {
			last = filepath.Join(dir, n)
		}
	}
	st, err := os.Stat(last)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(last, st.Size()-markLen-3); err != nil { // into the last record, before Close's mark
		t.Fatal(err)
	}
	l, err = wal.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, replayAll(t, l), 39)
	appendN(t, l, 40, 45)
	l.Close()
	torn, _ := filepath.Glob(last + ".torn-*")
	if len(torn) != 1 {
		t.Fatalf("torn copies %v, want one", torn)
	}
	l, err = wal.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	checkRecords(t, replayAll(t, l), 45)
	if _, err := wal.Open(wal.Options{Dir: "/proc/self/nonexistent/x"}); err == nil {
		t.Fatal("open in an impossible directory succeeded")
	}
}
