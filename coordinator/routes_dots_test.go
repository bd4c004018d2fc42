package coordinator_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/concordtx/concord/wire"
)

// An id made only of dots is refused at submission, and no route of the
// API serves a path with an empty, "." or ".." segment (escaped or not) as
// another path: ServeMux redirected GET /v1/transactions/./outcome to the
// status of the transaction "outcome", and URL libraries drop dot
// segments before sending. Escaped slashes and other bytes outside the id
// grammar are refused too, never routed elsewhere.
func TestDotAndEscapedIDsOnEveryRoute(t *testing.T) {
	e := newEnv(t, "flights")
	e.start()
	// A transaction whose id the redirects would land on.
	e.submit(wire.SubmitRequest{ID: "outcome", Branches: branches("flights")})

	for _, id := range []string{".", "..", "..."} {
		b, _ := json.Marshal(wire.SubmitRequest{ID: "x", Branches: branches("flights")})
		body := strings.Replace(string(b), `"id":"x"`, `"id":"`+id+`"`, 1)
		if code, answer := e.post(wire.PathTransactions, body); code != http.StatusBadRequest || !strings.Contains(string(answer), "dots") {
			t.Errorf("submit id %q: %d %s, want 400 naming the dots", id, code, answer)
		}
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ids := []string{".", "..", "%2E", "%2e%2E", "", "a%2Fb", "%2F", "a%20b", "%00", "a%25b", "%C3%A9"}
	routes := []struct{ method, suffix string }{
		{http.MethodGet, ""}, {http.MethodGet, "/outcome"}, {http.MethodGet, "/timeline"},
		{http.MethodPost, "/retry"}, {http.MethodPost, "/abort"},
	}
	for _, id := range ids {
		for _, rt := range routes {
			url := e.url + wire.PathTransactions + "/" + id + rt.suffix
			req, err := http.NewRequest(rt.method, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			if rt.method == http.MethodPost {
				req.Header.Set("Content-Type", "application/json") // else 415 before any route
			}
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", rt.method, url, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s %s: status %d, want 400 (or 404 for no route)", rt.method, url, resp.StatusCode)
			}
		}
	}
}
