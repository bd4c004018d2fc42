package filestore

import (
	"fmt"
	"unicode/utf8"
)

// DescribeLogEntry renders one entry of a file store's log for people, as
// `concord log dump` shows it. It reports false for an entry that is not a
// file store record.
func DescribeLogEntry(typ uint8, payload []byte) (string, bool) {
	name := map[uint8]string{recPrepared: "prepared", recCommit: "commit", recAbort: "abort", recOnePhase: "one-phase"}[typ]
	if name == "" {
		return "", false
	}
	id, body, err := decodeRec(payload)
	if err != nil || !utf8.Valid(body) {
		return "", false
	}
	switch {
	case typ == recCommit && len(body) == 0:
		return fmt.Sprintf("%s %s", name, id), true
	case typ == recAbort:
		return fmt.Sprintf("%s %s reason %q", name, id, body), true
	case typ == recCommit:
		return "", false
	}
	return fmt.Sprintf("%s %s payload %s", name, id, body), true
}
