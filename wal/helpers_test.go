package wal_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wal/memfs"
)

const testDir = "/log"

// TestMain keeps the warnings of Open (torn tails cut, by the hundred in
// these tests) out of the test output; tests that check them pass their
// own Logger.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}

// openMem opens a log in testDir of m, failing the test on error. Idle
// marks are off, so that what is written does not depend on timing.
func openMem(t testing.TB, m *memfs.FS, segSize int64) *wal.Log {
	t.Helper()
	l, err := wal.Open(wal.Options{Dir: testDir, FS: m, SegmentSize: segSize, IdleMark: -1})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return l
}

// crashReopen crashes m with l still open, as a power loss would, closes
// l (which fails: its files are gone with the crash) and opens the log
// again with the default segment size.
func crashReopen(t testing.TB, m *memfs.FS, l *wal.Log) *wal.Log {
	t.Helper()
	m.Crash()
	l.Close()
	return openMem(t, m, 0)
}

// replayAll returns every record of l.
func replayAll(t testing.TB, l *wal.Log) []wal.Record {
	t.Helper()
	var recs []wal.Record
	if err := l.Replay(0, func(r wal.Record) error {
		recs = append(recs, r)
		return nil
	}); err != nil {
		t.Fatalf("replay: %v", err)
	}
	return recs
}

// payload returns the deterministic payload of record i.
func payload(i int) []byte {
	return []byte(fmt.Sprintf("record-%d-%s", i, bytes.Repeat([]byte{'x'}, i%37)))
}

// checkRecords fails unless recs are exactly the records 1..n with
// payload(seq) and type seq%7.
func checkRecords(t testing.TB, recs []wal.Record, n int) {
	t.Helper()
	if len(recs) != n {
		t.Fatalf("got %d records, want %d", len(recs), n)
	}
	for i, r := range recs {
		seq := uint64(i + 1)
		if r.Seq != seq || r.Type != uint8(seq%7) || !bytes.Equal(r.Payload, payload(int(seq))) {
			t.Fatalf("record %d = {seq %d type %d %q}, want {seq %d type %d %q}",
				i, r.Seq, r.Type, r.Payload, seq, seq%7, payload(int(seq)))
		}
	}
}

// appendN appends records 1..n (as numbered by the log, which must be empty)
// with Append.
func appendN(t testing.TB, l *wal.Log, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		seq, err := l.Append(uint8(i%7), payload(i))
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if seq != uint64(i) {
			t.Fatalf("append %d got seq %d", i, seq)
		}
	}
}

// segments returns the segment file names in testDir of m.
func segments(t testing.TB, m *memfs.FS) []string {
	t.Helper()
	names, err := m.ReadDir(testDir)
	if err != nil {
		t.Fatal(err)
	}
	var segs []string
	for _, n := range names {
		if len(n) == 24 && n[20:] == ".wal" {
			segs = append(segs, testDir+"/"+n)
		}
	}
	return segs
}

// frameAt is one frame of a segment, as the documented format (format.go)
// lays it out.
type frameAt struct {
	off, end int
	seq      uint64
	mark     bool
	synced   uint64 // a mark's payload
}

// layout parses the frames of segment b from its header to the first zero
// frame header, bad length or the end, without checking checksums.
func layout(b []byte) []frameAt {
	var fr []frameAt
	for off := segHeader; off+frameHeader <= len(b); {
		h := b[off : off+frameHeader]
		n := int(binary.LittleEndian.Uint32(h[4:8]))
		seq := binary.LittleEndian.Uint64(h[12:20])
		if seq == 0 || off+frameHeader+n > len(b) {
			break
		}
		f := frameAt{off: off, end: off + frameHeader + n, seq: seq, mark: h[9] == 1}
		if f.mark && n != 8 {
			break // not a mark (a mark's payload is 8 bytes): bytes a crash left
		}
		if f.mark {
			f.synced = binary.LittleEndian.Uint64(b[off+frameHeader : f.end])
		}
		fr = append(fr, f)
		off = f.end
	}
	return fr
}

// recEnd returns the offset just past record seq in frames fr, or -1.
func recEnd(fr []frameAt, seq uint64) int {
	for _, f := range fr {
		if !f.mark && f.seq == seq {
			return f.end
		}
	}
	return -1
}

// frameEnd returns the end of the last frame of fr (segHeader if none).
func frameEnd(fr []frameAt) int {
	if len(fr) == 0 {
		return segHeader
	}
	return fr[len(fr)-1].end
}

// isZero reports whether b holds only zero bytes.
func isZero(b []byte) bool { return len(bytes.TrimLeft(b, "\x00")) == 0 }
