package tpc

import (
	"encoding"
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	"github.com/concordtx/concord"
)

// recordVersion is the first byte of every encoded Record.
const recordVersion = 1

// Record flag bits.
const (
	flagOnePhase = 1 << 0
	flagVotes    = 1 << 1
	flagsKnown   = flagOnePhase | flagVotes
)

var recordTypeNames = [...]string{RecBegin: "begin", RecCommit: "commit", RecAbort: "abort", RecEnd: "end"}

func (t RecordType) String() string {
	if t >= RecBegin && t <= RecEnd {
		return recordTypeNames[t]
	}
	return fmt.Sprintf("record(%d)", uint8(t))
}

var msgKindNames = [...]string{MsgPrepare: "prepare", MsgCommit: "commit", MsgAbort: "abort"}

func (k MsgKind) String() string {
	if k >= MsgPrepare && k <= MsgAbort {
		return msgKindNames[k]
	}
	return fmt.Sprintf("msg(%d)", uint8(k))
}

// MarshalBinary encodes r compactly: a version byte, the type, the
// transaction id, flags, the outcome, the reason, then the participants each
// followed by its vote when the record carries votes. Strings are
// length-prefixed with a uvarint. It refuses a record UnmarshalBinary would
// refuse.
func (r Record) MarshalBinary() ([]byte, error) {
	b, err := r.AppendBinary(make([]byte, 0, r.SizeBound()))
	if err != nil {
		return nil, err
	}
	return b, nil
}

// AppendBinary appends the encoding MarshalBinary returns to b, which it
// returns unchanged with an error for a record MarshalBinary refuses.
func (r Record) AppendBinary(b []byte) ([]byte, error) {
	if err := r.check(); err != nil {
		return b, fmt.Errorf("marshal record: %w", err)
	}
	var flags byte
	if r.OnePhase {
		flags |= flagOnePhase
	}
	if len(r.Votes) > 0 {
		flags |= flagVotes
	}
	start := len(b)
	b = append(b, recordVersion, byte(r.Type))
	b = appendString(b, string(r.TxID))
	b = append(b, flags, byte(r.Outcome))
	b = appendString(b, r.Reason)
	b = binary.AppendUvarint(b, uint64(len(r.Participants)))
	for i, p := range r.Participants {
		b = appendString(b, p)
		if flags&flagVotes != 0 {
			b = append(b, byte(r.Votes[i]))
		}
	}
	if n := len(b) - start; n > MaxRecordSize {
		return b[:start], fmt.Errorf("marshal record: %w: %d bytes, at most %d", ErrInvalid, n, MaxRecordSize)
	}
	return b, nil
}

// SizeBound returns a size the encoding of r does not exceed when r is
// valid, for making room for it.
func (r Record) SizeBound() int {
	// Each length and the count take at most 2 bytes of uvarint: they are
	// bounded by MaxTxIDLen, MaxReasonLen, MaxBranches and MaxParticipantLen.
	n := 12 + len(r.TxID) + len(r.Reason)
	for _, p := range r.Participants {
		n += 3 + len(p)
	}
	return n
}

// check reports a record that may not be written or read.
func (r Record) check() error {
	if r.Type < RecBegin || r.Type > RecEnd {
		return fmt.Errorf("%w: record type %d", ErrInvalid, uint8(r.Type))
	}
	if err := concord.ValidateStoredTxID(r.TxID); err != nil { // Begin refuses what is new
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if r.Outcome > concord.OutcomeAborted {
		return fmt.Errorf("%w: outcome %d", ErrInvalid, uint8(r.Outcome))
	}
	if len(r.Reason) > MaxReasonLen {
		return fmt.Errorf("%w: reason of %d bytes, at most %d", ErrInvalid, len(r.Reason), MaxReasonLen)
	}
	if len(r.Participants) > MaxBranches {
		return fmt.Errorf("%w: %d participants, at most %d", ErrInvalid, len(r.Participants), MaxBranches)
	}
	if len(r.Votes) > 0 && len(r.Votes) != len(r.Participants) {
		return fmt.Errorf("%w: %d votes for %d participants", ErrInvalid, len(r.Votes), len(r.Participants))
	}
	for i, p := range r.Participants {
		if err := checkParticipant(p); err != nil {
			return fmt.Errorf("%w: participant %d: %w", ErrInvalid, i, err)
		}
	}
	for i, v := range r.Votes {
		if v > concord.VoteUnreachable {
			return fmt.Errorf("%w: vote %d of participant %d", ErrInvalid, uint8(v), i)
		}
	}
	return nil
}

// UnmarshalBinary decodes a record written by MarshalBinary. It is strict:
// an unknown version, type, flag, vote or outcome, a truncated or oversized
// input, a length beyond the input, or trailing bytes is an error wrapping
// ErrInvalid. It never allocates more than the input's size calls for.
func (r *Record) UnmarshalBinary(b []byte) error {
	if len(b) > MaxRecordSize {
		return fmt.Errorf("unmarshal record: %w: %d bytes, at most %d", ErrInvalid, len(b), MaxRecordSize)
	}
	d := decoder{b: b}
	if v := d.byte("version"); d.err == nil && v != recordVersion {
		return fmt.Errorf("unmarshal record: %w: version %d, want %d", ErrInvalid, v, recordVersion)
	}
	var out Record
	out.Type = RecordType(d.byte("type"))
	out.TxID = concord.TxID(d.string("transaction id"))
	flags := d.byte("flags")
	out.Outcome = concord.Outcome(d.byte("outcome"))
	out.Reason = d.string("reason")
	n := d.count("participant count")
	if d.err == nil && flags&^flagsKnown != 0 {
		d.err = fmt.Errorf("%w: unknown flags %#x", ErrInvalid, flags)
	}
	if d.err == nil && n > 0 {
		out.Participants = make([]string, n)
		if flags&flagVotes != 0 {
			out.Votes = make([]concord.Vote, n)
		}
		for i := 0; i < n && d.err == nil; i++ {
			out.Participants[i] = d.string("participant")
			if flags&flagVotes != 0 {
				out.Votes[i] = concord.Vote(d.byte("vote"))
			}
		}
	}
	if d.err == nil && flags&flagVotes != 0 && n == 0 {
		d.err = fmt.Errorf("%w: votes flag with no participants", ErrInvalid)
	}
	if d.err == nil && d.off != len(b) {
		d.err = fmt.Errorf("%w: %d trailing bytes", ErrInvalid, len(b)-d.off)
	}
	if d.err != nil {
		return fmt.Errorf("unmarshal record: %w", d.err)
	}
	out.OnePhase = flags&flagOnePhase != 0
	if err := out.check(); err != nil {
		return fmt.Errorf("unmarshal record: %w", err)
	}
	*r = out
	return nil
}

// appendString appends s with a uvarint length prefix.
func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder reads a record, remembering the first error; later reads return
// zero values.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) byte(what string) byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.err = fmt.Errorf("%w: truncated before %s at byte %d", ErrInvalid, what, d.off)
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

// count reads a uvarint bounded by the bytes left, so that a forged count
// cannot make the caller allocate more than the input could fill.
func (d *decoder) count(what string) int {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 || (n > 1 && d.b[d.off+n-1] == 0) {
		// Malformed, overflowing or not minimal: every value has exactly
		// one encoding.
		d.err = fmt.Errorf("%w: bad %s at byte %d", ErrInvalid, what, d.off)
		return 0
	}
	d.off += n
	if v > uint64(len(d.b)-d.off) {
		d.err = fmt.Errorf("%w: %s %d exceeds the %d bytes left", ErrInvalid, what, v, len(d.b)-d.off)
		return 0
	}
	return int(v)
}

func (d *decoder) string(what string) string {
	n := d.count(what + " length")
	if d.err != nil {
		return ""
	}
	s := string(d.b[d.off : d.off+n])
	d.off += n
	if !utf8.ValidString(s) {
		d.err = fmt.Errorf("%w: %s is not UTF-8", ErrInvalid, what)
		return ""
	}
	return s
}

var (
	_ encoding.BinaryMarshaler   = Record{}
	_ encoding.BinaryAppender    = Record{}
	_ encoding.BinaryUnmarshaler = (*Record)(nil)
)
