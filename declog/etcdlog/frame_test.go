package etcdlog

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/concordtx/concord/wal"
)

// TestFrameFormatIsTheWALs: the frames of a chunk are byte for byte those
// the wal writes to its segments.
func TestFrameFormatIsTheWALs(t *testing.T) {
	dir := t.TempDir()
	l, err := wal.Open(wal.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	for seq := uint64(1); seq <= 5; seq++ {
		p := bytes.Repeat([]byte{byte(seq)}, int(seq*7))
		if _, err := l.Append(uint8(seq+10), p); err != nil {
			t.Fatal(err)
		}
		want = appendFrame(want, seq, uint8(seq+10), p)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil || len(segs) != 1 {
		t.Fatalf("segments %v, %v", segs, err)
	}
	data, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	// Format version 2: a 32-byte segment header, and the log's own marks
	// (frames with a non-zero flag byte 9, never records) between the
	// records; the record frames are what a chunk holds.
	const segHeader = 32
	var records []byte
	for off := segHeader; off+20 <= len(data); {
		h := data[off : off+20]
		n := 20 + int(binary.LittleEndian.Uint32(h[4:8]))
		if off+n > len(data) {
			t.Fatalf("frame at %d runs past the segment's end", off)
		}
		if h[9] == 0 {
			records = append(records, data[off:off+n]...)
		}
		off += n
	}
	if !bytes.Equal(records, want) {
		t.Fatalf("wal segment records differ from etcdlog frames:\n wal %x\nours %x", records, want)
	}
	var n int
	next, err := decodeChunk("k", records, 1, 1<<20, func(r wal.Record) error {
		n++
		return nil
	})
	if err != nil || next != 6 || n != 5 {
		t.Fatalf("decode of the wal's records: next %d, %d records, %v", next, n, err)
	}
}

// TestDecodeChunkDamage: any changed byte of a chunk is refused.
func TestDecodeChunkDamage(t *testing.T) {
	var chunk []byte
	for seq := uint64(7); seq < 10; seq++ {
		chunk = appendFrame(chunk, seq, 1, []byte("payload"))
	}
	if _, err := decodeChunk("k", chunk, 7, 1<<20, nil); err != nil {
		t.Fatal(err)
	}
	for i := range chunk {
		bad := bytes.Clone(chunk)
		bad[i] ^= 0x40
		if _, err := decodeChunk("k", bad, 7, 1<<20, nil); err == nil {
			t.Fatalf("byte %d changed: chunk accepted", i)
		}
	}
	if _, err := decodeChunk("k", chunk[:len(chunk)-1], 7, 1<<20, nil); err == nil {
		t.Fatal("truncated chunk accepted")
	}
	if _, err := decodeChunk("k", chunk, 8, 1<<20, nil); err == nil {
		t.Fatal("chunk under the wrong key accepted")
	}
}
