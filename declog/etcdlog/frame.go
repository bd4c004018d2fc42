package etcdlog

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/concordtx/concord/declog"
	"github.com/concordtx/concord/wal"
)

// frameHeaderSize is the wal's record frame header:
//
//	[0:4]   CRC32C of bytes [4:20] and the payload
//	[4:8]   payload length
//	[8]     record type
//	[9:12]  zero
//	[12:20] sequence number (never 0)
const frameHeaderSize = 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendFrame appends the frame of one record to buf, exactly as the wal
// writes it.
func appendFrame(buf []byte, seq uint64, typ uint8, payload []byte) []byte {
	return wal.AppendFrame(buf, seq, typ, payload)
}

// decodeChunk calls fn for each record of chunk, whose first record must be
// first, and returns the sequence number after its last. Payloads are fresh
// slices. Any damage is an error wrapping declog.ErrCorrupt naming key and
// offset.
func decodeChunk(key string, chunk []byte, first uint64, maxRecord int, fn func(wal.Record) error) (uint64, error) {
	seq := first
	for off := 0; off < len(chunk); {
		if len(chunk)-off < frameHeaderSize {
			return 0, fmt.Errorf("%w: chunk %s offset %d: %d bytes, short of a frame header", declog.ErrCorrupt, key, off, len(chunk)-off)
		}
		h := chunk[off : off+frameHeaderSize]
		n := binary.LittleEndian.Uint32(h[4:8])
		if int64(n) > int64(maxRecord) {
			return 0, fmt.Errorf("%w: chunk %s offset %d: %w: length %d, maximum %d", declog.ErrCorrupt, key, off, declog.ErrRecordTooLarge, n, maxRecord)
		}
		if h[9] != 0 || h[10] != 0 || h[11] != 0 {
			return 0, fmt.Errorf("%w: chunk %s offset %d: reserved header bytes not zero", declog.ErrCorrupt, key, off)
		}
		if got := binary.LittleEndian.Uint64(h[12:20]); got != seq {
			return 0, fmt.Errorf("%w: chunk %s offset %d: sequence number %d, want %d", declog.ErrCorrupt, key, off, got, seq)
		}
		end := off + frameHeaderSize + int(n)
		if end > len(chunk) {
			return 0, fmt.Errorf("%w: chunk %s offset %d: payload of %d bytes past the chunk's end", declog.ErrCorrupt, key, off, n)
		}
		crc := crc32.Update(0, castagnoli, h[4:])
		crc = crc32.Update(crc, castagnoli, chunk[off+frameHeaderSize:end])
		if crc != binary.LittleEndian.Uint32(h[0:4]) {
			return 0, fmt.Errorf("%w: chunk %s offset %d: checksum mismatch", declog.ErrCorrupt, key, off)
		}
		if fn != nil {
			p := make([]byte, n)
			copy(p, chunk[off+frameHeaderSize:end])
			if err := fn(wal.Record{Seq: seq, Type: h[8], Payload: p}); err != nil {
				return 0, err
			}
		}
		seq++
		off = end
	}
	if seq == first {
		return 0, fmt.Errorf("%w: chunk %s is empty", declog.ErrCorrupt, key)
	}
	return seq, nil
}
