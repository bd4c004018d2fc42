package wal

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"strconv"
	"strings"
)

// On-disk format, version 2, all integers little-endian.
//
// Segment header (segHeaderSize bytes):
//
//	[0:8]   magic "CONCWAL1"
//	[8:16]  sequence number of the segment's first record
//	[16:20] format version (2)
//	[20:28] nonce: random, chosen when the segment is created
//	[28:32] CRC32C of bytes [0:28]
//
// Record frame (frameHeaderSize bytes, then the payload):
//
//	[0:4]   CRC32C of bytes [4:20] and the payload
//	[4:8]   payload length
//	[8]     record type
//	[9]     0 (a record) or frameMark (a mark)
//	[10:12] zero
//	[12:20] sequence number (never 0)
//
// Every write of records to a segment begins with a mark: a frame with
// byte [9] = frameMark, type 0, length 8, the sequence number of the record
// that follows it, and as payload the sequence number S up to which every
// record was durable (its fdatasync had returned) when the write was
// issued. Its CRC32C covers the segment's nonce, bytes [4:20] and the
// payload, so that bytes inside a record's payload cannot pass for a mark.
// A mark consumes no sequence number and is never returned as a record.
// Writes are serialized, so a mark on disk is a true statement whatever
// else a crash lost: records up to S were synced. After the last sync of a
// run of writes, a write of a mark alone (and its sync) covers it.
//
// A frame header of zeros is the end of the log: the active segment holds
// zeros after its last record, written ahead of the records to come
// (Options.Preallocate), up to SegmentSize at most. A sealed segment ends
// with its last frame; one that ends in zeros instead (left by a crash,
// say) is read to its last record if the next segment starts with the
// record that follows, and is corruption otherwise.
//
// Version 1 (24-byte segment header, no marks) is refused with an error
// naming the version.
const (
	segHeaderSize   = 32
	frameHeaderSize = 20
	formatVersion   = 2
	segMagic        = "CONCWAL1"
	segSuffix       = ".wal"
	segDigits       = 20

	// frameMark in header byte [9] makes a frame a mark.
	frameMark = 1
	// markPayload is a mark's payload length, markSize its frame's.
	markPayload = 8
	markSize    = frameHeaderSize + markPayload
	// maxFrameLength bounds a length field on read: records are at most
	// maxMaxRecordSize bytes whatever the options a log was written with.
	maxFrameLength = maxMaxRecordSize
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

// AppendFrame appends to buf the frame of one record exactly as a segment
// holds it (see the format above): the record format other decision logs
// (package declog/etcdlog) share with this one.
func AppendFrame(buf []byte, seq uint64, typ uint8, payload []byte) []byte {
	return appendFrame(buf, seq, typ, payload)
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

// nonceSeed is the CRC32C of a segment's nonce, which starts the checksum
// of each of its marks; computed once a segment.
func nonceSeed(nonce uint64) uint32 {
	n := make([]byte, 8)
	binary.LittleEndian.PutUint64(n, nonce)
	return crc32.Update(0, castagnoli, n)
}

// putMark fills b (markSize bytes) with a mark for a segment whose nonce's
// seed (nonceSeed) is seed: the next record is next, and records up to
// synced are durable.
func putMark(b []byte, seed uint32, next, synced uint64) {
	h := b[:frameHeaderSize]
	clear(h)
	binary.LittleEndian.PutUint32(h[4:8], markPayload)
	h[9] = frameMark
	binary.LittleEndian.PutUint64(h[12:20], next)
	binary.LittleEndian.PutUint64(b[frameHeaderSize:markSize], synced)
	binary.LittleEndian.PutUint32(h[0:4], markCRC(seed, h, b[frameHeaderSize:markSize]))
}

// markCRC is the checksum of a mark with header h and payload p in a
// segment whose nonce's seed is seed: CRC32C over nonce, h[4:20] and p.
func markCRC(seed uint32, h, p []byte) uint32 {
	crc := crc32.Update(seed, castagnoli, h[4:frameHeaderSize])
	return crc32.Update(crc, castagnoli, p)
}

// isMark reports whether the frame header h and its payload p are a whole,
// valid mark of a segment whose nonce's seed is seed, and returns the
// sequence number it says was synced.
func isMark(seed uint32, h []byte, p []byte) (uint64, bool) {
	if h[9] != frameMark || h[8] != 0 || h[10] != 0 || h[11] != 0 || len(p) != markPayload ||
		binary.LittleEndian.Uint32(h[4:8]) != markPayload {
		return 0, false
	}
	if markCRC(seed, h, p) != binary.LittleEndian.Uint32(h[0:4]) {
		return 0, false
	}
	synced := binary.LittleEndian.Uint64(p)
	if next := binary.LittleEndian.Uint64(h[12:20]); next == 0 || synced >= next {
		return 0, false // a mark never claims the record after it
	}
	return synced, true
}

func encodeSegHeader(first, nonce uint64) []byte {
	h := make([]byte, segHeaderSize)
	copy(h, segMagic)
	binary.LittleEndian.PutUint64(h[8:16], first)
	binary.LittleEndian.PutUint32(h[16:20], formatVersion)
	binary.LittleEndian.PutUint64(h[20:28], nonce)
	binary.LittleEndian.PutUint32(h[28:32], crc32.Checksum(h[:28], castagnoli))
	return h
}

// newNonce returns a random segment nonce.
func newNonce() uint64 {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return binary.LittleEndian.Uint64(b[:])
}

// decodeSegHeader returns the first sequence number and the nonce a segment
// header holds.
func decodeSegHeader(h []byte) (first, nonce uint64, err error) {
	if len(h) >= 24 && string(h[:8]) == segMagic && binary.LittleEndian.Uint32(h[16:20]) == 1 &&
		binary.LittleEndian.Uint32(h[20:24]) == crc32.Checksum(h[:20], castagnoli) {
		return 0, 0, versionError(1)
	}
	if len(h) < segHeaderSize {
		return 0, 0, fmt.Errorf("segment header is %d bytes, want %d", len(h), segHeaderSize)
	}
	if string(h[:8]) != segMagic {
		return 0, 0, fmt.Errorf("bad segment magic %q", h[:8])
	}
	if got, want := binary.LittleEndian.Uint32(h[28:32]), crc32.Checksum(h[:28], castagnoli); got != want {
		return 0, 0, fmt.Errorf("segment header checksum %08x, want %08x", got, want)
	}
	if v := binary.LittleEndian.Uint32(h[16:20]); v != formatVersion {
		return 0, 0, versionError(v)
	}
	return binary.LittleEndian.Uint64(h[8:16]), binary.LittleEndian.Uint64(h[20:28]), nil
}

func versionError(v uint32) error {
	return fmt.Errorf("%w %d: this build reads version %d only (version 1 was written before release; such a log cannot be read)",
		ErrVersion, v, formatVersion)
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
