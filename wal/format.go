package wal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"strconv"
	"strings"
)

// On-disk format, all integers little-endian.
//
// Segment header (segHeaderSize bytes):
//
//	[0:8]   magic "CONCWAL1"
//	[8:16]  sequence number of the segment's first record
//	[16:20] format version (1)
//	[20:24] CRC32C of bytes [0:20]
//
// Record frame (frameHeaderSize bytes, then the payload):
//
//	[0:4]   CRC32C of bytes [4:20] and the payload
//	[4:8]   payload length
//	[8]     record type
//	[9:12]  zero
//	[12:20] sequence number (never 0)
//
// A frame header of zeros is the end of the log: the active segment holds
// zeros after its last record, written ahead of the records to come
// (Options.Preallocate), up to SegmentSize at most. A sealed segment ends
// with its last record; one that ends in zeros instead (left by a crash,
// say) is read to its last record if the next segment starts with the
// record that follows, and is corruption otherwise.
const (
	segHeaderSize   = 24
	frameHeaderSize = 20
	formatVersion   = 1
	segMagic        = "CONCWAL1"
	segSuffix       = ".wal"
	segDigits       = 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Record is one entry of the log.
type Record struct {
	Seq     uint64 // sequence number, from 1, without gaps
	Type    uint8  // chosen by the caller
	Payload []byte // the caller's bytes
}

// Entry is one record to append with AppendBatch.
type Entry struct {
	Type    uint8
	Payload []byte
}

// appendFrame appends the frame of one record to buf.
func appendFrame(buf []byte, seq uint64, typ uint8, payload []byte) []byte {
	// The header is built in place: a local array would escape to the
	// heap through crc32.Update, one allocation per record.
	start := len(buf)
	buf = append(buf, make([]byte, frameHeaderSize)...)
	h := buf[start:]
	binary.LittleEndian.PutUint32(h[4:8], uint32(len(payload)))
	h[8] = typ
	binary.LittleEndian.PutUint64(h[12:20], seq)
	crc := crc32.Update(0, castagnoli, h[4:])
	crc = crc32.Update(crc, castagnoli, payload)
	binary.LittleEndian.PutUint32(h[0:4], crc)
	return append(buf, payload...)
}

// frameHeader is a decoded frame header.
type frameHeader struct {
	crc    uint32
	length uint32
	typ    uint8
	seq    uint64
}

func decodeFrameHeader(h []byte) (frameHeader, string) {
	fh := frameHeader{
		crc:    binary.LittleEndian.Uint32(h[0:4]),
		length: binary.LittleEndian.Uint32(h[4:8]),
		typ:    h[8],
		seq:    binary.LittleEndian.Uint64(h[12:20]),
	}
	if h[9] != 0 || h[10] != 0 || h[11] != 0 {
		return fh, "reserved header bytes are not zero"
	}
	if fh.seq == 0 {
		return fh, "sequence number 0"
	}
	return fh, ""
}

// frameCRC computes the checksum a frame with header h and payload p must carry.
func frameCRC(h, p []byte) uint32 {
	crc := crc32.Update(0, castagnoli, h[4:frameHeaderSize])
	return crc32.Update(crc, castagnoli, p)
}

func encodeSegHeader(first uint64) []byte {
	h := make([]byte, segHeaderSize)
	copy(h, segMagic)
	binary.LittleEndian.PutUint64(h[8:16], first)
	binary.LittleEndian.PutUint32(h[16:20], formatVersion)
	binary.LittleEndian.PutUint32(h[20:24], crc32.Checksum(h[:20], castagnoli))
	return h
}

// decodeSegHeader returns the first sequence number a segment header holds.
func decodeSegHeader(h []byte) (uint64, error) {
	if len(h) < segHeaderSize {
		return 0, fmt.Errorf("segment header is %d bytes, want %d", len(h), segHeaderSize)
	}
	if string(h[:8]) != segMagic {
		return 0, fmt.Errorf("bad segment magic %q", h[:8])
	}
	if got, want := binary.LittleEndian.Uint32(h[20:24]), crc32.Checksum(h[:20], castagnoli); got != want {
		return 0, fmt.Errorf("segment header checksum %08x, want %08x", got, want)
	}
	if v := binary.LittleEndian.Uint32(h[16:20]); v != formatVersion {
		return 0, fmt.Errorf("segment format version %d, want %d", v, formatVersion)
	}
	return binary.LittleEndian.Uint64(h[8:16]), nil
}

// segmentName is the file name of the segment whose first record is first.
func segmentName(first uint64) string {
	return fmt.Sprintf("%0*d%s", segDigits, first, segSuffix)
}

// parseSegmentName returns the first sequence number a segment file name
// carries, or false if name is not a segment's.
func parseSegmentName(name string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(base) != segDigits {
		return 0, false
	}
	n, err := strconv.ParseUint(base, 10, 64)
	if err != nil || n == 0 {
		return 0, false
	}
	return n, true
}

// segment is one segment file of a log.
type segment struct {
	first uint64 // sequence number of its first record
	path  string
}

// listSegments returns dir's segments in order of their first sequence number.
func listSegments(fsys FS, dir string) ([]segment, error) {
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var segs []segment
	for _, n := range names {
		if first, ok := parseSegmentName(n); ok {
			segs = append(segs, segment{first: first, path: filepath.Join(dir, n)})
		}
	}
	// Names are fixed-width, so ReadDir's sorted order is sequence order.
	return segs, nil
}
