package wal_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wal/memfs"
)

const testDir = "/log"

// openMem opens a log in testDir of m, failing the test on error.
func openMem(t testing.TB, m *memfs.FS, segSize int64) *wal.Log {
	t.Helper()
	l, err := wal.Open(wal.Options{Dir: testDir, FS: m, SegmentSize: segSize})
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
