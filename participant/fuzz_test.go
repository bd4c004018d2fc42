package participant_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/participanttest"
	"github.com/concordtx/concord/wire"
)

// FuzzHandler posts arbitrary bodies to every endpoint: the answer is 200,
// 400 or 413, never a panic, a hang or a server error.
func FuzzHandler(f *testing.F) {
	srv, err := participant.NewServer(participant.Options{Resource: participanttest.NewMemResource(),
		Clock: participanttest.NewFakeClock(time.Unix(0, 0)), MaxBodyBytes: 4096, MaxBatch: 8})
	if err != nil {
		f.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close() })
	h := srv.Handler()
	for _, seed := range []string{
		`{"coordinator":"http://127.0.0.1:1","transactions":[{"id":"a","payload":{"n":1}}]}`,
		`{"transactions":[{"id":"b","one_phase":true}]}`,
		`{"ids":["a","b"]}`,
		`{"ids":[""]}`,
		`{"transactions":[{"id":"x","payload":{"vote":"no"}}]}`,
		`not json`,
	} {
		for path := range 3 {
			f.Add(uint8(path), []byte(seed))
		}
	}
	paths := []string{wire.PathPrepare, wire.PathCommit, wire.PathAbort}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		req := httptest.NewRequest(http.MethodPost, paths[int(which)%3], bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
		defer cancel()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req.WithContext(ctx))
		switch rec.Code {
		case 200, 400, 413:
		default:
			t.Fatalf("POST %s %q = %d %s", req.URL.Path, body, rec.Code, rec.Body.String())
		}
	})
}
