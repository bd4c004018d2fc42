package wire

import (
	"encoding/json"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/jsonfast"
)

// The coordinator reads a participant's answer once per batch, with one
// entry per transaction: decodeAnswer reads the plain form participants
// write (lowercase keys each at most once, plain ASCII strings, known vote
// and outcome names) directly and leaves anything else to json.Unmarshal,
// decoding exactly as it would (FuzzAnswerDecodeFast checks it).

// decodeAnswer decodes b into out as json.Unmarshal does.
func decodeAnswer(b []byte, out any) error {
	switch v := out.(type) {
	case *PrepareResponse:
		var r PrepareResponse
		if decodePrepareResponseFast(b, &r) {
			*v = r
			return nil
		}
	case *DecisionResponse:
		var r DecisionResponse
		if decodeDecisionResponseFast(b, &r) {
			*v = r
			return nil
		}
	}
	return json.Unmarshal(b, out)
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

func decodePrepareResponseFast(b []byte, r *PrepareResponse) bool {
	p := jsonfast.NewScanner(b)
	ok := p.Object(func() (uint, bool) {
		if string(p.Key()) != "votes" {
			return 0, false
		}
		r.Votes = make([]VoteReply, 0, 16)
		return 1, p.Array(func() bool {
			var v VoteReply
			ok := p.Object(func() (uint, bool) {
				var ok bool
				switch string(p.Key()) {
				case "id":
					v.ID, ok = plain[concord.TxID](&p)
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

func decodeDecisionResponseFast(b []byte, r *DecisionResponse) bool {
	p := jsonfast.NewScanner(b)
	ok := p.Object(func() (uint, bool) {
		switch string(p.Key()) {
		case "acknowledged":
			r.Acknowledged = make([]concord.TxID, 0, 16)
			return 1, p.Array(func() bool {
				s, ok := p.Plain()
				r.Acknowledged = append(r.Acknowledged, concord.TxID(s))
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
