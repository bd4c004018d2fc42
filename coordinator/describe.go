package coordinator

import (
	"fmt"
	"strings"

	"github.com/concordtx/concord/tpc"
)

// DescribeLogEntry renders one entry of a coordinator's log for people, as
// `concord log dump` shows it. It reports false for an entry that is not a
// coordinator record.
func DescribeLogEntry(typ uint8, payload []byte) (string, bool) {
	if typ == entryRequest {
		id, _, owner, _, err := decodeRequest(payload)
		if err != nil {
			return "", false
		}
		s := "request " + string(id)
		if owner != "" {
			s += " submitted by " + owner
		}
		return s, true
	}
	var r tpc.Record
	if typ < uint8(tpc.RecBegin) || typ > uint8(tpc.RecEnd) || r.UnmarshalBinary(payload) != nil || uint8(r.Type) != typ {
		return "", false
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Type, r.TxID)
	switch r.Type {
	case tpc.RecBegin:
		if r.OnePhase {
			b.WriteString(" one-phase")
		}
		b.WriteString(" participants " + strings.Join(r.Participants, ","))
	case tpc.RecCommit, tpc.RecAbort:
		votes := make([]string, len(r.Participants))
		for i, p := range r.Participants {
			votes[i] = p + "=" + r.Votes[i].String()
		}
		b.WriteString(" votes " + strings.Join(votes, ","))
	}
	if r.Outcome != 0 {
		b.WriteString(" outcome " + r.Outcome.String())
	}
	if r.Reason != "" {
		fmt.Fprintf(&b, " reason %q", r.Reason)
	}
	return b.String(), true
}
