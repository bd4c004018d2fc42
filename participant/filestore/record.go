package filestore

import (
	"encoding/binary"
	"fmt"

	"github.com/concordtx/concord"
)

// Log record types (the wal record's type byte).
const (
	// recPrepared holds id and payload: the transaction is prepared. Synced
	// before the yes vote.
	recPrepared uint8 = 1
	// recCommit holds id: a prepared transaction committed. Synced before
	// the commit is acknowledged.
	recCommit uint8 = 2
	// recAbort holds id and reason: aborted, refused (a no vote), or
	// aborted before its prepare arrived. Synced for an abort before the
	// prepare and for a one-phase refusal, whose loss could let a late or
	// duplicate one-phase prepare commit a transaction reported aborted.
	// Not synced otherwise: under presumed abort a lost abort of a prepared
	// transaction leaves it prepared, and in-doubt resolution aborts it
	// again; a lost two-phase no vote lets a duplicate prepare hold it
	// until in-doubt resolution aborts it.
	recAbort uint8 = 3
	// recOnePhase holds id and payload: prepared and committed in one
	// step. Synced before the outcome is returned.
	recOnePhase uint8 = 4
)

// encodeRec lays out a record: uvarint id length, id, then body.
func encodeRec(id concord.TxID, body []byte) []byte {
	return appendRecord(make([]byte, 0, binary.MaxVarintLen32+len(id)+len(body)), id, body)
}

// appendRecord appends the layout of encodeRec to b.
func appendRecord(b []byte, id concord.TxID, body []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(id)))
	b = append(b, id...)
	return append(b, body...)
}

func decodeRec(b []byte) (concord.TxID, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return "", nil, fmt.Errorf("%w: bad id length", ErrCorrupt)
	}
	id := concord.TxID(b[k : k+int(n)])
	// The stored check: a record written before ids made only of dots
	// were refused may hold one.
	if err := concord.ValidateStoredTxID(id); err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return id, b[k+int(n):], nil
}

// Record types that carry the transaction's deadline (and, for a prepare,
// its coordinator). The older types above are still read: their
// transactions get the deadline of a PREPARE that named none
// (participant.Retention.Admit), from the time the store is opened.
const (
	// recPrepared2 is recPrepared with body: varint deadline (Unix ms),
	// uvarint length and the encoded participant.CoordinatorRef, payload.
	recPrepared2 uint8 = 5
	// recOnePhase2 is recOnePhase with body: varint deadline, payload.
	recOnePhase2 uint8 = 6
	// recAbort2 is recAbort with body: varint deadline, reason. The
	// deadline is what the decision is remembered by: the prepared
	// transaction's, the refused PREPARE's, or for an abort before the
	// prepare Retention.AbortDeadline of its time.
	recAbort2 uint8 = 7
)

// appendPreparedBody appends the body of a recPrepared2 record to b.
func appendPreparedBody(b []byte, deadlineMS int64, coord string, payload []byte) []byte {
	b = binary.AppendVarint(b, deadlineMS)
	b = binary.AppendUvarint(b, uint64(len(coord)))
	b = append(b, coord...)
	return append(b, payload...)
}

// appendDeadlineBody appends the body of a recOnePhase2 or recAbort2
// record to b: the deadline, then rest (the payload or the reason).
func appendDeadlineBody[T ~string | ~[]byte](b []byte, deadlineMS int64, rest T) []byte {
	b = binary.AppendVarint(b, deadlineMS)
	return append(b, rest...)
}

// decodeDeadlineBody reads what appendDeadlineBody wrote.
func decodeDeadlineBody(body []byte) (deadlineMS int64, rest []byte, err error) {
	d, k := binary.Varint(body)
	if k <= 0 {
		return 0, nil, fmt.Errorf("%w: bad deadline", ErrCorrupt)
	}
	return d, body[k:], nil
}

// decodePreparedBody reads what appendPreparedBody wrote.
func decodePreparedBody(body []byte) (deadlineMS int64, coord string, payload []byte, err error) {
	d, rest, err := decodeDeadlineBody(body)
	if err != nil {
		return 0, "", nil, err
	}
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest)-k) {
		return 0, "", nil, fmt.Errorf("%w: bad coordinator length", ErrCorrupt)
	}
	return d, string(rest[k : k+int(n)]), rest[k+int(n):], nil
}
