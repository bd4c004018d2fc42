package wire_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/concordtx/concord/wire"
)

// canned answers every request with one status and body.
type canned struct {
	status int
	body   []byte
}

func (c canned) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: c.status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(c.body)), ContentLength: int64(len(c.body))}, nil
}

// Any answer a peer sends, decoded as each of the answers Concord reads from
// outside (a participant's votes and acknowledgements, the coordinator's
// outcome, submit answer, status and list): Do never panics, a non-2xx
// answer is a *StatusError with a bounded message, and a 2xx answer either
// decodes or wraps ErrBadJSON.
func FuzzDo(f *testing.F) {
	for _, s := range []struct {
		code int
		body string
	}{
		{200, `{"votes":[{"id":"t","vote":"yes"}]}`}, {200, `{"acknowledged":["t"],"failed":[{"id":"u","reason":"x","outcome":"committed"}]}`},
		{200, `{"id":"t","outcome":"aborted"}`}, {200, `{"id":"t","outcome":"committed","branches":[{"participant":"f","vote":"no"}]}`},
		{500, `{"error":"boom"}`}, {413, `not json`}, {200, `{"votes":[{"vote":"maybe"}]}`}, {200, ``}, {204, ``}, {200, `[1,2`},
	} {
		f.Add(s.code, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, code int, body []byte) {
		if code < 100 || code > 999 {
			code = 200
		}
		hc := &http.Client{Transport: canned{code, body}}
		outs := []any{&wire.PrepareResponse{}, &wire.DecisionResponse{}, &wire.OutcomeResponse{}, &wire.SubmitResponse{}, &wire.TxStatus{}, &wire.TxList{}, nil}
		for _, out := range outs {
			err := wire.Do(context.Background(), hc, http.MethodPost, "http://127.0.0.1:1/x", map[string]string{"a": "b"}, out)
			var se *wire.StatusError
			switch {
			case code/100 != 2:
				if !errors.As(err, &se) || se.Code != code || len(se.Message) > 4096 {
					t.Fatalf("status %d: %v", code, err)
				}
			case err != nil && !errors.Is(err, wire.ErrBadJSON):
				t.Fatalf("2xx answer %q: error %v does not wrap ErrBadJSON", body, err)
			}
		}
	})
}
