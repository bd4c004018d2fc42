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
	if err := concord.ValidateTxID(id); err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return id, b[k+int(n):], nil
}
