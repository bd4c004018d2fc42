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
	damageNone  damageKind = iota
	damageZeros            // only zero bytes follow: the end of the log, unless a mark says otherwise
	damageBad              // a bad frame: a torn tail or corruption, as the marks decide
)

// scanResult is what scanning one segment found.
type scanResult struct {
	end    int64      // offset just past the last good frame
	next   uint64     // sequence number the next frame must carry
	kind   damageKind // damageNone if the segment ended cleanly at its size
	reason string     // why the frame at end is bad
	synced uint64     // highest sequence number a valid mark says was synced (prefix and after)
	markAt int64      // offset of the mark that says so (0 if none)
	after  tailFrames // valid frames found after the damage
}

// tailFrames are the valid frames found after damage.
type tailFrames struct {
	records     int    // records with a sequence number of at least next
	first, last uint64 // the sequence numbers of the first and last of them
	marks       int    // valid marks of this segment
}

// syncedLost reports whether the damage at res.end hides a record that a
// mark says was synced: the log must refuse to open rather than cut it.
func (res scanResult) syncedLost() bool {
	return res.kind != damageNone && res.next <= res.synced
}

// lastReason describes the damage of a last segment, with what the marks
// say of it.
func (res scanResult) lastReason() string {
	if res.syncedLost() {
		return fmt.Sprintf("%s; the mark at offset %d says records up to %d were synced, so record %d was synced and is damaged (not a torn write)",
			res.reason, res.markAt, res.synced, res.next)
	}
	return res.reason
}

// scanSegment reads the frames of f from offset segHeaderSize up to size,
// calling fn (if not nil) for each record with Seq >= from. The first frame
// must carry sequence number first; nonce is the segment's. It stops at the
// first bad frame and reads what follows it for valid frames (see
// scanTail). Errors are I/O errors and fn's errors only. Lengths are bounded
// by the bytes left and maxFrameLength, never by Options.MaxRecordSize:
// lowering that limit must not turn a durable record into damage.
func scanSegment(f File, size int64, first, nonce, from uint64, fn func(Record) error) (scanResult, error) {
	res := scanResult{end: segHeaderSize, next: first}
	if size < segHeaderSize {
		return res, nil
	}
	seed := nonceSeed(nonce)
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
		mark := h[9] == frameMark
		if mark {
			h[9] = 0 // decoded as a record's header, then put back
		}
		fh, bad := decodeFrameHeader(h[:])
		if mark {
			h[9] = frameMark
			if bad == "" && fh.length != markPayload {
				bad = fmt.Sprintf("mark of length %d, want %d", fh.length, markPayload)
			}
		}
		if bad == "" {
			switch {
			case fh.length > maxFrameLength:
				bad = fmt.Sprintf("length %d above the format's maximum %d", fh.length, maxFrameLength)
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
		// The length is checked against the bytes left: allocate (a
		// fresh slice for fn, which may keep it; else reuse one).
		var p []byte
		if fn != nil && !mark {
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
		if fh.seq != res.next {
			res.reason = fmt.Sprintf("sequence number %d, want %d", fh.seq, res.next)
			if mark {
				res.reason = "mark: " + res.reason
			}
			break
		}
		if mark {
			s, ok := isMark(seed, h[:], p)
			if !ok {
				res.reason = "bad mark (checksum or content)"
				break
			}
			if s > res.synced {
				res.synced, res.markAt = s, res.end
			}
			res.end += markSize
			continue
		}
		if got := frameCRC(h[:], p); got != fh.crc {
			res.reason = fmt.Sprintf("checksum %08x, want %08x", fh.crc, got)
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
	// Zeros, the common case (preallocated space), are checked a chunk at
	// a time rather than read whole.
	zero, err := zeroFrom(f, res.end, size)
	if err != nil {
		return res, err
	}
	if zero {
		res.kind, res.reason = damageZeros, "zeroed tail"
		return res, nil
	}
	res.kind = damageBad
	tail := make([]byte, size-res.end)
	if _, err := f.ReadAt(tail, res.end); err != nil && err != io.EOF {
		return res, fmt.Errorf("read tail at %d: %w", res.end, err)
	}
	res.after = scanTail(tail, res.end, res.next, seed, &res)
	return res, nil
}

// scanTail looks at b, the bytes of a segment from offset base where a bad
// frame starts whose record should have been next, for valid frames: the
// marks raise res.synced (a mark is a true statement wherever it is found),
// the records are counted to say what a cut would drop.
func scanTail(b []byte, base int64, next uint64, seed uint32, res *scanResult) tailFrames {
	var t tailFrames
	for off := 1; off+frameHeaderSize <= len(b); {
		h := b[off : off+frameHeaderSize]
		if h[9] == frameMark {
			if off+markSize <= len(b) {
				if s, ok := isMark(seed, h, b[off+frameHeaderSize:off+markSize]); ok {
					t.marks++
					if s > res.synced {
						res.synced, res.markAt = s, base+int64(off)
					}
					off += markSize
					continue
				}
			}
			off++
			continue
		}
		fh, bad := decodeFrameHeader(h)
		if bad != "" || fh.seq < next || int64(fh.length) > int64(len(b)-off-frameHeaderSize) {
			off++
			continue
		}
		end := off + frameHeaderSize + int(fh.length)
		if frameCRC(h, b[off+frameHeaderSize:end]) != fh.crc {
			off++
			continue
		}
		if t.records == 0 {
			t.first = fh.seq
		}
		t.records++
		t.last = fh.seq
		off = end
	}
	return t
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
