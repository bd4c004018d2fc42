package wire

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/jsonfast"
)

// The coordinator reads a participant's answer once per batch, with one
// entry per transaction: decodeAnswer reads the plain form participants
// write (lowercase keys each at most once, plain ASCII strings, known vote
// and outcome names) directly and leaves anything else to json.Unmarshal,
// decoding exactly as it would (FuzzAnswerDecodeFast checks it).

// decodePrepareAnswer decodes b into out, which must be zero, as
// json.Unmarshal does, except that an answer repeating a key in one object
// (a vote with two "vote" members, two "votes" lists) is an error: it
// votes twice, and which vote the participant acts on cannot be known. q
// is what the request asked about; it changes nothing in the result, only
// what it costs.
func decodePrepareAnswer(b []byte, out *PrepareResponse, q asked) error {
	if decodePrepareResponseFast(b, out, q) {
		return nil // the fast decoder refuses repeated keys
	}
	if err := unmarshalApart(b, out); err != nil {
		return err
	}
	if err := repeatedKey(b); err != nil {
		*out = PrepareResponse{}
		return err
	}
	return nil
}

// repeatedKey returns an error naming the first key that b, valid JSON,
// repeats within one object.
func repeatedKey(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	var scope []map[string]bool // per open container: its keys so far; nil for an array
	expectKey := false
	for {
		tok, err := d.Token()
		if err != nil {
			return nil // the end, or what json.Unmarshal already accepted
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				scope = append(scope, map[string]bool{})
				expectKey = true
				continue
			case '[':
				scope = append(scope, nil)
				expectKey = false
				continue
			default:
				scope = scope[:len(scope)-1]
			}
		case string:
			if expectKey {
				keys := scope[len(scope)-1]
				if keys[v] {
					return fmt.Errorf("%w: the answer repeats the key %q in one object: it votes twice", ErrBadJSON, v)
				}
				keys[v] = true
				expectKey = false
				continue
			}
		}
		// A value was read: in an object the next token is a key.
		expectKey = len(scope) > 0 && scope[len(scope)-1] != nil
	}
}

// decodeDecisionAnswer is decodePrepareAnswer for a decision batch's answer.
func decodeDecisionAnswer(b []byte, out *DecisionResponse, q asked) error {
	if decodeDecisionResponseFast(b, out, q) {
		return nil
	}
	return unmarshalApart(b, out)
}

// unmarshalApart sets *out to what json.Unmarshal decodes into a zero T
// (out may hold what a fast decoder left). It decodes into a T of its own,
// so that out does not escape, and the caller's answer can stay on its stack.
func unmarshalApart[T any](b []byte, out *T) error {
	var v T
	err := json.Unmarshal(b, &v)
	*out = v
	return err
}

// asked is what a request asked about, in its order: the transactions of a
// PREPARE batch or the ids of a decision batch. A participant answers every
// transaction once, in the order asked, so the answer's list is made for
// that many entries, and an id the answer repeats at its position is the
// request's string rather than a new copy of its bytes. The zero asked
// knows nothing: lists start at a small size and every id is copied.
type asked struct {
	txs []PrepareTx
	ids []concord.TxID
}

// capFor returns the capacity for the list of an answer whose remaining
// text has left bytes, each entry taking at least minLen of them.
func (q asked) capFor(left, minLen int) int {
	if n := len(q.txs) + len(q.ids); n > 0 {
		return n
	}
	return min(16, left/minLen+1)
}

// id reads the id of the answer's entry i.
func (q asked) id(p *jsonfast.Scanner, i int) (concord.TxID, bool) {
	s, ok := p.Plain()
	if !ok {
		return "", false
	}
	var want concord.TxID
	switch {
	case i < len(q.txs):
		want = q.txs[i].ID
	case i < len(q.ids):
		want = q.ids[i]
	}
	if string(s) == string(want) {
		return want, true
	}
	return concord.TxID(s), true
}

// vote reads a vote by its name.
func vote(p *jsonfast.Scanner) (concord.Vote, bool) {
	s, ok := p.Plain()
	if !ok {
		return 0, false
	}
	for v := concord.VoteNone; v <= concord.VoteUnreachable; v++ {
		if string(s) == v.String() { // as ParseVote, without making a string
			return v, true
		}
	}
	return 0, false
}

// plain reads a string in its plain form (see jsonfast.Scanner.Plain) as
// a T.
func plain[T ~string](p *jsonfast.Scanner) (T, bool) {
	s, ok := p.Plain()
	return T(s), ok
}

// outcome reads an outcome by its name.
func outcome(p *jsonfast.Scanner) (concord.Outcome, bool) {
	s, ok := p.Plain()
	if !ok {
		return 0, false
	}
	for o := concord.OutcomePending; o <= concord.OutcomeAborted; o++ {
		if string(s) == o.String() {
			return o, true
		}
	}
	return 0, false
}

func decodePrepareResponseFast(b []byte, r *PrepareResponse, q asked) bool {
	p := jsonfast.NewScanner(b)
	ok := p.Object(func() (uint, bool) {
		if string(p.Key()) != "votes" {
			return 0, false
		}
		// A vote takes at least {"vote":"no"},
		r.Votes = make([]VoteReply, 0, q.capFor(p.Remaining(), 14))
		return 1, p.Array(func() bool {
			var v VoteReply
			ok := p.Object(func() (uint, bool) {
				var ok bool
				switch string(p.Key()) {
				case "id":
					v.ID, ok = q.id(&p, len(r.Votes))
					return 1, ok
				case "vote":
					v.Vote, ok = vote(&p)
					return 2, ok
				case "reason":
					v.Reason, ok = plain[string](&p)
					return 4, ok
				case "outcome":
					v.Outcome, ok = outcome(&p)
					return 8, ok
				}
				return 0, false
			})
			r.Votes = append(r.Votes, v)
			return ok
		})
	})
	return ok && p.End()
}

func decodeDecisionResponseFast(b []byte, r *DecisionResponse, q asked) bool {
	p := jsonfast.NewScanner(b)
	ok := p.Object(func() (uint, bool) {
		switch string(p.Key()) {
		case "acknowledged":
			// An id takes at least "",
			r.Acknowledged = make([]concord.TxID, 0, q.capFor(p.Remaining(), 3))
			return 1, p.Array(func() bool {
				id, ok := q.id(&p, len(r.Acknowledged))
				r.Acknowledged = append(r.Acknowledged, id)
				return ok
			})
		case "failed":
			r.Failed = make([]TxFailure, 0, 4)
			return 2, p.Array(func() bool {
				var f TxFailure
				ok := p.Object(func() (uint, bool) {
					var ok bool
					switch string(p.Key()) {
					case "id":
						f.ID, ok = plain[concord.TxID](&p)
						return 1, ok
					case "reason":
						f.Reason, ok = plain[string](&p)
						return 2, ok
					case "outcome":
						f.Outcome, ok = outcome(&p)
						return 4, ok
					}
					return 0, false
				})
				r.Failed = append(r.Failed, f)
				return ok
			})
		}
		return 0, false
	})
	return ok && p.End()
}
