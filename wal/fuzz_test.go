package wal_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wal/memfs"
)

// A log of n records whose segment is damaged by XORs at fuzzed offsets and
// cut at a fuzzed length: Inspect and Open never panic, and whatever Open
// lets Replay return is exactly a prefix of the records written, never an
// altered record. With n's high bit set, the segment is taken as a process
// killed before Close leaves it: with zeros written ahead of the records.
func FuzzDamagedSegment(f *testing.F) {
	f.Add(uint8(5), []byte{}, uint16(0))
	f.Add(uint8(5), []byte{0, 30, 0xff}, uint16(0))
	f.Add(uint8(9), []byte{0, 60, 1, 0, 61, 1}, uint16(100))
	f.Add(uint8(3), []byte{0, 2, 0x80}, uint16(0))
	f.Add(uint8(20), []byte{}, uint16(400))
	f.Add(uint8(0x80|9), []byte{0, 60, 1, 2, 100, 7}, uint16(0))
	f.Add(uint8(0x80|5), []byte{}, uint16(300))
	f.Fuzz(func(t *testing.T, n uint8, xors []byte, cut uint16) {
		killed := n&0x80 != 0
		n = n%20 + 1
		m := memfs.New()
		l, err := wal.Open(wal.Options{Dir: testDir, FS: m, SegmentSize: 1 << 20, Preallocate: 512})
		if err != nil {
			t.Fatal(err)
		}
		appendN(t, l, 1, int(n))
		seg := segments(t, m)[0]
		b, err := m.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if !killed {
			if b, err = m.ReadFile(seg); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i+2 < len(xors); i += 3 {
			off := int(binary.BigEndian.Uint16(xors[i:])) % len(b)
			b[off] ^= xors[i+2]
		}
		if cut > 0 && int(cut) < len(b) {
			b = b[:cut]
		}
		if err := m.WriteFile(seg, b); err != nil {
			t.Fatal(err)
		}
		check := func(what string, recs []wal.Record) {
			if len(recs) > int(n) {
				t.Fatalf("%s: %d records from a log of %d", what, len(recs), n)
			}
			for i, r := range recs {
				seq := uint64(i + 1)
				if r.Seq != seq || r.Type != uint8(seq%7) || !bytes.Equal(r.Payload, payload(int(seq))) {
					t.Fatalf("%s returned an altered record %d: {seq %d type %d %q}", what, i, r.Seq, r.Type, r.Payload)
				}
			}
		}
		var seen []wal.Record
		if _, err := wal.Inspect(wal.Options{Dir: testDir, FS: m}, 0, func(r wal.Record) error {
			seen = append(seen, r)
			return nil
		}); err == nil {
			check("Inspect", seen)
		}
		l, err = wal.Open(wal.Options{Dir: testDir, FS: m, SegmentSize: 1 << 20})
		if err != nil {
			return // refusing a damaged log is allowed; returning altered data is not
		}
		defer l.Close()
		seen = nil
		if err := l.Replay(0, func(r wal.Record) error {
			seen = append(seen, r)
			return nil
		}); err != nil {
			return
		}
		check("Replay", seen)
	})
}

// Arbitrary bytes as the only segment of a log: Inspect and Open never
// panic, and a log Open accepts replays records in sequence and takes an
// append.
func FuzzArbitrarySegment(f *testing.F) {
	good := memfs.New()
	l, err := wal.Open(wal.Options{Dir: testDir, FS: good, SegmentSize: 1 << 20})
	if err != nil {
		f.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		l.Append(uint8(i), payload(i))
	}
	l.Close()
	names, _ := good.ReadDir(testDir)
	var name string
	for _, nm := range names {
		if len(nm) == 24 && nm[20:] == ".wal" {
			name = nm
			b, _ := good.ReadFile(testDir + "/" + nm)
			f.Add(b)
			f.Add(b[:len(b)/2])
		}
	}
	f.Add([]byte{})
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := memfs.New()
		if err := m.MkdirAll(testDir); err != nil {
			t.Fatal(err)
		}
		if err := m.WriteFile(testDir+"/"+name, data); err != nil {
			t.Fatal(err)
		}
		wal.Inspect(wal.Options{Dir: testDir, FS: m}, 0, func(wal.Record) error { return nil })
		l, err := wal.Open(wal.Options{Dir: testDir, FS: m, SegmentSize: 1 << 20})
		if err != nil {
			return
		}
		defer l.Close()
		next := uint64(0)
		if err := l.Replay(0, func(r wal.Record) error {
			if next != 0 && r.Seq != next {
				t.Fatalf("record %d after %d", r.Seq, next-1)
			}
			next = r.Seq + 1
			return nil
		}); err != nil {
			return
		}
		if _, err := l.Append(1, []byte("after")); err != nil {
			t.Fatalf("append to a log Open accepted: %v", err)
		}
	})
}
