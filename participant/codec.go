package participant

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/wire"
)

// The protocol bodies the coordinator sends are decoded, and the answers
// encoded, by hand in their common form: plain ASCII strings, payloads
// that are JSON objects, no reasons or outcomes in the answer. Anything
// else goes through encoding/json (wire.DecodeRequest, wire.WriteJSON), so
// the fast path only ever accepts what the strict decoder accepts, as the
// same value, and writes what encoding/json writes.

// readBody reads r's body, at most max bytes.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	size := int64(512)
	if r.ContentLength > 0 && r.ContentLength <= max {
		size = r.ContentLength + 1 // room to see the end without growing
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, max))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, fmt.Errorf("%w: more than %d bytes", wire.ErrBodyTooLarge, tooLarge.Limit)
	case err != nil:
		return nil, fmt.Errorf("%w: %v", wire.ErrBadJSON, err)
	}
	return buf.Bytes(), nil
}

// decodeBody decodes r's body into v: with fast if it takes the body,
// else strictly with wire.DecodeRequest. A refused body is answered (400
// or 413) and false returned.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any, fast func([]byte) bool) bool {
	body, err := readBody(w, r, s.opts.MaxBodyBytes)
	if err != nil {
		s.refuseBody(w, err)
		return false
	}
	if fast(body) {
		return true
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return s.decode(w, r, v)
}

// lexer reads the restricted JSON the fast decoders take.
type lexer struct {
	b []byte
	i int
}

func (l *lexer) space() {
	for l.i < len(l.b) {
		switch l.b[l.i] {
		case ' ', '\t', '\n', '\r':
			l.i++
		default:
			return
		}
	}
}

// next skips whitespace and consumes c if it comes next.
func (l *lexer) next(c byte) bool {
	l.space()
	if l.i < len(l.b) && l.b[l.i] == c {
		l.i++
		return true
	}
	return false
}

// peek skips whitespace and returns the next byte, or 0 at the end.
func (l *lexer) peek() byte {
	l.space()
	if l.i < len(l.b) {
		return l.b[l.i]
	}
	return 0
}

// str reads a string of printable ASCII without escapes, whose JSON
// decoding is its bytes.
func (l *lexer) str() ([]byte, bool) {
	if !l.next('"') {
		return nil, false
	}
	start := l.i
	for ; l.i < len(l.b); l.i++ {
		switch c := l.b[l.i]; {
		case c == '"':
			l.i++
			return l.b[start : l.i-1], true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// end reports whether only whitespace is left.
func (l *lexer) end() bool {
	l.space()
	return l.i == len(l.b)
}

// maxDepth bounds the nesting of a payload the fast path takes.
const maxDepth = 32

// value skips one JSON value made of objects, arrays, strings str takes,
// numbers, true, false and null, nested at most depth deep, and checks it
// is valid JSON.
func (l *lexer) value(depth int) bool {
	if depth <= 0 {
		return false
	}
	switch l.peek() {
	case '{':
		l.i++
		if l.next('}') {
			return true
		}
		for {
			if _, ok := l.str(); !ok || !l.next(':') || !l.value(depth-1) {
				return false
			}
			if l.next('}') {
				return true
			}
			if !l.next(',') {
				return false
			}
		}
	case '[':
		l.i++
		if l.next(']') {
			return true
		}
		for {
			if !l.value(depth - 1) {
				return false
			}
			if l.next(']') {
				return true
			}
			if !l.next(',') {
				return false
			}
		}
	case '"':
		_, ok := l.str()
		return ok
	case 't':
		return l.literal("true")
	case 'f':
		return l.literal("false")
	case 'n':
		return l.literal("null")
	default:
		return l.number()
	}
}

func (l *lexer) literal(word string) bool {
	if !bytes.HasPrefix(l.b[l.i:], []byte(word)) {
		return false
	}
	l.i += len(word)
	return true
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (l *lexer) number() bool {
	digits := func() int {
		n := 0
		for l.i < len(l.b) && l.b[l.i] >= '0' && l.b[l.i] <= '9' {
			l.i++
			n++
		}
		return n
	}
	if l.i < len(l.b) && l.b[l.i] == '-' {
		l.i++
	}
	switch {
	case l.i < len(l.b) && l.b[l.i] == '0':
		l.i++
	case digits() == 0:
		return false
	}
	if l.i < len(l.b) && l.b[l.i] == '.' {
		l.i++
		if digits() == 0 {
			return false
		}
	}
	if l.i < len(l.b) && (l.b[l.i] == 'e' || l.b[l.i] == 'E') {
		l.i++
		if l.i < len(l.b) && (l.b[l.i] == '+' || l.b[l.i] == '-') {
			l.i++
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}

// decodePrepareFast decodes a PrepareRequest whose members are
// "coordinator" and "transactions", each at most once, whose transactions
// have "id", an optional object "payload" and an optional boolean
// "one_phase", each at most once, with every string plain ASCII. A payload
// is a slice of body, which must then stay unchanged.
func decodePrepareFast(body []byte, req *wire.PrepareRequest) bool {
	l := &lexer{b: body}
	var out wire.PrepareRequest
	var haveCoord, haveTxs bool
	if !l.next('{') {
		return false
	}
	for first := true; !l.next('}'); first = false {
		if !first && !l.next(',') {
			return false
		}
		key, ok := l.str()
		if !ok || !l.next(':') {
			return false
		}
		switch {
		case string(key) == "coordinator" && !haveCoord:
			v, ok := l.str()
			if !ok {
				return false
			}
			out.Coordinator, haveCoord = string(v), true
		case string(key) == "transactions" && !haveTxs:
			if out.Transactions, ok = l.prepareTxs(); !ok {
				return false
			}
			haveTxs = true
		default:
			return false
		}
	}
	if !l.end() {
		return false
	}
	*req = out
	return true
}

func (l *lexer) prepareTxs() ([]wire.PrepareTx, bool) {
	if !l.next('[') {
		return nil, false
	}
	// Each transaction takes at least {"id":""}: no more than that many.
	txs := make([]wire.PrepareTx, 0, min(64, (len(l.b)-l.i)/9+1))
	if l.next(']') {
		return txs, true
	}
	for {
		tx, ok := l.prepareTx()
		if !ok {
			return nil, false
		}
		txs = append(txs, tx)
		if l.next(']') {
			return txs, true
		}
		if !l.next(',') {
			return nil, false
		}
	}
}

func (l *lexer) prepareTx() (wire.PrepareTx, bool) {
	var tx wire.PrepareTx
	var haveID, havePayload, haveOnePhase bool
	if !l.next('{') {
		return tx, false
	}
	for first := true; !l.next('}'); first = false {
		if !first && !l.next(',') {
			return tx, false
		}
		key, ok := l.str()
		if !ok || !l.next(':') {
			return tx, false
		}
		switch {
		case string(key) == "id" && !haveID:
			v, ok := l.str()
			if !ok {
				return tx, false
			}
			tx.ID, haveID = concord.TxID(v), true
		case string(key) == "payload" && !havePayload:
			if l.peek() != '{' {
				return tx, false
			}
			start := l.i
			if !l.value(maxDepth) {
				return tx, false
			}
			tx.Payload, havePayload = capped(l.b[start:l.i]), true
		case string(key) == "one_phase" && !haveOnePhase:
			switch l.peek() {
			case 't':
				tx.OnePhase = true
				ok = l.literal("true")
			case 'f':
				ok = l.literal("false")
			default:
				ok = false
			}
			if !ok {
				return tx, false
			}
			haveOnePhase = true
		default:
			return tx, false
		}
	}
	return tx, true
}

// capped caps a payload slice so that appending to it cannot overwrite the
// rest of the request body.
func capped(b []byte) []byte { return b[:len(b):len(b)] }

// decodeDecisionFast decodes a DecisionRequest of the form {"ids": [...]}
// with plain ASCII ids.
func decodeDecisionFast(b []byte, req *wire.DecisionRequest) bool {
	l := &lexer{b: b}
	if !l.next('{') {
		return false
	}
	key, ok := l.str()
	if !ok || string(key) != "ids" || !l.next(':') || !l.next('[') {
		return false
	}
	// Each id takes at least "",: no more than that many.
	ids := make([]concord.TxID, 0, min(64, (len(b)-l.i)/3+1))
	if !l.next(']') {
		for {
			v, ok := l.str()
			if !ok {
				return false
			}
			ids = append(ids, concord.TxID(v))
			if l.next(']') {
				break
			}
			if !l.next(',') {
				return false
			}
		}
	}
	if !l.next('}') || !l.end() {
		return false
	}
	req.IDs = ids
	return true
}

// plainJSON reports whether s encodes in JSON as itself between quotes
// (encoding/json escapes control characters, quotes, backslashes, <, >, &
// and some non-ASCII).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// writePrepareResponse answers 200 with resp as wire.WriteJSON would.
func writePrepareResponse(w http.ResponseWriter, resp wire.PrepareResponse) {
	if resp.Votes == nil {
		wire.WriteJSON(w, http.StatusOK, resp)
		return
	}
	b := make([]byte, 0, 16+len(resp.Votes)*48)
	b = append(b, `{"votes":[`...)
	for i, v := range resp.Votes {
		if v.Reason != "" || v.Outcome != 0 || int(v.Vote) >= len(voteText) || !plainJSON(string(v.ID)) {
			wire.WriteJSON(w, http.StatusOK, resp)
			return
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":"`...)
		b = append(b, v.ID...)
		b = append(b, `","vote":"`...)
		b = append(b, voteText[v.Vote]...)
		b = append(b, `"}`...)
	}
	b = append(b, "]}\n"...)
	writeJSONBytes(w, b)
}

// voteText holds the JSON text of each vote that is plain.
var voteText = func() []string {
	var out []string
	for v := concord.Vote(0); ; v++ {
		t, err := v.MarshalText()
		if err != nil || !plainJSON(string(t)) {
			return out
		}
		out = append(out, string(t))
	}
}()

// writeDecisionResponse answers 200 with resp as wire.WriteJSON would.
func writeDecisionResponse(w http.ResponseWriter, resp wire.DecisionResponse) {
	if len(resp.Failed) > 0 || resp.Acknowledged == nil {
		wire.WriteJSON(w, http.StatusOK, resp)
		return
	}
	b := make([]byte, 0, 24+len(resp.Acknowledged)*24)
	b = append(b, `{"acknowledged":[`...)
	for i, id := range resp.Acknowledged {
		if !plainJSON(string(id)) {
			wire.WriteJSON(w, http.StatusOK, resp)
			return
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, id...)
		b = append(b, '"')
	}
	b = append(b, "]}\n"...)
	writeJSONBytes(w, b)
}

func writeJSONBytes(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}
