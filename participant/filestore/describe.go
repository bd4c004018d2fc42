package filestore

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/concordtx/concord"
)

// LogEntry is one record of a file store's log, decoded.
type LogEntry struct {
	// Kind is prepared, commit, abort or one-phase.
	Kind string
	ID   concord.TxID
	// Body is the payload of a prepared or one-phase record, the reason of
	// an abort.
	Body []byte
	// Deadline is the one the record carries; zero for the record types
	// written before deadlines were kept, and for a commit.
	Deadline time.Time
	// Coordinator is the encoded participant.CoordinatorRef of a prepared
	// record, if it carries one.
	Coordinator string
}

// DecodeLogEntry decodes one entry of a file store's log. It reports false
// for an entry that is not a file store record.
func DecodeLogEntry(typ uint8, payload []byte) (LogEntry, bool) {
	name := map[uint8]string{recPrepared: "prepared", recCommit: "commit", recAbort: "abort", recOnePhase: "one-phase",
		recPrepared2: "prepared", recAbort2: "abort", recOnePhase2: "one-phase"}[typ]
	if name == "" {
		return LogEntry{}, false
	}
	id, body, err := decodeRec(payload)
	if err != nil {
		return LogEntry{}, false
	}
	e := LogEntry{Kind: name, ID: id, Body: body}
	var d int64
	switch typ {
	case recPrepared2:
		d, e.Coordinator, e.Body, err = decodePreparedBody(body)
	case recOnePhase2, recAbort2:
		d, e.Body, err = decodeDeadlineBody(body)
	case recCommit:
		if len(body) != 0 {
			return LogEntry{}, false
		}
	}
	if err != nil {
		return LogEntry{}, false
	}
	if d != 0 {
		e.Deadline = time.UnixMilli(d).UTC()
	}
	return e, true
}

// DescribeLogEntry renders one entry of a file store's log for people, as
// `concord log dump` shows it. It reports false for an entry that is not a
// file store record.
func DescribeLogEntry(typ uint8, payload []byte) (string, bool) {
	e, ok := DecodeLogEntry(typ, payload)
	if !ok || !utf8.Valid(e.Body) || !utf8.ValidString(e.Coordinator) {
		return "", false
	}
	var b strings.Builder
	switch e.Kind {
	case "commit":
		fmt.Fprintf(&b, "%s %s", e.Kind, e.ID)
	case "abort":
		fmt.Fprintf(&b, "%s %s reason %q", e.Kind, e.ID, e.Body)
	default:
		fmt.Fprintf(&b, "%s %s payload %s", e.Kind, e.ID, e.Body)
	}
	if !e.Deadline.IsZero() {
		fmt.Fprintf(&b, " deadline %s", e.Deadline.Format(time.RFC3339Nano))
	}
	if e.Coordinator != "" {
		fmt.Fprintf(&b, " coordinator %s", e.Coordinator)
	}
	return b.String(), true
}
