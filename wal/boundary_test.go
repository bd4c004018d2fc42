package wal_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wal/memfs"
)

// The tests of this file check the promise of the package doc: a record
// that was synced is replayed intact or Open refuses naming the file and
// offset; a record never synced may be lost; nothing else. They use the
// log's API and memfs only, not the format.

// TestUnwrittenSectorHoldingTheSyncedEnd is the power loss of issue 16: the
// sector that holds the end of the last synced record and the start of an
// unsynced batch is not written, a later sector of that batch is. Open
// succeeds and keeps every synced record.
func TestUnwrittenSectorHoldingTheSyncedEnd(t *testing.T) {
	m := memfs.New()
	l := openMem(t, m, 0)
	appendN(t, l, 1, 7)
	seg := segments(t, m)[0]
	synced, _ := m.ReadFile(seg)
	var batch []wal.Entry
	for i := 8; i <= 30; i++ {
		batch = append(batch, wal.Entry{Type: uint8(i % 7), Payload: payload(i)})
	}
	if _, err := l.AppendBatch(batch, false); err != nil {
		t.Fatal(err)
	}
	replayAll(t, l) // written, not synced
	written, _ := m.ReadFile(seg)
	start := 0 // where the unsynced write begins
	for start < len(synced) && synced[start] == written[start] {
		start++
	}
	sec := start / memfs.SectorSize * memfs.SectorSize
	if start%memfs.SectorSize == 0 || start == len(synced) {
		t.Fatalf("the unsynced write starts at %d: the test needs it inside a sector after synced bytes", start)
	}
	later := sec + memfs.SectorSize
	if bytes.Equal(written[later:later+memfs.SectorSize], synced[later:later+memfs.SectorSize]) {
		t.Fatal("the unsynced write does not reach the next sector")
	}
	// What the disk holds: the synced bytes, and the later sector alone.
	disk := append([]byte(nil), synced...)
	copy(disk[later:later+memfs.SectorSize], written[later:])
	m.Crash()
	l.Close()
	if err := m.WriteFile(seg, disk); err != nil {
		t.Fatal(err)
	}
	l2, err := wal.Open(wal.Options{Dir: testDir, FS: m})
	if err != nil {
		t.Fatalf("open after a power loss that left a later sector of an unsynced write: %v", err)
	}
	defer l2.Close()
	checkRecords(t, replayAll(t, l2), 7)
	if torn := tornCopies(t, m); len(torn) != 1 {
		t.Fatalf("torn copies %v, want the cut sector kept aside", torn)
	}
}

// zeroRunPayload is a record payload of mostly zeros: a 512-aligned run of
// zeros lies inside it wherever it is written.
func zeroRunPayload() []byte {
	p := append([]byte("HEAD"), make([]byte, 2048)...)
	return append(p, "TAIL"...)
}

// TestDamagedSyncedRecordRefuses is the other half of issue 16: a bit
// flipped in a synced record's length field, followed by a 512-aligned run
// of zeros, or a sector of synced records lost, must not pass for a torn
// tail: Open refuses, naming the file and the offset.
func TestDamagedSyncedRecordRefuses(t *testing.T) {
	for _, closed := range []bool{true, false} {
		for _, damage := range []string{"length bit", "lost sector"} {
			t.Run(fmt.Sprintf("%s/closed=%v", damage, closed), func(t *testing.T) {
				m := memfs.New()
				l := openMem(t, m, 0)
				appendN(t, l, 1, 3)
				zp := zeroRunPayload()
				if _, err := l.Append(1, zp); err != nil { // record 4
					t.Fatal(err)
				}
				for i := 5; i <= 40; i++ {
					if _, err := l.Append(uint8(i%7), payload(i)); err != nil {
						t.Fatal(err)
					}
				}
				seg := segments(t, m)[0]
				b, _ := m.ReadFile(seg)
				at := bytes.Index(b, []byte("HEAD")) - frameHeader // record 4's frame
				if closed {
					if err := l.Close(); err != nil {
						t.Fatal(err)
					}
				} else {
					m.Crash() // every record synced: a crash loses none
					l.Close()
				}
				switch damage {
				case "length bit":
					if err := m.FlipBit(seg, int64(at+4), 3); err != nil {
						t.Fatal(err)
					}
				case "lost sector":
					// A sector wholly inside records 5.. (after record 4).
					at = bytes.Index(b, []byte("TAIL")) + 4
					sec := (at + memfs.SectorSize - 1) / memfs.SectorSize * memfs.SectorSize
					if err := m.LoseSector(seg, int64(sec)); err != nil {
						t.Fatal(err)
					}
					// The damage starts at the frame the sector cuts into:
					// the last frame that starts before it.
					at = -1
					for _, f := range layout(b) {
						if f.off < sec {
							at = f.off
						}
					}
				}
				_, err := wal.Open(wal.Options{Dir: testDir, FS: m})
				want := fmt.Sprintf("%s at offset %d", seg, at)
				if !errors.Is(err, wal.ErrCorrupt) || !strings.Contains(err.Error(), want) {
					t.Fatalf("open = %v, want ErrCorrupt naming %q", err, want)
				}
				if torn := tornCopies(t, m); len(torn) != 0 {
					t.Fatalf("torn copies %v: the refused log was changed", torn)
				}
			})
		}
	}
}

// TestLowerMaxRecordSizeKeepsRecords: a durable record larger than a
// MaxRecordSize lowered across a restart is read, not taken for damage;
// appends above the new limit are refused.
func TestLowerMaxRecordSizeKeepsRecords(t *testing.T) {
	m := memfs.New()
	l := openMem(t, m, 0)
	appendN(t, l, 1, 3)
	big := bytes.Repeat([]byte("big record "), 1000)
	if _, err := l.Append(4, big); err != nil {
		t.Fatal(err)
	}
	l = crashReopen(t, m, l) // the big record is the last one
	l.Close()
	for range 2 {
		l, err := wal.Open(wal.Options{Dir: testDir, FS: m, MaxRecordSize: 1024})
		if err != nil {
			t.Fatalf("open with a lower MaxRecordSize: %v", err)
		}
		recs := replayAll(t, l)
		if len(recs) != 4 || !bytes.Equal(recs[3].Payload, big) {
			t.Fatalf("got %d records; want 4 ending with the big one", len(recs))
		}
		if _, err := l.Append(1, big); !errors.Is(err, wal.ErrRecordTooLarge) {
			t.Fatalf("append above the limit = %v, want ErrRecordTooLarge", err)
		}
		d, err := wal.Inspect(wal.Options{Dir: testDir, FS: m, MaxRecordSize: 1024}, 0, func(wal.Record) error { return nil })
		if err != nil || d.Damaged() {
			t.Fatalf("inspect with a lower MaxRecordSize: %v, %v", d, err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSyncFailureNoteCutsOnRestart: after a failed fsync, whose pages
// Linux takes as clean though they never reached the disk, a restarted
// process (no power loss in between) must not trust what reads back after
// the last good sync: it cuts it, and what it appends then is durable.
func TestSyncFailureNoteCutsOnRestart(t *testing.T) {
	m := memfs.New()
	l := openMem(t, m, 0)
	appendN(t, l, 1, 5)
	m.FailNth(memfs.OpSync, 1, errors.New("EIO"))
	if _, err := l.Append(6, []byte("never acknowledged")); !errors.Is(err, wal.ErrPoisoned) {
		t.Fatalf("append whose sync fails = %v", err)
	}
	l.Close()
	// The process restarts; the page cache still holds record 6.
	l = openMem(t, m, 0)
	checkRecords(t, replayAll(t, l), 5)
	if names, _ := m.ReadDir(testDir); strings.Contains(strings.Join(names, " "), wal.SyncFailedFile) {
		t.Fatalf("the note is still there after Open: %v", names)
	}
	if torn := tornCopies(t, m); len(torn) != 1 {
		t.Fatalf("torn copies %v, want what was cut kept aside", torn)
	}
	appendN(t, l, 6, 8) // acknowledged
	l = crashReopen(t, m, l)
	defer l.Close()
	checkRecords(t, replayAll(t, l), 8)
}

// TestCompactSyncsEachUnlink: removals in a directory reach the disk in any
// order; a crash during Compact must never leave an older segment with a
// newer one gone (a gap Open refuses with ErrMissingSegment).
func TestCompactSyncsEachUnlink(t *testing.T) {
	for seed := range uint64(64) {
		m := memfs.New()
		l := openMem(t, m, 200)
		appendN(t, l, 1, 40)
		if n := len(segments(t, m)); n < 6 {
			t.Fatalf("%d segments, want at least 6", n)
		}
		// The power fails before the directory sync that ends Compact.
		m.SetFault(func(op memfs.Op, name string) error {
			if op == memfs.OpSyncDir {
				return errors.New("power lost")
			}
			return nil
		})
		segs := segments(t, m)
		var before uint64
		fmt.Sscanf(segs[4][len(testDir)+1:], "%d", &before)
		l.Compact(before) // fails: the sync is lost with the power
		m.SetFault(nil)
		m.CrashSectors(rand.New(rand.NewPCG(seed, 9)), false)
		l.Close()
		l2, err := wal.Open(wal.Options{Dir: testDir, FS: m})
		if err != nil {
			t.Fatalf("seed %d: open after a crash during Compact: %v", seed, err)
		}
		recs := replayAll(t, l2)
		if len(recs) == 0 || recs[len(recs)-1].Seq != 40 || recs[0].Seq > before {
			t.Fatalf("seed %d: %d records after the crash", seed, len(recs))
		}
		l2.Close()
	}
}

// TestVersion1Refused: a segment of format version 1 (before release) is
// refused with ErrVersion naming the version and the file.
func TestVersion1Refused(t *testing.T) {
	h := make([]byte, 24)
	copy(h, "CONCWAL1")
	h[8], h[16] = 1, 1 // first record 1, version 1
	binary.LittleEndian.PutUint32(h[20:24], crc32.Checksum(h[:20], crc32.MakeTable(crc32.Castagnoli)))
	for _, data := range [][]byte{h, append(h, frame(1, 3, []byte("abc"))...)} {
		m := memfs.New()
		m.MkdirAll(testDir)
		seg := testDir + "/00000000000000000001.wal"
		m.WriteFile(seg, data)
		_, err := wal.Open(wal.Options{Dir: testDir, FS: m})
		if !errors.Is(err, wal.ErrVersion) || !strings.Contains(err.Error(), "version 1") || !strings.Contains(err.Error(), seg) {
			t.Fatalf("open of a version 1 segment = %v, want ErrVersion naming version 1 and the file", err)
		}
		if d, err := wal.Inspect(wal.Options{Dir: testDir, FS: m}, 0, func(wal.Record) error { return nil }); err != nil || !d.Damaged() || d.TornTail {
			t.Fatalf("inspect = %v, %v; want damage Open refuses", d, err)
		}
		if b, _ := m.ReadFile(seg); !bytes.Equal(b, data) {
			t.Fatal("the version 1 segment was changed")
		}
	}
}

// TestSalvage: Salvage copies a refused log up to its damage, never
// changing it, and a log with a sync-failure note up to the note's point;
// the copies open with the records kept and their sequence numbers.
func TestSalvage(t *testing.T) {
	img := makeImage(t, 40, 512)
	b := img.lastBytes()
	at := img.ends[2] // record 3 of the last segment's frames follow a mark
	b[at+markLen+frameHeader] ^= 0x40
	m := img.fs(t, b)
	if _, err := wal.Open(wal.Options{Dir: testDir, FS: m}); !errors.Is(err, wal.ErrCorrupt) {
		t.Fatalf("open = %v, want ErrCorrupt", err)
	}
	rep, err := wal.Salvage(wal.Options{Dir: testDir, FS: m}, "/out")
	if err != nil {
		t.Fatal(err)
	}
	kept := img.first + 1 // records before the damaged one
	if rep.Copied != kept || rep.First != 1 || rep.Last != uint64(kept) || rep.LostFrom != uint64(kept+1) ||
		rep.LostReadable != img.n-kept-1 || rep.LostLast != uint64(img.n) {
		t.Fatalf("report %+v; want %d copied, lost from %d, %d readable up to %d", rep, kept, kept+1, img.n-kept-1, img.n)
	}
	if after, _ := m.ReadFile(img.last); !bytes.Equal(after, b) {
		t.Fatal("salvage changed the original")
	}
	l, err := wal.Open(wal.Options{Dir: "/out", FS: m})
	if err != nil {
		t.Fatalf("open of the copy: %v", err)
	}
	checkRecords(t, replayAll(t, l), kept)
	l.Close()
	if _, err := wal.Salvage(wal.Options{Dir: testDir, FS: m}, "/out"); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("salvage into a non-empty directory = %v", err)
	}

	// A sync-failure note: the copy stops where the last good sync ended.
	m = memfs.New()
	l = openMem(t, m, 0)
	appendN(t, l, 1, 5)
	m.FailNth(memfs.OpSync, 1, errors.New("EIO"))
	l.Append(6, payload(6))
	l.Close()
	rep, err = wal.Salvage(wal.Options{Dir: testDir, FS: m}, "/out")
	if err != nil || rep.Copied != 5 || rep.LostFrom != 6 {
		t.Fatalf("salvage with a note = %+v, %v; want 5 records copied, lost from 6", rep, err)
	}
	l = openMem(t, m, 0)
	checkRecords(t, replayAll(t, l), 5)
	l.Close()
}
