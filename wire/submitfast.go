package wire

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"

	"github.com/concordtx/concord"
)

// The submit request is the body the coordinator decodes once per
// transaction, and encoding/json's strict decoding of it costs about twenty
// allocations and as many microseconds under load as the rest of the
// handler. decodeSubmitFast reads the plain form clients send (lowercase
// keys each at most once, strings of printable ASCII without escapes, an
// integer timeout, payloads that are valid JSON and not null) and declines
// anything else, which then goes to encoding/json: what it accepts, it
// decodes exactly as decodeStrict would (FuzzSubmitDecodeFast checks it).

// readAll reads r to its end. When r fails (a body past its limit, a
// broken connection), it returns what it read and the error.
func readAll(r io.Reader, sizeHint int64) ([]byte, error) {
	n := 512
	if sizeHint > 0 && sizeHint < 1<<20 {
		n = int(sizeHint) + 1 // +1: reading EOF needs no second allocation
	}
	b := make([]byte, 0, n)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		k, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+k]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// errReader returns err once its bytes are read.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// decodeSubmit decodes a whole submit body from r as decodeStrict does.
func decodeSubmit(r io.Reader, sizeHint int64, req *SubmitRequest) error {
	return decodeRead(r, sizeHint, req, decodeSubmitFast)
}

// decodeRead decodes a whole body from r into v as decodeStrict does,
// through fast when fast takes it.
func decodeRead[T any](r io.Reader, sizeHint int64, v *T, fast func([]byte, *T) bool) error {
	b, err := readAll(r, sizeHint)
	if err != nil {
		// Replay what was read, then the failure, so that the error is
		// the one decodeStrict gives reading r itself.
		return decodeStrict(io.MultiReader(bytes.NewReader(b), errReader{err}), v)
	}
	var x T
	if fast(b, &x) {
		*v = x
		return nil
	}
	return decodeStrict(bytes.NewReader(b), v)
}

// fastParser scans a JSON text for decodeSubmitFast.
type fastParser struct {
	b []byte
	i int
}

func (p *fastParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// eat skips white space and then c, reporting whether c was there.
func (p *fastParser) eat(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// plain reads a string of printable ASCII without escapes.
func (p *fastParser) plain() ([]byte, bool) {
	p.ws()
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false
	}
	start := p.i + 1
	for j := start; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			p.i = j + 1
			return p.b[start:j], true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// int reads an integer of at most 18 digits.
func (p *fastParser) int() (int64, bool) {
	p.ws()
	start := p.i
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	digits := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	n := p.i - digits
	if n == 0 || n > 18 || (n > 1 && p.b[digits] == '0') {
		return 0, false
	}
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	v, err := strconv.ParseInt(string(p.b[start:p.i]), 10, 64)
	return v, err == nil
}

// value reads one JSON value (not null) and returns its text.
func (p *fastParser) value() ([]byte, bool) {
	p.ws()
	start, depth := p.i, 0
scan:
	for p.i < len(p.b) {
		closed := false // a string, object or array just ended
		switch p.b[p.i] {
		case '"':
			p.i++
			for p.i < len(p.b) && p.b[p.i] != '"' {
				if p.b[p.i] == '\\' {
					p.i++
				}
				p.i++
			}
			if p.i >= len(p.b) {
				return nil, false
			}
			p.i++
			closed = true
		case '{', '[':
			depth++
			p.i++
		case '}', ']':
			if depth == 0 {
				break scan // the end of a number or literal
			}
			depth--
			p.i++
			closed = true
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				break scan
			}
			p.i++
		default:
			p.i++
		}
		if closed && depth == 0 {
			break
		}
	}
	v := p.b[start:p.i]
	if len(v) == 0 || string(v) == "null" || !json.Valid(v) {
		return nil, false
	}
	return v, true
}

// members reads the members of an object whose '{' is read, calling member
// with each key; member reads the value. Keys must be plain and not repeat
// (seen holds a bit per key index that member returns).
func (p *fastParser) members(member func(key []byte) (bit uint, ok bool)) bool {
	if p.eat('}') {
		return true
	}
	var seen uint
	for {
		key, ok := p.plain()
		if !ok || !p.eat(':') {
			return false
		}
		bit, ok := member(key)
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		if p.eat('}') {
			return true
		}
		if !p.eat(',') {
			return false
		}
	}
}

// decodeSubmitFast decodes b into req if b has the plain form, and
// reports whether it did; req is only meaningful then.
func decodeSubmitFast(b []byte, req *SubmitRequest) bool {
	p := &fastParser{b: b}
	if !p.eat('{') {
		return false
	}
	ok := p.members(func(key []byte) (uint, bool) {
		switch string(key) {
		case "id":
			s, ok := p.plain()
			req.ID = concord.TxID(s)
			return 1, ok
		case "timeout_ms":
			v, ok := p.int()
			req.TimeoutMS = v
			return 2, ok
		case "branches":
			return 4, p.branches(req)
		}
		return 0, false
	})
	if !ok {
		return false
	}
	p.ws()
	return p.i == len(p.b)
}

func (p *fastParser) branches(req *SubmitRequest) bool {
	if !p.eat('[') {
		return false
	}
	req.Branches = make([]Branch, 0, 4)
	if p.eat(']') {
		return true
	}
	for {
		if !p.eat('{') {
			return false
		}
		var br Branch
		ok := p.members(func(key []byte) (uint, bool) {
			switch string(key) {
			case "participant":
				s, ok := p.plain()
				br.Participant = string(s)
				return 1, ok
			case "payload":
				v, ok := p.value()
				br.Payload = json.RawMessage(v)
				return 2, ok
			}
			return 0, false
		})
		if !ok {
			return false
		}
		req.Branches = append(req.Branches, br)
		if p.eat(']') {
			return true
		}
		if !p.eat(',') {
			return false
		}
	}
}

// bool reads true or false.
func (p *fastParser) bool() (bool, bool) {
	p.ws()
	switch {
	case bytes.HasPrefix(p.b[p.i:], []byte("true")):
		p.i += 4
		return true, true
	case bytes.HasPrefix(p.b[p.i:], []byte("false")):
		p.i += 5
		return false, true
	}
	return false, false
}

// decodePrepareFast decodes a participant's PREPARE batch in the plain
// form the coordinator writes, as decodeSubmitFast does a submit body.
func decodePrepareFast(b []byte, req *PrepareRequest) bool {
	p := &fastParser{b: b}
	if !p.eat('{') {
		return false
	}
	ok := p.members(func(key []byte) (uint, bool) {
		switch string(key) {
		case "coordinator":
			s, ok := p.plain()
			req.Coordinator = string(s)
			return 1, ok
		case "transactions":
			req.Transactions = make([]PrepareTx, 0, 16)
			return 2, p.array(func() bool {
				if !p.eat('{') {
					return false
				}
				var tx PrepareTx
				ok := p.members(func(key []byte) (uint, bool) {
					var ok bool
					switch string(key) {
					case "id":
						var s []byte
						s, ok = p.plain()
						tx.ID = concord.TxID(s)
						return 1, ok
					case "payload":
						var v []byte
						v, ok = p.value()
						tx.Payload = json.RawMessage(v)
						return 2, ok
					case "one_phase":
						tx.OnePhase, ok = p.bool()
						return 4, ok
					}
					return 0, false
				})
				req.Transactions = append(req.Transactions, tx)
				return ok
			})
		}
		return 0, false
	})
	return ok && p.end()
}

// decodeDecisionFast decodes a COMMIT or ABORT batch in the plain form.
func decodeDecisionFast(b []byte, req *DecisionRequest) bool {
	p := &fastParser{b: b}
	if !p.eat('{') {
		return false
	}
	ok := p.members(func(key []byte) (uint, bool) {
		if string(key) != "ids" {
			return 0, false
		}
		req.IDs = make([]concord.TxID, 0, 16)
		return 1, p.array(func() bool {
			s, ok := p.plain()
			req.IDs = append(req.IDs, concord.TxID(s))
			return ok
		})
	})
	return ok && p.end()
}
