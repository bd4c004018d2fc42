package wire

import (
	"bytes"
	"encoding/json"
	"io"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/jsonfast"
)

// The submit request is the body the coordinator decodes once per
// transaction, and encoding/json's strict decoding of it costs about twenty
// allocations and as many microseconds under load as the rest of the
// handler; a PREPARE or decision batch is what every participant decodes
// once per batch (16 PREPAREs: 19.4 us with encoding/json, 4.8 us by hand).
// The fast decoders here read the plain form clients and the coordinator
// send with a jsonfast.Scanner (lowercase keys each at most once, strings
// of printable ASCII without escapes, integer timeouts, payloads that are
// valid JSON and not null) and decline anything else, which then goes to
// encoding/json: what they accept, they decode exactly as decodeStrict
// would (FuzzSubmitDecodeFast and FuzzProtocolDecodeFast check it).

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

// decodeRead decodes a whole body from r into v as decodeStrict does,
// through fast when fast takes it: then v holds what fast decoded into a
// zero T.
func decodeRead[T any](r io.Reader, sizeHint int64, v *T, fast func([]byte, *T) bool) error {
	b, err := readAll(r, sizeHint)
	if err != nil {
		// Replay what was read, then the failure, so that the error is
		// the one decodeStrict gives reading r itself.
		return decodeStrict(io.MultiReader(bytes.NewReader(b), errReader{err}), v)
	}
	// fast decodes into v itself (a T of its own would go to the heap);
	// when it declines, v is as it was for decodeStrict.
	was := *v
	var zero T
	*v = zero
	if fast(b, v) {
		return nil
	}
	*v = was
	return decodeStrict(bytes.NewReader(b), v)
}

// decodeSubmitFast decodes b into req if b has the plain form, and
// reports whether it did; req is only meaningful then.
func decodeSubmitFast(b []byte, req *SubmitRequest) bool {
	p := jsonfast.NewScanner(b)
	ok := p.Object(func() (uint, bool) {
		switch string(p.Key()) {
		case "id":
			s, ok := p.Plain()
			req.ID = concord.TxID(s)
			return 1, ok
		case "timeout_ms":
			v, ok := p.Int()
			req.TimeoutMS = v
			return 2, ok
		case "branches":
			req.Branches = make([]Branch, 0, 4)
			return 4, p.Array(func() bool {
				var br Branch
				ok := p.Object(func() (uint, bool) {
					switch string(p.Key()) {
					case "participant":
						s, ok := p.Plain()
						br.Participant = string(s)
						return 1, ok
					case "payload":
						v, ok := p.Value()
						br.Payload = json.RawMessage(v)
						return 2, ok
					}
					return 0, false
				})
				req.Branches = append(req.Branches, br)
				return ok
			})
		}
		return 0, false
	})
	return ok && p.End()
}

// decodePrepareFast decodes a participant's PREPARE batch in the plain
// form the coordinator writes, as decodeSubmitFast does a submit body.
// A payload is a slice of b, which must then stay unchanged.
func decodePrepareFast(b []byte, req *PrepareRequest) bool {
	p := jsonfast.NewScanner(b)
	ok := p.Object(func() (uint, bool) {
		switch string(p.Key()) {
		case "coordinator":
			s, ok := p.Plain()
			req.Coordinator = string(s)
			return 1, ok
		case "transactions":
			// Room for a usual batch, no more than fit (each takes at least {"id":""}).
			req.Transactions = make([]PrepareTx, 0, min(16, p.Remaining()/9+1))
			return 2, p.Array(func() bool {
				var tx PrepareTx
				ok := p.Object(func() (uint, bool) {
					var ok bool
					switch string(p.Key()) {
					case "id":
						tx.ID, ok = plain[concord.TxID](&p)
						return 1, ok
					case "payload":
						var v []byte
						v, ok = p.Value()
						tx.Payload = json.RawMessage(v)
						return 2, ok
					case "one_phase":
						tx.OnePhase, ok = p.Bool()
						return 4, ok
					case "deadline_ms":
						tx.DeadlineMS, ok = p.Int()
						return 8, ok
					}
					return 0, false
				})
				req.Transactions = append(req.Transactions, tx)
				return ok
			})
		}
		return 0, false
	})
	return ok && p.End()
}

// decodeDecisionFast decodes a COMMIT or ABORT batch in the plain form.
func decodeDecisionFast(b []byte, req *DecisionRequest) bool {
	p := jsonfast.NewScanner(b)
	ok := p.Object(func() (uint, bool) {
		switch string(p.Key()) {
		case "ids":
			// Room for a usual batch, no more than fit (each takes at least "",).
			req.IDs = make([]concord.TxID, 0, min(16, p.Remaining()/3+1))
			return 1, p.Array(func() bool {
				s, ok := p.Plain()
				req.IDs = append(req.IDs, concord.TxID(s))
				return ok
			})
		case "deadlines_ms":
			req.DeadlinesMS = make([]int64, 0, min(16, p.Remaining()/2+1))
			return 2, p.Array(func() bool {
				v, ok := p.Int()
				req.DeadlinesMS = append(req.DeadlinesMS, v)
				return ok
			})
		}
		return 0, false
	})
	return ok && p.End()
}
