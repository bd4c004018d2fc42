package wire

import (
	"slices"
	"strconv"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/jsonfast"
)

// appendSubmitResponse appends r as json.Marshal encodes it, and reports
// whether it could: every string must be plain (printable ASCII that JSON
// writes as is) and every vote and outcome known; otherwise the caller uses
// json.Marshal. The answer to every submit goes this way.
func appendSubmitResponse(b []byte, r *SubmitResponse) ([]byte, bool) {
	// Past the last known value, MarshalText fails, and json.Marshal with it.
	if r.Outcome > concord.OutcomeAborted || !jsonfast.IsPlain(string(r.ID)) || !jsonfast.IsPlain(r.Reason) {
		return b, false
	}
	b = append(b, `{"id":"`...)
	b = append(b, r.ID...)
	b = append(b, `","outcome":"`...)
	b = append(b, r.Outcome.String()...)
	b = append(b, '"')
	if r.Reason != "" {
		b = append(b, `,"reason":"`...)
		b = append(b, r.Reason...)
		b = append(b, '"')
	}
	if r.Branches == nil {
		return append(b, `,"branches":null}`...), true
	}
	b = append(b, `,"branches":[`...)
	for i, br := range r.Branches {
		if br.Vote > concord.VoteUnreachable || !jsonfast.IsPlain(br.Participant) || !jsonfast.IsPlain(br.Reason) {
			return b, false
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"participant":"`...)
		b = append(b, br.Participant...)
		b = append(b, `","vote":"`...)
		b = append(b, br.Vote.String()...)
		b = append(b, '"')
		if br.Reason != "" {
			b = append(b, `,"reason":"`...)
			b = append(b, br.Reason...)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	return append(b, "]}"...), true
}

// appendPrepareRequest appends r as json.Marshal encodes it, and reports
// whether it could: strings must be plain and payloads compact JSON of
// printable ASCII without the characters json.Marshal escapes for HTML.
func appendPrepareRequest(b []byte, r *PrepareRequest) ([]byte, bool) {
	if !jsonfast.IsPlain(r.Coordinator) {
		return b, false
	}
	n := 40 + len(r.Coordinator)
	for _, tx := range r.Transactions {
		n += 40 + len(tx.ID) + len(tx.Payload)
	}
	b = slices.Grow(b, n) // one allocation for a batch of any size
	b = append(b, `{"coordinator":"`...)
	b = append(b, r.Coordinator...)
	if r.Transactions == nil {
		return append(b, `","transactions":null}`...), true
	}
	b = append(b, `","transactions":[`...)
	for i, tx := range r.Transactions {
		if !jsonfast.IsPlain(string(tx.ID)) || !jsonfast.IsCompactPlain(tx.Payload) {
			return b, false
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":"`...)
		b = append(b, tx.ID...)
		b = append(b, '"')
		if len(tx.Payload) > 0 {
			b = append(b, `,"payload":`...)
			b = append(b, tx.Payload...)
		}
		if tx.OnePhase {
			b = append(b, `,"one_phase":true`...)
		}
		if tx.DeadlineMS != 0 {
			b = append(b, `,"deadline_ms":`...)
			b = strconv.AppendInt(b, tx.DeadlineMS, 10)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...), true
}

// appendDecisionRequest appends DecisionRequest{IDs: ids, DeadlinesMS:
// deadlines} as json.Marshal encodes it, and reports whether it could:
// every id must be plain.
func appendDecisionRequest(b []byte, ids []concord.TxID, deadlines []int64) ([]byte, bool) {
	if ids == nil {
		b = append(b, `{"ids":null`...)
		return appendDeadlines(b, deadlines), true
	}
	n := 28 + 14*len(deadlines)
	for _, id := range ids {
		n += 3 + len(id)
	}
	b = slices.Grow(b, n)
	b = append(b, `{"ids":[`...)
	for i, id := range ids {
		if !jsonfast.IsPlain(string(id)) {
			return b, false
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, id...)
		b = append(b, '"')
	}
	return appendDeadlines(append(b, ']'), deadlines), true
}

// appendDeadlines ends a decision request: its deadlines_ms (omitted when
// empty) and the closing brace.
func appendDeadlines(b []byte, deadlines []int64) []byte {
	if len(deadlines) > 0 {
		b = append(b, `,"deadlines_ms":[`...)
		for i, d := range deadlines {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, d, 10)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendAnswer appends a participant's answer, a PrepareResponse or a
// DecisionResponse, as json.Marshal encodes it, and reports whether it
// could (plain strings, known votes and outcomes).
func appendAnswer(b []byte, v any) ([]byte, bool) {
	str := func(b []byte, key, s string, omitEmpty bool) ([]byte, bool) {
		if s == "" && omitEmpty {
			return b, true
		}
		if !jsonfast.IsPlain(s) {
			return b, false
		}
		b = append(b, key...)
		b = append(b, s...)
		return append(b, '"'), true
	}
	ok := true
	switch r := v.(type) {
	case PrepareResponse:
		if r.Votes == nil {
			return append(b, `{"votes":null}`...), true
		}
		b = slices.Grow(b, 16+len(r.Votes)*64)
		b = append(b, `{"votes":[`...)
		for i, vr := range r.Votes {
			if vr.Vote > concord.VoteUnreachable || vr.Outcome > concord.OutcomeAborted {
				return b, false
			}
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = str(b, `{"id":"`, string(vr.ID), false); !ok {
				return b, false
			}
			b = append(b, `,"vote":"`...)
			b = append(b, vr.Vote.String()...)
			b = append(b, '"')
			if b, ok = str(b, `,"reason":"`, vr.Reason, true); !ok {
				return b, false
			}
			if vr.Outcome != concord.OutcomePending { // omitempty: pending is the zero value
				b = append(b, `,"outcome":"`...)
				b = append(b, vr.Outcome.String()...)
				b = append(b, '"')
			}
			b = append(b, '}')
		}
		return append(b, "]}"...), true
	case DecisionResponse:
		if len(r.Forgotten) > 0 {
			return b, false // rare: json.Marshal writes it
		}
		if r.Acknowledged == nil {
			b = append(b, `{"acknowledged":null`...)
		} else {
			b = slices.Grow(b, 32+len(r.Acknowledged)*32)
			b = append(b, `{"acknowledged":[`...)
			for i, id := range r.Acknowledged {
				if i > 0 {
					b = append(b, ',')
				}
				if b, ok = str(b, `"`, string(id), false); !ok {
					return b, false
				}
			}
			b = append(b, ']')
		}
		if len(r.Failed) > 0 { // omitempty
			b = append(b, `,"failed":[`...)
			for i, f := range r.Failed {
				if f.Outcome > concord.OutcomeAborted {
					return b, false
				}
				if i > 0 {
					b = append(b, ',')
				}
				if b, ok = str(b, `{"id":"`, string(f.ID), false); !ok {
					return b, false
				}
				if b, ok = str(b, `,"reason":"`, f.Reason, false); !ok {
					return b, false
				}
				if f.Outcome != concord.OutcomePending {
					b = append(b, `,"outcome":"`...)
					b = append(b, f.Outcome.String()...)
					b = append(b, '"')
				}
				b = append(b, '}')
			}
			b = append(b, ']')
		}
		return append(b, '}'), true
	}
	return b, false
}
