package coordinator

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/tpc"
	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wire"
)

// entryRequest is the log entry type of a request record: a transaction
// id and the digest of the request that started it, so that idempotent
// resubmission is recognized after a restart. tpc's record types are 1..4.
const entryRequest uint8 = 0x40

// ErrBadLogEntry is returned by New when the log holds an entry the
// coordinator cannot read.
var ErrBadLogEntry = errors.New("coordinator: unreadable log entry")

// digest identifies a submitted request's content.
type digest [sha256.Size]byte

// requestDigest hashes what makes two submissions "the same request"
// (docs/protocol.md): the set of branches, each a participant and its
// payload in canonical form (appendCanonical: white space, member order,
// string escapes and the spelling of a number do not matter); a payload
// with no canonical form (invalid JSON, a repeated key) by its bytes, and
// none the same as null. The branches' order and timeout_ms do not count.
func requestDigest(req *wire.SubmitRequest) digest {
	var order [16]int // the branches by participant, on the stack for a usual request
	idx := order[:0]
	n := 8
	for i, b := range req.Branches {
		idx = append(idx, i)
		n += 32 + len(b.Participant) + 2*len(b.Payload)
	}
	for i := 1; i < len(idx); i++ { // insertion sort: few branches
		for j := i; j > 0 && req.Branches[idx[j]].Participant < req.Branches[idx[j-1]].Participant; j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
	var room [512]byte
	buf := room[:0]
	if n > len(room) {
		buf = make([]byte, 0, n)
	}
	buf = append(buf, "request/2"...)
	for _, i := range idx {
		b := &req.Branches[i]
		buf = append(buf, "\x00p"...)
		buf = strconv.AppendInt(buf, int64(len(b.Participant)), 10)
		buf = append(buf, ':')
		buf = append(buf, b.Participant...)
		mark := len(buf)
		buf = append(buf, "\x00j"...)
		lenAt := len(buf)
		c, ok := appendCanonical(buf, b.Payload)
		switch {
		case len(b.Payload) == 0 || ok && string(c[lenAt:]) == "null":
			buf = append(buf[:mark], "\x00n"...)
		case ok:
			// The length goes before the text: move the text up.
			text := len(c) - lenAt
			var num [20]byte
			l := strconv.AppendInt(num[:0], int64(text), 10)
			l = append(l, ':')
			c = append(c, l...) // room for it
			copy(c[lenAt+len(l):], c[lenAt:lenAt+text])
			copy(c[lenAt:], l)
			buf = c
		default:
			buf = append(buf[:mark], "\x00r"...)
			buf = strconv.AppendInt(buf, int64(len(b.Payload)), 10)
			buf = append(buf, ':')
			buf = append(buf, b.Payload...)
		}
	}
	return sha256.Sum256(buf)
}

// requestDigestV1 is the digest of request records of versions 1 and 2,
// written before requestDigest: the timeout given and each branch's
// participant and payload in order (JSON compacted). A transaction
// recovered with such a digest is matched with it.
func requestDigestV1(req *wire.SubmitRequest) digest {
	n := 32
	for _, b := range req.Branches {
		n += 32 + len(b.Participant) + len(b.Payload)
	}
	var room [512]byte // a usual request's, on the stack
	buf := room[:0]
	if n > len(room) {
		buf = make([]byte, 0, n)
	}
	buf = append(buf, "timeout_ms="...)
	buf = strconv.AppendInt(buf, req.TimeoutMS, 10)
	for _, b := range req.Branches {
		buf = append(buf, "\x00p"...)
		buf = strconv.AppendInt(buf, int64(len(b.Participant)), 10)
		buf = append(buf, ':')
		buf = append(buf, b.Participant...)
		if c, ok := compacted(b.Payload); ok {
			buf = append(buf, "\x00j"...)
			buf = strconv.AppendInt(buf, int64(len(c)), 10)
			buf = append(buf, ':')
			buf = append(buf, c...)
		} else {
			buf = append(buf, "\x00r"...)
			buf = strconv.AppendInt(buf, int64(len(b.Payload)), 10)
			buf = append(buf, ':')
			buf = append(buf, b.Payload...)
		}
	}
	return sha256.Sum256(buf)
}

// compacted returns payload as json.Compact writes it, and false for an
// empty or invalid payload. A valid payload without a white space byte is
// its own compact form, the usual case, and is returned as is.
func compacted(payload []byte) ([]byte, bool) {
	if len(payload) == 0 {
		return nil, false
	}
	if bytes.IndexAny(payload, " \t\n\r") < 0 {
		return payload, json.Valid(payload)
	}
	var c bytes.Buffer
	if json.Compact(&c, payload) != nil {
		return nil, false
	}
	return c.Bytes(), true
}

// Request record versions: 1 holds the id and digest; 2 adds the
// submitter's identity (empty when the coordinator authenticates no one).
// Both hold a requestDigestV1; 3 and 4 are 1 and 2 with a requestDigest.
const (
	requestVersionV1      = 1
	requestVersionOwnerV1 = 2
	requestVersion        = 3
	requestVersionOwner   = 4
)

// MaxOwnerLen bounds the submitter identity kept in a request record.
const MaxOwnerLen = 255

func encodeRequest(id concord.TxID, d digest, owner string, legacy bool) []byte {
	return appendRequest(make([]byte, 0, requestSizeBound(id, owner)), id, d, owner, legacy)
}

// requestSizeBound returns a size a request record does not exceed.
func requestSizeBound(id concord.TxID, owner string) int {
	return 1 + 2*binary.MaxVarintLen64 + len(id) + len(digest{}) + len(owner)
}

// appendRequest appends the request record encodeRequest returns to b.
func appendRequest(b []byte, id concord.TxID, d digest, owner string, legacy bool) []byte {
	v := byte(requestVersion)
	if owner != "" {
		v = requestVersionOwner
	}
	if legacy {
		v -= requestVersion - requestVersionV1
	}
	b = append(b, v)
	b = binary.AppendUvarint(b, uint64(len(id)))
	b = append(b, id...)
	b = append(b, d[:]...)
	if owner != "" {
		b = binary.AppendUvarint(b, uint64(len(owner)))
		b = append(b, owner...)
	}
	return b
}

// decodeRequest decodes a request record; legacy is set for a
// requestDigestV1.
func decodeRequest(b []byte) (id concord.TxID, d digest, owner string, legacy bool, err error) {
	if len(b) < 1 || b[0] < requestVersionV1 || b[0] > requestVersionOwner {
		return "", d, "", false, fmt.Errorf("request record: unknown version")
	}
	v := b[0]
	legacy = v <= requestVersionOwnerV1
	if legacy {
		v += requestVersion - requestVersionV1
	}
	id, d, owner, err = decodeRequestAs(b, v)
	return id, d, owner, legacy, err
}

// decodeRequestAs decodes a request record of version v (3 or 4).
func decodeRequestAs(b []byte, v byte) (concord.TxID, digest, string, error) {
	var d digest
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || n > uint64(len(b)) {
		return "", d, "", fmt.Errorf("request record: bad id length")
	}
	rest := b[1+k:]
	if v == requestVersion && uint64(len(rest)) != n+uint64(len(d)) {
		return "", d, "", fmt.Errorf("request record: %d bytes after the id length, want %d", len(rest), n+uint64(len(d)))
	}
	if uint64(len(rest)) < n+uint64(len(d)) {
		return "", d, "", fmt.Errorf("request record: %d bytes after the id length, want at least %d", len(rest), n+uint64(len(d)))
	}
	id := concord.TxID(rest[:n])
	if err := concord.ValidateStoredTxID(id); err != nil {
		return "", d, "", fmt.Errorf("request record: %w", err)
	}
	copy(d[:], rest[n:])
	rest = rest[n+uint64(len(d)):]
	var owner string
	if v == requestVersionOwner {
		m, k := binary.Uvarint(rest)
		if k <= 0 || m == 0 || m > MaxOwnerLen || uint64(len(rest)-k) != m {
			return "", d, "", fmt.Errorf("request record: bad owner length")
		}
		owner = string(rest[k:])
	}
	return id, d, owner, nil
}

// encodeRecords appends to entries the log entries of recs, after the
// request record of t when withRequest is set. Their payloads share one
// new buffer, never reused: the log is not told to give it back.
func encodeRecords(entries []wal.Entry, t *txState, withRequest bool, recs []tpc.Record) ([]wal.Entry, error) {
	n := 0
	if withRequest {
		n += requestSizeBound(t.id, t.owner)
	}
	for _, r := range recs {
		n += r.SizeBound()
	}
	buf := make([]byte, 0, n)
	if withRequest {
		start := len(buf)
		buf = appendRequest(buf, t.id, t.digest, t.owner, t.legacy)
		entries = append(entries, wal.Entry{Type: entryRequest, Payload: buf[start:len(buf):len(buf)]})
	}
	for _, r := range recs {
		start := len(buf)
		var err error
		if buf, err = r.AppendBinary(buf); err != nil {
			return nil, fmt.Errorf("encode %v record of %s: %w", r.Type, r.TxID, err)
		}
		entries = append(entries, wal.Entry{Type: uint8(r.Type), Payload: buf[start:len(buf):len(buf)]})
	}
	return entries, nil
}

// crashPointFor names the crash point after a record of type t.
func crashPointFor(t tpc.RecordType) CrashPoint {
	switch t {
	case tpc.RecBegin:
		return AfterLogBegin
	case tpc.RecCommit:
		return AfterLogCommit
	case tpc.RecAbort:
		return AfterLogAbort
	case tpc.RecEnd:
		return AfterLogEnd
	}
	return crashPointUnknown
}
