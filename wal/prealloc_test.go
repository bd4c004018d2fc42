package wal_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wal/memfs"
)

// recordsEnd returns the offset just past records from..to (numbered as
// appendN numbers them, each in a write of its own, after its mark) in a
// segment whose first record is from.
func recordsEnd(from, to int) int {
	off := segHeader
	for i := from; i <= to; i++ {
		off += markLen + frameHeader + len(payload(i))
	}
	return off
}

// firstSegPath is the path of the segment holding record 1 in dir.
func firstSegPath(dir string) string { return filepath.Join(dir, "00000000000000000001.wal") }

func fileSize(t *testing.T, name string) int64 {
	t.Helper()
	st, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestPreallocatedRecordsReplayOSFS checks on the real file system that the
// first flush writes Preallocate bytes of zeros after its record, that the
// records after it go into those zeros without growing the file, and that
// they replay: after Close (which cuts the zeros), and from a copy of the
// directory as a process killed before Close leaves it (zeros and all),
// whose zeros Open keeps for the next records.
func TestPreallocatedRecordsReplayOSFS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	l, err := wal.Open(wal.Options{Dir: dir, IdleMark: -1})
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	appendN(t, l, 1, n)
	seg := firstSegPath(dir)
	end := recordsEnd(1, n)
	size := fileSize(t, seg)
	if want := int64(recordsEnd(1, 1)) + wal.DefaultPreallocate; size != want {
		t.Fatalf("segment is %d bytes with %d of records, want %d: the first record's end and %d bytes of zeros",
			size, end, want, wal.DefaultPreallocate)
	}
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	if len(bytes.TrimRight(b, "\x00")) > end || !bytes.Equal(b[end:], make([]byte, len(b)-end)) {
		t.Fatalf("bytes after the last record (at %d) are not all zeros", end)
	}
	st := l.Stats()
	if st.Bytes != int64(end-segHeader) || st.Preallocated != wal.DefaultPreallocate || st.Writes != n {
		t.Fatalf("stats: %d record bytes, %d preallocated, %d writes; want %d, %d, %d",
			st.Bytes, st.Preallocated, st.Writes, end-segHeader, wal.DefaultPreallocate, n)
	}

	// The directory as a process killed now leaves it.
	killed := filepath.Join(t.TempDir(), "log")
	if err := os.MkdirAll(killed, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(firstSegPath(killed), b, 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := wal.Open(wal.Options{Dir: killed, IdleMark: -1})
	if err != nil {
		t.Fatalf("open after a kill: %v", err)
	}
	checkRecords(t, replayAll(t, k), n)
	if got := fileSize(t, firstSegPath(killed)); got != int64(len(b)) {
		t.Fatalf("after open the segment is %d bytes, want %d: the zeros after the last record kept", got, len(b))
	}
	appendN(t, k, n+1, n+1)
	if got, st := fileSize(t, firstSegPath(killed)), k.Stats(); got != int64(len(b)) || st.Preallocated != 0 {
		t.Fatalf("after an append the segment is %d bytes (%d of zeros written), want %d (none): the record goes into the zeros kept",
			got, st.Preallocated, len(b))
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	// Open's mark (covering the records the killed process synced), the
	// record, Close's mark.
	if got, want := fileSize(t, firstSegPath(killed)), int64(recordsEnd(1, n+1)+2*markLen); got != want {
		t.Fatalf("after Close the segment is %d bytes, want %d", got, want)
	}
	if torn, _ := filepath.Glob(firstSegPath(killed) + ".torn-*"); len(torn) != 0 {
		t.Fatalf("zeros kept as a torn tail: %v", torn)
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fileSize(t, seg); got != int64(end+markLen) {
		t.Fatalf("after Close the segment is %d bytes, want %d: a log closed cleanly ends with its last record and a mark", got, end+markLen)
	}
	for _, d := range []string{dir, killed} {
		l, err := wal.Open(wal.Options{Dir: d, IdleMark: -1})
		if err != nil {
			t.Fatal(err)
		}
		want := n
		if d == killed {
			want = n + 1
		}
		checkRecords(t, replayAll(t, l), want)
		l.Close()
	}
}

// TestPreallocateDisabled checks that with a negative Preallocate every
// write appends to the file, as before preallocation, and nothing else is
// written; zeros an earlier run wrote ahead are cut at Open.
func TestPreallocateDisabled(t *testing.T) {
	m := memfs.New()
	l := openMem(t, m, 0)
	appendN(t, l, 1, 5)
	m.Crash() // leaves the zeros ahead
	l.Close()
	if b, _ := m.ReadFile(segments(t, m)[0]); len(b) == recordsEnd(1, 5) {
		t.Fatal("no zeros ahead of the records")
	}
	l, err := wal.Open(wal.Options{Dir: testDir, FS: m, Preallocate: -1, IdleMark: -1})
	if err != nil {
		t.Fatal(err)
	}
	// The zeros cut, and a mark covering the records synced before.
	if b, _ := m.ReadFile(segments(t, m)[0]); len(b) != recordsEnd(1, 5)+markLen {
		t.Fatalf("after open without preallocation the segment is %d bytes, want %d: the zeros cut", len(b), recordsEnd(1, 5)+markLen)
	}
	if torn := tornCopies(t, m); len(torn) != 0 {
		t.Fatalf("zeros kept as torn tails: %v", torn)
	}
	l.Close()
	m = memfs.New()
	l, err = wal.Open(wal.Options{Dir: testDir, FS: m, Preallocate: -1, IdleMark: -1})
	if err != nil {
		t.Fatal(err)
	}
	writes := m.Count(memfs.OpWrite)
	appendN(t, l, 1, 20)
	if got := m.Count(memfs.OpWrite) - writes; got != 20 {
		t.Fatalf("%d writes for 20 appends, want 20", got)
	}
	b, err := m.ReadFile(segments(t, m)[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != recordsEnd(1, 20) {
		t.Fatalf("segment is %d bytes, want %d: exactly its records", len(b), recordsEnd(1, 20))
	}
	if st := l.Stats(); st.Preallocated != 0 {
		t.Fatalf("Stats.Preallocated = %d, want 0", st.Preallocated)
	}
	l = crashReopen(t, m, l)
	defer l.Close()
	checkRecords(t, replayAll(t, l), 20)
}

// TestCrashInPreallocatedSpace: records written into the zeros ahead and
// not synced are lost in a crash, synced ones are not, and Open appends
// after the last good record.
func TestCrashInPreallocatedSpace(t *testing.T) {
	m := memfs.New()
	l := openMem(t, m, 0)
	appendN(t, l, 1, 10) // all but the first go into zeros
	seg := segments(t, m)[0]
	before, _ := m.ReadFile(seg)
	for i := 11; i <= 13; i++ {
		if _, err := l.AppendAsync(uint8(i%7), payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	checkRecords(t, replayAll(t, l), 13) // written, not synced
	after, _ := m.ReadFile(seg)
	if len(after) != len(before) || !bytes.Contains(after, payload(13)) {
		t.Fatalf("segment went from %d to %d bytes: records were not written into the zeros ahead", len(before), len(after))
	}
	l = crashReopen(t, m, l)
	checkRecords(t, replayAll(t, l), 10)
	// The zeros stay; the unsynced records in them are gone; a mark
	// follows the synced ones.
	if b, _ := m.ReadFile(seg); len(b) != len(before) || !bytes.Equal(b[:recordsEnd(1, 10)], before[:recordsEnd(1, 10)]) ||
		frameEnd(layout(b)) != recordsEnd(1, 10)+markLen {
		t.Fatalf("after open the segment is %d bytes, want the %d synced before the unsynced appends", len(b), len(before))
	}
	appendN(t, l, 11, 11)
	if b, _ := m.ReadFile(seg); len(b) != len(before) || !bytes.Contains(b, payload(11)) {
		t.Fatalf("after an append the segment is %d bytes, want %d: the record goes into the zeros", len(b), len(before))
	}
	l.Close()
	m.Crash()
	l = openMem(t, m, 0)
	defer l.Close()
	checkRecords(t, replayAll(t, l), 11)
	if torn := tornCopies(t, m); len(torn) != 0 {
		t.Fatalf("zeros kept as torn tails: %v", torn)
	}
}

// TestTornRecordInPreallocatedSpace: part of a record written into the
// zeros ahead survived a crash. Open cuts it off and keeps a copy of it,
// without the zeros after it; appends go on after the last whole record.
func TestTornRecordInPreallocatedSpace(t *testing.T) {
	m := memfs.New()
	l := openMem(t, m, 0)
	appendN(t, l, 1, 12)
	seg := segments(t, m)[0]
	full, _ := m.ReadFile(seg) // as a process killed now leaves it
	m.Crash()
	l.Close()
	end10, end11 := recordsEnd(1, 10), recordsEnd(1, 11)
	for _, cut := range []int{end10 + 1, end10 + frameHeader, end11 - 1} {
		what := fmt.Sprintf("record 11 cut at %d of %d bytes", cut-end10, end11-end10)
		torn := append([]byte(nil), full...)
		clear(torn[cut:]) // what was not written reads as the zeros ahead
		m := memfs.New()
		m.MkdirAll(testDir)
		m.WriteFile(seg, torn)
		at := end10 // the write's mark is torn
		if cut >= end10+markLen {
			at = end10 + markLen // the mark whole, the record torn
		}
		d, err := wal.Inspect(wal.Options{Dir: testDir, FS: m}, 0, func(wal.Record) error { return nil })
		if isZero(full[at:cut]) {
			// The bytes that survived are zeros (a checksum's low byte is
			// zero one time in 256, and a mark's depends on the segment's
			// random nonce): that is the end of the log, not a torn tail.
			if err != nil || d.Damaged() {
				t.Fatalf("%s: only zeros survived, inspect = %v, %v; want no damage", what, d, err)
			}
			openAndCheck(t, m, 10, what)
			continue
		}
		if err != nil || !d.TornTail || d.Offset != int64(at) {
			t.Fatalf("%s: inspect = %v, %v; want a torn tail at %d", what, d, err, at)
		}
		openAndCheck(t, m, 10, what)
		copies := tornCopies(t, m)
		if len(copies) != 1 {
			t.Fatalf("%s: torn copies %v, want one", what, copies)
		}
		kept, _ := m.ReadFile(testDir + "/" + copies[0])
		if want := bytes.TrimRight(full[at:cut], "\x00"); !bytes.Equal(kept, want) {
			t.Fatalf("%s: kept %d bytes %q, want the %d written bytes of the record %q", what, len(kept), kept, len(want), want)
		}
	}
}

// TestCrashPartialInPreallocatedSpace: a crash keeping any part of what was
// written into the zeros ahead leaves the synced records and a prefix of
// the others; a torn record is kept aside; appends follow the last record.
func TestCrashPartialInPreallocatedSpace(t *testing.T) {
	tornSeen := 0
	const segSize = 4096 // room for every record, and small zeros ahead
	for seed := range uint64(200) {
		m := memfs.New()
		l := openMem(t, m, segSize)
		appendN(t, l, 1, 10)
		for i := 11; i <= 20; i++ {
			if _, err := l.AppendAsync(uint8(i%7), payload(i)); err != nil {
				t.Fatal(err)
			}
		}
		replayAll(t, l) // every record written
		full, _ := m.ReadFile(segments(t, m)[0])
		m.CrashPartial(rand.New(rand.NewPCG(seed, 3)))
		l.Close()
		l = openMem(t, m, segSize)
		recs := replayAll(t, l)
		n := len(recs)
		if n < 10 || n > 20 {
			t.Fatalf("seed %d: %d records after the crash, want 10 to 20", seed, n)
		}
		checkRecords(t, recs, n)
		if copies := tornCopies(t, m); len(copies) > 0 {
			tornSeen++
			kept, _ := m.ReadFile(testDir + "/" + copies[0])
			start := recEnd(layout(full), uint64(n))
			var off int
			fmt.Sscanf(copies[0][strings.LastIndex(copies[0], "-")+1:], "%d", &off)
			if len(copies) != 1 || len(kept) == 0 || off < start || !bytes.HasPrefix(full[off:], kept) {
				t.Fatalf("seed %d: torn copies %v holding %q, want one holding a prefix of what followed record %d", seed, copies, kept, n)
			}
		}
		appendN(t, l, n+1, n+1)
		l.Close()
		m.Crash()
		l = openMem(t, m, segSize)
		checkRecords(t, replayAll(t, l), n+1)
		l.Close()
	}
	t.Logf("200 seeds, %d with a torn record", tornSeen)
	if tornSeen == 0 {
		t.Fatal("no seed tore a record")
	}
}

// zeroTailImage returns an image of a log of 44 records in segments of 256
// bytes whose sealed segments each end with 4096 zeros, as a crash before
// the sync of the cut at a roll may leave them, and the sealed segments.
func zeroTailImage(t *testing.T) (image, []string) {
	t.Helper()
	img := makeImage(t, 44, 256)
	var sealed []string
	for name, b := range img.files {
		if name != img.last {
			img.files[name] = append(b, make([]byte, 4096)...)
			sealed = append(sealed, name)
		}
	}
	if len(sealed) < 3 {
		t.Fatalf("%d sealed segments, want at least 3", len(sealed))
	}
	return img, sealed
}

// TestSealedSegmentWithZeroTail: sealed segments ending in zeros, each
// followed by the segment starting with the next record, open; every
// record replays (from anywhere); Inspect finds no damage; compaction and
// appends work.
func TestSealedSegmentWithZeroTail(t *testing.T) {
	img, _ := zeroTailImage(t)
	m := img.fs(t, img.lastBytes())
	var seen []wal.Record
	d, err := wal.Inspect(wal.Options{Dir: testDir, FS: m}, 0, func(r wal.Record) error {
		seen = append(seen, r)
		return nil
	})
	if err != nil || d.Damaged() {
		t.Fatalf("inspect: %v, %v", d, err)
	}
	checkRecords(t, seen, img.n)
	l := openMem(t, m, 256)
	checkRecords(t, replayAll(t, l), img.n)
	for _, from := range []uint64{2, 9, 17, 33} {
		var got []uint64
		if err := l.Replay(from, func(r wal.Record) error { got = append(got, r.Seq); return nil }); err != nil {
			t.Fatalf("Replay(%d): %v", from, err)
		}
		if len(got) != img.n-int(from)+1 || got[0] != from {
			t.Fatalf("Replay(%d) gave %d records from %v", from, len(got), got[:1])
		}
	}
	appendN(t, l, img.n+1, img.n+5)
	if err := l.Compact(uint64(img.first)); err != nil {
		t.Fatal(err)
	}
	if got := l.FirstSeq(); got != uint64(img.first) {
		t.Fatalf("FirstSeq after compaction = %d, want %d", got, img.first)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	m.Crash()
	l = openMem(t, m, 256)
	defer l.Close()
	recs := replayAll(t, l)
	if recs[0].Seq != uint64(img.first) || recs[len(recs)-1].Seq != uint64(img.n+5) {
		t.Fatalf("after compaction and a crash the log holds %d..%d", recs[0].Seq, recs[len(recs)-1].Seq)
	}
}

// TestSealedZeroTailNotFollowed: zeros ending a sealed segment are its end
// only if the next segment starts with the next record. If a segment is
// missing after it, or the zeros stand where its last record was, the log
// is refused.
func TestSealedZeroTailNotFollowed(t *testing.T) {
	img, sealed := zeroTailImage(t)
	slices.Sort(sealed)
	check := func(what string, m *memfs.FS, bad string) {
		t.Helper()
		_, err := wal.Open(wal.Options{Dir: testDir, FS: m})
		if !(errors.Is(err, wal.ErrCorrupt) || errors.Is(err, wal.ErrMissingSegment)) || !strings.Contains(err.Error(), bad) {
			t.Fatalf("%s: open = %v, want ErrCorrupt or ErrMissingSegment naming %s", what, err, bad)
		}
		d, err := wal.Inspect(wal.Options{Dir: testDir, FS: m}, 0, func(wal.Record) error { return nil })
		if err != nil || !d.Damaged() || d.TornTail {
			t.Fatalf("%s: inspect = %v, %v; want damage that is not a torn tail", what, d, err)
		}
	}

	// The segment after the first is missing.
	m := img.fs(t, img.lastBytes())
	if err := m.Remove(sealed[1]); err != nil {
		t.Fatal(err)
	}
	m.SyncDir(testDir)
	check("missing segment after a zero tail", m, sealed[0])

	// Zeros over the last record of the first segment: it was durable, and
	// the next segment starts after it.
	m = img.fs(t, img.lastBytes())
	b, _ := m.ReadFile(sealed[0])
	lastStart := segHeader
	for _, f := range layout(b) {
		if !f.mark {
			lastStart = f.off
		}
	}
	clear(b[lastStart:])
	m.WriteFile(sealed[0], b)
	check("zeros over a sealed segment's last record", m, fmt.Sprintf("%s at offset %d", sealed[0], lastStart))
}

// TestSealedAndClosedSegmentsEndWithRecords: while the log is open only its
// last segment holds zeros ahead of its records; sealed segments end with
// their last record (zeros never go past SegmentSize, which the records
// reach before a roll), also after a crash; after Close the last one does
// too.
func TestSealedAndClosedSegmentsEndWithRecords(t *testing.T) {
	m := memfs.New()
	l := openMem(t, m, 2000)
	appendN(t, l, 1, 100)
	endsInZeros := func(name string) bool {
		b, _ := m.ReadFile(name)
		return frameEnd(layout(b)) != len(b)
	}
	segs := segments(t, m)
	if len(segs) < 3 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	for _, s := range segs[:len(segs)-1] {
		if b, _ := m.ReadFile(s); endsInZeros(s) || len(b) > 2000+2*markLen+frameHeader+len(payload(100)) {
			t.Fatalf("sealed segment %s is %d bytes ending in zeros", s, len(b))
		}
	}
	if !endsInZeros(segs[len(segs)-1]) {
		t.Fatal("the active segment holds no zeros ahead of its records")
	}
	m.Crash()
	l.Close()
	for _, s := range segs[:len(segs)-1] {
		if endsInZeros(s) {
			t.Fatalf("after a crash sealed segment %s ends in zeros: the cut at the roll was not synced", s)
		}
	}
	l = openMem(t, m, 2000)
	checkRecords(t, replayAll(t, l), 100)
	appendN(t, l, 101, 101)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs = segments(t, m)
	if last := segs[len(segs)-1]; endsInZeros(last) {
		t.Fatalf("after Close the last segment %s ends in zeros", last)
	}
}
