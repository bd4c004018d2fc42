package wal

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// damageKind classifies why reading a segment stopped early.
type damageKind int

const (
	damageNone    damageKind = iota
	damageZeros              // only zero bytes follow: end of log
	damageTorn               // an incomplete or bad frame with nothing valid after it
	damageCorrupt            // a bad frame followed by a valid one: real corruption
)

// scanResult is what scanning one segment found.
type scanResult struct {
	end    int64      // offset just past the last good frame
	next   uint64     // sequence number the next frame must carry
	kind   damageKind // damageNone if the segment ended cleanly at its size
	reason string     // why the frame at end is bad
}

// scanSegment reads the frames of f from offset segHeaderSize up to size,
// calling fn (if not nil) for each record with Seq >= from. The first frame
// must carry sequence number first. It stops at the first bad frame and
// classifies the damage. Errors are I/O errors and fn's errors only.
func scanSegment(f File, size int64, first, from uint64, maxRec int, fn func(Record) error) (scanResult, error) {
	res := scanResult{end: segHeaderSize, next: first}
	if size < segHeaderSize {
		return res, nil
	}
	br := bufio.NewReaderSize(io.NewSectionReader(f, segHeaderSize, size-segHeaderSize), 64<<10)
	var h [frameHeaderSize]byte
	var scratch []byte
	for res.end < size {
		remain := size - res.end
		if remain < frameHeaderSize {
			res.reason = fmt.Sprintf("short frame header: %d bytes left", remain)
			break
		}
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return res, fmt.Errorf("read frame header at %d: %w", res.end, err)
		}
		fh, bad := decodeFrameHeader(h[:])
		if bad == "" {
			switch {
			case int64(fh.length) > int64(maxRec):
				bad = fmt.Sprintf("length %d above maximum record size %d", fh.length, maxRec)
			case int64(fh.length) > remain-frameHeaderSize:
				bad = fmt.Sprintf("short frame: length %d, %d bytes left", fh.length, remain-frameHeaderSize)
			}
		}
		if bad != "" {
			if isZero(h[:]) {
				bad = "zero frame header"
			}
			res.reason = bad
			break
		}
		// The length is checked against both limits above: allocate (a
		// fresh slice for fn, which may keep it; else reuse one).
		var p []byte
		if fn != nil {
			p = make([]byte, fh.length)
		} else {
			if cap(scratch) < int(fh.length) {
				scratch = make([]byte, fh.length)
			}
			p = scratch[:fh.length]
		}
		if _, err := io.ReadFull(br, p); err != nil {
			return res, fmt.Errorf("read payload at %d: %w", res.end+frameHeaderSize, err)
		}
		if got := frameCRC(h[:], p); got != fh.crc {
			res.reason = fmt.Sprintf("checksum %08x, want %08x", fh.crc, got)
			break
		}
		if fh.seq != res.next {
			res.reason = fmt.Sprintf("sequence number %d, want %d", fh.seq, res.next)
			break
		}
		if fn != nil && fh.seq >= from {
			if err := fn(Record{Seq: fh.seq, Type: fh.typ, Payload: p}); err != nil {
				return res, err
			}
		}
		res.end += frameHeaderSize + int64(fh.length)
		res.next++
	}
	if res.end >= size {
		return res, nil
	}
	kind, err := classifyDamage(f, res.end, size, res.next, maxRec)
	if err != nil {
		return res, err
	}
	res.kind = kind
	if kind == damageZeros {
		res.reason = "zeroed tail"
	}
	return res, nil
}

// classifyDamage looks at the bytes of f from bad to size, where a bad frame
// starts whose sequence number should have been next: zeros only are the end
// of the log; a later valid frame with a sequence number of at least next
// means corruption inside the log, unless a whole sector of zeros lies
// before it (see zeroSector); anything else is a torn tail.
func classifyDamage(f File, bad, size int64, next uint64, maxRec int) (damageKind, error) {
	// Zeros, the common case (preallocated space), are checked a chunk at
	// a time rather than read whole.
	zero, err := zeroFrom(f, bad, size)
	if err != nil {
		return 0, err
	}
	if zero {
		return damageZeros, nil
	}
	tail := make([]byte, size-bad)
	if _, err := f.ReadAt(tail, bad); err != nil && err != io.EOF {
		return 0, fmt.Errorf("read tail at %d: %w", bad, err)
	}
	if v := laterValidFrame(tail[1:], next, maxRec); v >= 0 && !zeroSector(tail[:1+v], bad) {
		return damageCorrupt, nil
	}
	return damageTorn, nil
}

// sectorSize is the smallest unit a disk writes whole; a power loss can
// leave any sector of an unsynced write unwritten, in any order.
const sectorSize = 512

// zeroSector reports whether b, which starts at offset base of its file,
// holds a whole sector of zeros. Records are written in place into zeros
// written ahead of them, so a power loss during a write can leave a later
// sector of it on disk and an earlier one still zero: valid records after
// such a hole were written after the last sync that returned, are none of
// them acknowledged, and the hole is a torn tail like any other. Damage that
// no unwritten sector explains (bytes changed, not zeroed whole sectors)
// stays corruption.
func zeroSector(b []byte, base int64) bool {
	for off := (sectorSize - base%sectorSize) % sectorSize; off+sectorSize <= int64(len(b)); off += sectorSize {
		if isZero(b[off : off+sectorSize]) {
			return true
		}
	}
	return false
}

// zeroFrom reports whether bytes [from, size) of f are all zero.
func zeroFrom(f File, from, size int64) (bool, error) {
	buf := make([]byte, min(size-from, 64<<10))
	for off := from; off < size; {
		chunk := buf[:min(int64(len(buf)), size-off)]
		if _, err := f.ReadAt(chunk, off); err != nil && err != io.EOF {
			return false, fmt.Errorf("read tail at %d: %w", off, err)
		}
		if !isZero(chunk) {
			return false, nil
		}
		off += int64(len(chunk))
	}
	return true, nil
}

// laterValidFrame returns the offset in b of the first whole frame with a
// correct checksum and a sequence number of at least next, or -1.
func laterValidFrame(b []byte, next uint64, maxRec int) int {
	for off := 0; off+frameHeaderSize <= len(b); off++ {
		h := b[off : off+frameHeaderSize]
		fh, bad := decodeFrameHeader(h)
		if bad != "" || fh.seq < next || int64(fh.length) > int64(maxRec) ||
			int64(fh.length) > int64(len(b)-off-frameHeaderSize) {
			continue
		}
		if frameCRC(h, b[off+frameHeaderSize:off+frameHeaderSize+int(fh.length)]) == fh.crc {
			return off
		}
	}
	return -1
}

func isZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroFill))
		if !bytes.Equal(b[:n], zeroFill[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// trimZeros returns b without the zero bytes at its end.
func trimZeros(b []byte) []byte {
	return bytes.TrimRight(b, "\x00")
}

// readSegHeader reads up to segHeaderSize bytes at the start of a segment
// file of the given size.
func readSegHeader(f File, size int64) ([]byte, error) {
	h := make([]byte, min(size, segHeaderSize))
	if _, err := f.ReadAt(h, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("read segment header: %w", err)
	}
	return h, nil
}
