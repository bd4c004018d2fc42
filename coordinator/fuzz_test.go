package coordinator

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/wal/memfs"
	"github.com/concordtx/concord/wire"
)

// fakeTransport is a Transport of function fields; nil fields vote yes and
// acknowledge everything.
type fakeTransport struct {
	prepare func(participant string, req wire.PrepareRequest) (wire.PrepareResponse, error)
}

var _ Transport = (*fakeTransport)(nil)

func (f *fakeTransport) Prepare(_ context.Context, participant string, req wire.PrepareRequest) (wire.PrepareResponse, error) {
	if f.prepare != nil {
		return f.prepare(participant, req)
	}
	var resp wire.PrepareResponse
	for _, tx := range req.Transactions {
		v := wire.VoteReply{ID: tx.ID, Vote: concord.VoteYes}
		if tx.OnePhase {
			v.Outcome = concord.OutcomeCommitted
		}
		resp.Votes = append(resp.Votes, v)
	}
	return resp, nil
}

func (f *fakeTransport) Commit(_ context.Context, _ string, req wire.DecisionRequest) (wire.DecisionResponse, error) {
	return wire.DecisionResponse{Acknowledged: req.IDs}, nil
}

func (f *fakeTransport) Abort(_ context.Context, _ string, req wire.DecisionRequest) (wire.DecisionResponse, error) {
	return wire.DecisionResponse{Acknowledged: req.IDs}, nil
}

// The request record decoder refuses every malformed input with an error,
// never a panic, and round-trips what it encodes.
func FuzzDecodeRequest(f *testing.F) {
	f.Add(encodeRequest("trip-1", digest{1, 2, 3}, "", false))
	f.Add(encodeRequest("trip-1", digest{1, 2, 3}, "alice", false))
	f.Add(encodeRequest("trip-1", digest{1, 2, 3}, "", true))
	f.Add(encodeRequest("trip-1", digest{1, 2, 3}, "alice", true))
	f.Add([]byte{})
	f.Add([]byte{requestVersion, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{requestVersion, 3, 'a', 'b'})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, d, owner, legacy, err := decodeRequest(b)
		if err != nil {
			return
		}
		if !bytes.Equal(encodeRequest(id, d, owner, legacy), b) {
			t.Fatalf("decoded %q %x %q from %x, which encodes differently", id, d, owner, b)
		}
	})
}

// Any body posted to the submit endpoint gets a JSON answer with a status
// from the documented set, never a panic or a hang.
func FuzzSubmitBody(f *testing.F) {
	for _, s := range []string{
		`{"branches":[{"participant":"flights","payload":{"sku":"FL100","quantity":2}}]}`,
		`{"id":"x","timeout_ms":100,"branches":[{"participant":"flights"},{"participant":"hotels"}]}`,
		`{"id":"x","branches":[{"participant":"flights"}]}`,
		`{"branches":[]}`, `{"branches":[{"participant":"flights"},{"participant":"flights"}]}`,
		`{"id":"a b","branches":[{"participant":"flights"}]}`, `{"timeout_ms":-5}`, `[`, ``, `null`, `{"branches":null}`,
	} {
		f.Add([]byte(s))
	}
	c, err := New(Options{Dir: "/c", FS: memfs.New(), Transport: &fakeTransport{},
		Participants: map[string]string{"flights": "http://127.0.0.1:1", "hotels": "http://127.0.0.1:2"},
		MaxBodyBytes: 1 << 12, AnswerGrace: time.Second})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { c.Close() })
	h := c.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, wire.PathTransactions, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 202, 400, 409, 413:
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("content type %q", ct)
		}
	})
}
