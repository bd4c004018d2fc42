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

// The documented on-disk format (see format.go): a 32-byte segment header,
// then frames of a 20-byte header and the payload; a mark is a frame of 8.
const (
	segHeader   = 32
	frameHeader = 20
	markLen     = frameHeader + 8
)

// image is a log's files, captured so that each damage case starts afresh.
type image struct {
	files map[string][]byte
	last  string // path of the last segment
	ends  []int  // ends[i]: offset in last just past its i-th record
	first int    // sequence number of the last segment's first record
	n     int    // records in the log
	// frames of the last segment: every record follows the mark of its
	// write, and the log ends with the mark Close wrote.
	frames []frameAt
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
	img.frames = layout(img.files[img.last])
	img.ends = []int{segHeader}
	for seq := img.first; seq <= n; seq++ {
		img.ends = append(img.ends, recEnd(img.frames, uint64(seq)))
	}
	if end := frameEnd(img.frames); end != len(img.files[img.last]) || !img.frames[len(img.frames)-1].mark {
		t.Fatalf("format changed: frames end at %d, file has %d bytes", end, len(img.files[img.last]))
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

// frameStartAt returns the start of the frame of the last segment that
// holds offset off, and whether it is the last frame (Close's mark).
func (img image) frameStartAt(off int) (int, bool) {
	for i, f := range img.frames {
		if off >= f.off && off < f.end {
			return f.off, i == len(img.frames)-1
		}
	}
	return -1, false
}

// A cut end of file loses every mark after the cut: nothing says the
// records past it were synced, so it is a torn tail, cut at the last whole
// frame. (A truncation of synced data that takes the later marks with it
// cannot be told from a torn write; see the package doc.)
func TestTruncateAtEveryOffset(t *testing.T) {
	img := makeImage(t, 12, 256)
	full := img.lastBytes()
	// Every cut from inside the header of the third-last record to the end.
	start := img.ends[len(img.ends)-4]
	for cut := start; cut <= len(full); cut++ {
		m := img.fs(t, full[:cut])
		want := img.wholeBefore(cut)
		what := fmt.Sprintf("cut at %d", cut)
		boundary := segHeader
		for _, f := range img.frames {
			if f.end <= cut {
				boundary = f.end
			}
		}
		// Kept bytes of a cut frame that are all zeros (a checksum's low
		// byte is zero one time in 256, and a mark's depends on the
		// segment's random nonce) read as the end of the log, as at a
		// boundary.
		atBoundary := boundary == cut || isZero(full[boundary:cut])
		// Inspect, which repairs nothing, agrees with what Open will do.
		d, err := wal.Inspect(wal.Options{Dir: testDir, FS: m}, 0, func(wal.Record) error { return nil })
		if err != nil {
			t.Fatalf("%s: inspect: %v", what, err)
		}
		if d.Damaged() == atBoundary || (d.Damaged() && (!d.TornTail || d.Offset != int64(boundary))) {
			t.Fatalf("%s: inspect reports %v", what, d)
		}
		openAndCheck(t, m, want, what)
		if torn := tornCopies(t, m); len(torn) != 0 == atBoundary {
			t.Fatalf("%s: torn copies %v", what, torn)
		}
	}
}

// In a closed log every record is followed by a mark saying it was synced:
// a bit flipped in any record or mark refuses to open, naming the file and
// the offset of the damaged frame, except in the last mark, which covers
// nothing that is not also read intact (it is cut as a torn tail and every
// record stays).
func TestFlipEveryBit(t *testing.T) {
	img := makeImage(t, 12, 256)
	full := img.lastBytes()
	start := img.ends[len(img.ends)-4]
	for off := start; off < len(full); off++ {
		for bit := 0; bit < 8; bit++ {
			b := append([]byte(nil), full...)
			b[off] ^= 1 << bit
			m := img.fs(t, b)
			what := fmt.Sprintf("bit %d of byte %d", bit, off)
			frameStart, lastMark := img.frameStartAt(off)
			if lastMark {
				openAndCheck(t, m, img.n, what)
				if len(tornCopies(t, m)) != 1 {
					t.Fatalf("%s: no copy of the torn tail kept", what)
				}
				continue
			}
			_, err := wal.Open(wal.Options{Dir: testDir, FS: m})
			wantMsg := fmt.Sprintf("%s at offset %d", img.last, frameStart)
			if !errors.Is(err, wal.ErrCorrupt) || !strings.Contains(err.Error(), wantMsg) {
				t.Fatalf("%s: open = %v, want ErrCorrupt naming %q", what, err, wantMsg)
			}
			// Inspect returns only the good records before it, unaltered.
			var got []wal.Record
			d, err := wal.Inspect(wal.Options{Dir: testDir, FS: m}, 0, func(r wal.Record) error {
				got = append(got, r)
				return nil
			})
			if err != nil || d.TornTail || d.Offset != int64(frameStart) || d.File != img.last {
				t.Fatalf("%s: inspect = %v, %v", what, d, err)
			}
			checkRecords(t, got, img.wholeBefore(frameStart))
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

	// A zeroed 512-byte chunk at the end, marks and all: nothing says the
	// records in it were synced, and the records before it are the log.
	b := img.lastBytes()
	cut := len(b) - 512
	clear(b[cut:])
	openAndCheck(t, img.fs(t, b), img.wholeBefore(cut), "zeroed last 512 bytes")

	// A zeroed 512-byte chunk with good records and marks after it is
	// corruption: those marks say the zeroed records were synced.
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

// markFrame builds a valid mark of the segment whose header is seg: the
// next record is next, records up to synced were synced.
func markFrame(seg []byte, next, synced uint64) []byte {
	h := make([]byte, markLen)
	binary.LittleEndian.PutUint32(h[4:8], 8)
	h[9] = 1
	binary.LittleEndian.PutUint64(h[12:20], next)
	binary.LittleEndian.PutUint64(h[20:28], synced)
	tab := crc32.MakeTable(crc32.Castagnoli)
	crc := crc32.Update(0, tab, seg[20:28]) // the segment's nonce
	crc = crc32.Update(crc, tab, h[4:])
	binary.LittleEndian.PutUint32(h[0:4], crc)
	return h
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

	// Above the format's maximum, followed by a good record: nothing says
	// the record was synced, a torn tail.
	bad := append(img.lastBytes(), frame(next, 0xFFFFFFFF, nil)...)
	bad = append(bad, frame(next+1, 1, []byte("z"))...)
	m := img.fs(t, bad)
	openAndCheck(t, m, img.n, "length above the maximum, then a record")
	// Followed by a mark saying it was synced: corruption, named.
	bad = append(bad, markFrame(img.files[img.last], next+2, next+1)...)
	_, err = wal.Open(wal.Options{Dir: testDir, FS: img.fs(t, bad)})
	if !errors.Is(err, wal.ErrCorrupt) || !strings.Contains(err.Error(), "above the format's maximum") ||
		!strings.Contains(err.Error(), fmt.Sprintf("%s at offset %d", img.last, len(img.files[img.last]))) {
		t.Fatalf("open = %v, want ErrCorrupt about the length, naming the file and offset", err)
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

// A sector of synced data lost (read as zeros) before valid records and
// marks is corruption, in the last segment as in an older one: the marks
// after it say the records in it were synced.
func TestLostSectorBeforeValidRecords(t *testing.T) {
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
	start, _ := img.frameStartAt(zs)
	_, err := wal.Open(wal.Options{Dir: testDir, FS: m})
	if want := fmt.Sprintf("%s at offset %d", img.last, start); !errors.Is(err, wal.ErrCorrupt) || !strings.Contains(err.Error(), want) {
		t.Fatalf("open with a lost sector = %v, want ErrCorrupt naming %q", err, want)
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
