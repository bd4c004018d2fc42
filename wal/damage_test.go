package wal_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"runtime"
	"strings"
	"testing"

	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wal/memfs"
)

// The documented on-disk format (see format.go): a 24-byte segment header,
// then frames of a 20-byte header and the payload.
const (
	segHeader   = 24
	frameHeader = 20
)

// image is a log's files, captured so that each damage case starts afresh.
type image struct {
	files map[string][]byte
	last  string // path of the last segment
	ends  []int  // ends[i]: offset in last just past its i-th record
	first int    // sequence number of the last segment's first record
	n     int    // records in the log
}

// makeImage writes n records with segments of segSize bytes and captures
// the files.
func makeImage(t *testing.T, n int, segSize int64) image {
	t.Helper()
	m := memfs.New()
	l := openMem(t, m, segSize)
	appendN(t, l, 1, n)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	img := image{files: map[string][]byte{}, n: n}
	segs := segments(t, m)
	for _, s := range segs {
		b, err := m.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		img.files[s] = b
	}
	img.last = segs[len(segs)-1]
	fmt.Sscanf(img.last[len(testDir)+1:], "%d", &img.first)
	off := segHeader
	img.ends = []int{off}
	for seq := img.first; seq <= n; seq++ {
		off += frameHeader + len(payload(seq))
		img.ends = append(img.ends, off)
	}
	if off != len(img.files[img.last]) {
		t.Fatalf("format changed: computed end %d, file has %d bytes", off, len(img.files[img.last]))
	}
	if len(img.ends) < 4 {
		t.Fatalf("last segment holds %d records; the test needs at least 3", len(img.ends)-1)
	}
	return img
}

// fs returns a file system holding the image with the last segment replaced
// by last.
func (img image) fs(t *testing.T, last []byte) *memfs.FS {
	t.Helper()
	m := memfs.New()
	if err := m.MkdirAll(testDir); err != nil {
		t.Fatal(err)
	}
	for name, b := range img.files {
		if name == img.last {
			b = last
		}
		if err := m.WriteFile(name, b); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// wholeBefore returns how many records of the log end at or before offset
// cut of the last segment.
func (img image) wholeBefore(cut int) int {
	n := img.first - 1
	for _, e := range img.ends[1:] {
		if e <= cut {
			n++
		}
	}
	return n
}

func (img image) lastBytes() []byte { return append([]byte(nil), img.files[img.last]...) }

// openAndCheck opens m, expects exactly records 1..want, appends one more,
// reopens and expects 1..want+1.
func openAndCheck(t *testing.T, m *memfs.FS, want int, what string) {
	t.Helper()
	l, err := wal.Open(wal.Options{Dir: testDir, FS: m, SegmentSize: 1 << 20})
	if err != nil {
		t.Fatalf("%s: open: %v", what, err)
	}
	checkRecords(t, replayAll(t, l), want)
	if seq, err := l.Append(uint8((want+1)%7), payload(want+1)); err != nil || seq != uint64(want+1) {
		t.Fatalf("%s: append after repair = %d, %v; want %d", what, seq, err, want+1)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	m.Crash()
	l, err = wal.Open(wal.Options{Dir: testDir, FS: m, SegmentSize: 1 << 20})
	if err != nil {
		t.Fatalf("%s: reopen: %v", what, err)
	}
	checkRecords(t, replayAll(t, l), want+1)
	l.Close()
}

func tornCopies(t *testing.T, m *memfs.FS) []string {
	t.Helper()
	names, err := m.ReadDir(testDir)
	if err != nil {
		t.Fatal(err)
	}
	var torn []string
	for _, n := range names {
		if strings.Contains(n, ".torn-") {
			torn = append(torn, n)
		}
	}
	return torn
}

func TestTruncateAtEveryOffset(t *testing.T) {
	img := makeImage(t, 12, 256)
	full := img.lastBytes()
	// Every cut from inside the header of the third-last record to the end.
	start := img.ends[len(img.ends)-4]
	for cut := start; cut <= len(full); cut++ {
		m := img.fs(t, full[:cut])
		want := img.wholeBefore(cut)
		what := fmt.Sprintf("cut at %d", cut)
		// Inspect, which repairs nothing, agrees with what Open will do.
		d, err := wal.Inspect(wal.Options{Dir: testDir, FS: m}, 0, func(wal.Record) error { return nil })
		if err != nil {
			t.Fatalf("%s: inspect: %v", what, err)
		}
		atBoundary := want == img.n || img.ends[want-img.first+1] == cut
		if d.Damaged() == atBoundary || (d.Damaged() && (!d.TornTail || d.Offset != int64(img.ends[want-img.first+1]))) {
			t.Fatalf("%s: inspect reports %v", what, d)
		}
		openAndCheck(t, m, want, what)
		if torn := tornCopies(t, m); len(torn) != 0 == atBoundary {
			t.Fatalf("%s: torn copies %v", what, torn)
		}
	}
}

func TestFlipEveryBit(t *testing.T) {
	img := makeImage(t, 12, 256)
	full := img.lastBytes()
	lastStart := img.ends[len(img.ends)-2]
	start := img.ends[len(img.ends)-4]
	for off := start; off < len(full); off++ {
		for bit := 0; bit < 8; bit++ {
			b := append([]byte(nil), full...)
			b[off] ^= 1 << bit
			m := img.fs(t, b)
			what := fmt.Sprintf("bit %d of byte %d", bit, off)
			if off >= lastStart {
				// The last record is the tail: it is dropped.
				openAndCheck(t, m, img.n-1, what)
				if len(tornCopies(t, m)) != 1 {
					t.Fatalf("%s: no copy of the torn tail kept", what)
				}
				continue
			}
			// An earlier record: refuse, naming the file and the record.
			recStart := 0
			for _, e := range img.ends {
				if e <= off {
					recStart = e
				}
			}
			_, err := wal.Open(wal.Options{Dir: testDir, FS: m})
			wantMsg := fmt.Sprintf("%s at offset %d", img.last, recStart)
			if !errors.Is(err, wal.ErrCorrupt) || !strings.Contains(err.Error(), wantMsg) {
				t.Fatalf("%s: open = %v, want ErrCorrupt naming %q", what, err, wantMsg)
			}
			// Inspect returns only the good records before it, unaltered.
			var got []wal.Record
			d, err := wal.Inspect(wal.Options{Dir: testDir, FS: m}, 0, func(r wal.Record) error {
				got = append(got, r)
				return nil
			})
			if err != nil || d.TornTail || d.Offset != int64(recStart) || d.File != img.last {
				t.Fatalf("%s: inspect = %v, %v", what, d, err)
			}
			checkRecords(t, got, img.wholeBefore(recStart))
		}
	}
}

func TestFlipInOlderSegmentRefusesOpen(t *testing.T) {
	img := makeImage(t, 12, 256)
	m := memfs.New()
	var older []string
	for name := range img.files {
		if name != img.last {
			older = append(older, name)
		}
	}
	seg := older[0]
	b := append([]byte(nil), img.files[seg]...)
	b[len(b)-1] ^= 0x10 // last byte of its last record
	m = img.fs(t, img.lastBytes())
	if err := m.WriteFile(seg, b); err != nil {
		t.Fatal(err)
	}
	_, err := wal.Open(wal.Options{Dir: testDir, FS: m})
	if !errors.Is(err, wal.ErrCorrupt) || !strings.Contains(err.Error(), seg) {
		t.Fatalf("open = %v, want ErrCorrupt naming %s", err, seg)
	}
}

func TestZeroedTail(t *testing.T) {
	img := makeImage(t, 30, 1<<20) // one segment
	full := img.lastBytes()

	// Preallocated space: zeros after the last record are the end of the log.
	m := img.fs(t, append(img.lastBytes(), make([]byte, 8192)...))
	d, err := wal.Inspect(wal.Options{Dir: testDir, FS: m}, 0, func(wal.Record) error { return nil })
	if err != nil || d.Damaged() {
		t.Fatalf("inspect of a preallocated tail: %v, %v", d, err)
	}
	openAndCheck(t, m, img.n, "preallocated")
	if torn := tornCopies(t, m); len(torn) != 0 {
		t.Fatalf("zeros were kept as a torn copy: %v", torn)
	}

	// A zeroed 512-byte chunk at the end: the records before it are the log.
	b := img.lastBytes()
	cut := len(b) - 512
	clear(b[cut:])
	openAndCheck(t, img.fs(t, b), img.wholeBefore(cut), "zeroed last 512 bytes")

	// A zeroed 512-byte chunk with good records after it is corruption.
	b = append([]byte(nil), full...)
	zs := img.ends[3]
	clear(b[zs : zs+512])
	if img.ends[len(img.ends)-2] < zs+512 {
		t.Fatal("log too short for the test")
	}
	_, err = wal.Open(wal.Options{Dir: testDir, FS: img.fs(t, b)})
	if !errors.Is(err, wal.ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("offset %d", zs)) {
		t.Fatalf("open with zeros mid-log = %v, want ErrCorrupt at offset %d", err, zs)
	}
}

func TestTornSegmentHeader(t *testing.T) {
	img := makeImage(t, 12, 256)
	// A crash while rolling can leave the new last segment short or zeroed:
	// it is rewritten, and the log ends with the previous segment.
	for _, last := range [][]byte{nil, img.files[img.last][:10], make([]byte, segHeader), make([]byte, 100)} {
		openAndCheck(t, img.fs(t, last), img.first-1, fmt.Sprintf("last segment of %d bytes", len(last)))
	}
	// A damaged header in a full segment is corruption.
	b := img.lastBytes()
	b[3] ^= 1
	_, err := wal.Open(wal.Options{Dir: testDir, FS: img.fs(t, b)})
	if !errors.Is(err, wal.ErrCorrupt) || !strings.Contains(err.Error(), img.last+" at offset 0") {
		t.Fatalf("open with bad header = %v, want ErrCorrupt at offset 0", err)
	}
}

// frame builds a valid frame for seq with the given length field and body.
func frame(seq uint64, length uint32, body []byte) []byte {
	h := make([]byte, frameHeader)
	binary.LittleEndian.PutUint32(h[4:8], length)
	binary.LittleEndian.PutUint64(h[12:20], seq)
	crc := crc32.Update(0, crc32.MakeTable(crc32.Castagnoli), h[4:])
	crc = crc32.Update(crc, crc32.MakeTable(crc32.Castagnoli), body)
	binary.LittleEndian.PutUint32(h[0:4], crc)
	return append(h, body...)
}

func TestHugeLengthIsNotAllocated(t *testing.T) {
	img := makeImage(t, 12, 256)
	next := uint64(img.n + 1)
	// Sanity: a frame built here is one the log accepts.
	good := append(img.lastBytes(), frame(next, 3, []byte("abc"))...)
	openAndCheckRaw(t, img.fs(t, good), img.n+1)

	const max = 1 << 30
	huge := append(img.lastBytes(), frame(next, max-1, []byte("short"))...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	l, err := wal.Open(wal.Options{Dir: testDir, FS: img.fs(t, huge), MaxRecordSize: max})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("open with a huge length in the tail: %v", err)
	}
	checkRecords(t, replayAll(t, l), img.n)
	l.Close()
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Fatalf("open allocated %d bytes for a frame claiming %d", grew, max-1)
	}

	// Above MaxRecordSize, followed by a good record: corruption, named.
	bad := append(img.lastBytes(), frame(next, 0xFFFFFFFF, nil)...)
	bad = append(bad, frame(next+1, 1, []byte("z"))...)
	_, err = wal.Open(wal.Options{Dir: testDir, FS: img.fs(t, bad)})
	if !errors.Is(err, wal.ErrCorrupt) || !strings.Contains(err.Error(), "above maximum record size") {
		t.Fatalf("open = %v, want ErrCorrupt about the length", err)
	}
}

func openAndCheckRaw(t *testing.T, m *memfs.FS, n int) {
	t.Helper()
	l, err := wal.Open(wal.Options{Dir: testDir, FS: m})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if recs := replayAll(t, l); len(recs) != n || !bytes.Equal(recs[n-1].Payload, []byte("abc")) {
		t.Fatalf("got %d records, want %d ending in abc", len(recs), n)
	}
}

// A power loss during an in-place write can leave a later sector of it on
// disk and an earlier one still zero. In the last segment that is a torn
// tail: the records before the hole are the log, the rest is kept aside.
// The same hole in an older segment, or bytes changed rather than a
// sector zeroed, is corruption.
func TestUnwrittenSectorBeforeValidRecords(t *testing.T) {
	img := makeImage(t, 60, 1<<20) // one segment
	b := img.lastBytes()
	// The first whole sector that starts after record 3 and ends before
	// the last record.
	zs := (img.ends[3] + 511) / 512 * 512
	if img.ends[len(img.ends)-2] < zs+512 {
		t.Fatal("log too short for the test")
	}
	clear(b[zs : zs+512])
	m := img.fs(t, b)
	openAndCheck(t, m, img.wholeBefore(zs), "an unwritten sector before valid records")
	if torn := tornCopies(t, m); len(torn) != 1 {
		t.Fatalf("torn copies %v, want the cut-off records kept aside", torn)
	}

	// Bytes changed instead: corruption, as before.
	b = img.lastBytes()
	for i := zs; i < zs+512; i++ {
		b[i] ^= 0x5a
	}
	if _, err := wal.Open(wal.Options{Dir: testDir, FS: img.fs(t, b)}); !errors.Is(err, wal.ErrCorrupt) {
		t.Fatalf("open with changed bytes before valid records = %v, want ErrCorrupt", err)
	}
}

func TestUnwrittenSectorInOlderSegmentRefusesOpen(t *testing.T) {
	img := makeImage(t, 200, 4096)
	var seg string
	for name := range img.files {
		if name != img.last && (seg == "" || name < seg) {
			seg = name
		}
	}
	b := append([]byte(nil), img.files[seg]...)
	if len(b) < 2048 {
		t.Fatalf("older segment of %d bytes, too short for the test", len(b))
	}
	clear(b[512:1024]) // records follow it in the same segment
	m := img.fs(t, img.lastBytes())
	if err := m.WriteFile(seg, b); err != nil {
		t.Fatal(err)
	}
	_, err := wal.Open(wal.Options{Dir: testDir, FS: m})
	if !errors.Is(err, wal.ErrCorrupt) || !strings.Contains(err.Error(), seg) {
		t.Fatalf("open = %v, want ErrCorrupt naming %s", err, seg)
	}
}
