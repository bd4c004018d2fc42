package concord

import (
	"errors"
	"fmt"
)

// TxID names one distributed transaction. It is chosen by the client (as an
// idempotency key) or by the coordinator, and is the same at every participant.
type TxID string

// MaxTxIDLen bounds a transaction id so that it fits every resource manager's
// own limit (PostgreSQL's gid is under 200 bytes, MySQL's XA gtrid 64) once a
// participant adds its own prefix.
const MaxTxIDLen = 64

// ErrBadTxID is returned by ValidateTxID for an id that is empty, too long,
// holds a character outside [A-Za-z0-9._:-] or is made only of dots.
var ErrBadTxID = errors.New("bad transaction id")

// ValidateTxID reports whether id may name a transaction. An id is a path
// segment of the coordinator's API (/v1/transactions/{id}), so an id made
// only of dots ("." and ".." are dot segments, which HTTP servers and URL
// libraries remove before a request is served) is refused with the rest.
func ValidateTxID(id TxID) error {
	if err := ValidateStoredTxID(id); err != nil {
		return err
	}
	for i := 0; i < len(id); i++ {
		if id[i] != '.' {
			return nil
		}
	}
	return fmt.Errorf("%w: %q is made only of dots, which a URL path cannot carry as a segment", ErrBadTxID, id)
}

// ValidateStoredTxID is ValidateTxID as it was before ids made only of dots
// were refused: for reading records written then, which may hold one.
func ValidateStoredTxID(id TxID) error {
	if len(id) == 0 {
		return fmt.Errorf("%w: empty", ErrBadTxID)
	}
	if len(id) > MaxTxIDLen {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrBadTxID, len(id), MaxTxIDLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !txIDByte[c] {
			return fmt.Errorf("%w: byte %d is %q; allowed are letters, digits and . _ : -", ErrBadTxID, i, c)
		}
	}
	return nil
}

// txIDByte marks the bytes a transaction id may hold. Every request checks
// every id byte by byte, and a table look-up costs less than a chain of
// comparisons whose outcome the processor cannot predict.
var txIDByte = func() (ok [256]bool) {
	for c := range len(ok) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '_', c == ':', c == '-':
			ok[c] = true
		}
	}
	return ok
}()

// Vote is a participant's answer to PREPARE, or what the coordinator recorded
// in its place when no answer came.
type Vote uint8

// Votes. VoteNone means no answer yet.
const (
	VoteNone        Vote = iota
	VoteYes              // prepared and durable: will commit if told to
	VoteNo               // refused: the participant has already forgotten the transaction
	VoteReadOnly         // nothing to commit: the participant leaves after phase 1
	VoteTimeout          // recorded by the coordinator: no answer before the deadline
	VoteUnreachable      // recorded by the coordinator: the request could not be delivered
)

var voteNames = [...]string{"none", "yes", "no", "read-only", "timeout", "unreachable"}

func (v Vote) String() string {
	if int(v) < len(voteNames) {
		return voteNames[v]
	}
	return fmt.Sprintf("vote(%d)", uint8(v))
}

// ParseVote is the inverse of Vote.String.
func ParseVote(s string) (Vote, error) {
	for i, n := range voteNames {
		if n == s {
			return Vote(i), nil
		}
	}
	return VoteNone, fmt.Errorf("unknown vote %q", s)
}

// MarshalText encodes v as its name.
func (v Vote) MarshalText() ([]byte, error) {
	if int(v) >= len(voteNames) {
		return nil, fmt.Errorf("unknown vote %d", uint8(v))
	}
	return []byte(v.String()), nil
}

// UnmarshalText decodes a vote name.
func (v *Vote) UnmarshalText(b []byte) error {
	p, err := ParseVote(string(b))
	if err != nil {
		return err
	}
	*v = p
	return nil
}

// Outcome is the fate of a transaction.
type Outcome uint8

// Outcomes.
const (
	OutcomePending   Outcome = iota // no decision yet
	OutcomeCommitted                // decided commit: every yes voter commits
	OutcomeAborted                  // decided (or presumed) abort: every participant rolls back
)

var outcomeNames = [...]string{"pending", "committed", "aborted"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// ParseOutcome is the inverse of Outcome.String.
func ParseOutcome(s string) (Outcome, error) {
	for i, n := range outcomeNames {
		if n == s {
			return Outcome(i), nil
		}
	}
	return OutcomePending, fmt.Errorf("unknown outcome %q", s)
}

// MarshalText encodes o as its name.
func (o Outcome) MarshalText() ([]byte, error) {
	if int(o) >= len(outcomeNames) {
		return nil, fmt.Errorf("unknown outcome %d", uint8(o))
	}
	return []byte(o.String()), nil
}

// UnmarshalText decodes an outcome name.
func (o *Outcome) UnmarshalText(b []byte) error {
	p, err := ParseOutcome(string(b))
	if err != nil {
		return err
	}
	*o = p
	return nil
}
