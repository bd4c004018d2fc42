package participant_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/participanttest"
	"github.com/concordtx/concord/wire"
)

// TestHandlerRefusesBadRequests: every malformed request gets its status
// and an error that names the problem, and nothing reaches the resource.
func TestHandlerRefusesBadRequests(t *testing.T) {
	mem := participanttest.NewMemResource()
	g := newGated(t, mem, false)
	srv, err := participant.NewServer(participant.Options{Resource: g, MaxBodyBytes: 1024, MaxBatch: 4})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	defer srv.Close()

	post := func(path, body string) (int, string) {
		t.Helper()
		resp, err := http.Post(hs.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var er wire.ErrorResponse
		json.Unmarshal(b, &er)
		return resp.StatusCode, er.Error
	}
	// Before Start: 503.
	if code, msg := post(wire.PathCommit, `{"ids":["a"]}`); code != 503 || !strings.Contains(msg, "not started") {
		t.Fatalf("before Start: %d %q", code, msg)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path, body string
		code       int
		mention    string
	}{
		{wire.PathPrepare, `{"transactions":[`, 400, "malformed JSON"},
		{wire.PathPrepare, `{"transactions":[{"id":"a"}],"extra":1}`, 400, "extra"},
		{wire.PathPrepare, `{"transactions":[]}`, 400, "empty batch"},
		{wire.PathPrepare, `{}`, 400, "empty batch"},
		{wire.PathPrepare, `{"transactions":[{"id":"a b"}]}`, 400, "transactions[0].id"},
		{wire.PathPrepare, `{"transactions":[{"id":""}]}`, 400, "empty"},
		{wire.PathPrepare, `{"transactions":[{"id":"a"},{"id":".."}]}`, 400, "made only of dots"}, // a new id: the strict check
		{wire.PathPrepare, `{"coordinator":"ftp://x","transactions":[{"id":"a"}]}`, 400, "coordinator"},
		{wire.PathPrepare, `{"transactions":[{"id":"a"},{"id":"b"},{"id":"c"},{"id":"d"},{"id":"e"}]}`, 400, "at most 4"},
		{wire.PathPrepare, `{"transactions":[{"id":"a","payload":"` + strings.Repeat("x", 2000) + `"}]}`, 413, "too large"},
		{wire.PathPrepare, `{"transactions":[{"id":"a"}]} {}`, 400, "after"},
		{wire.PathCommit, `{"ids":[]}`, 400, "empty batch"},
		{wire.PathCommit, `{"ids":["ok","bad/id"]}`, 400, "ids[1]"},
		{wire.PathCommit, `{"ids":["a"],"deadlines_ms":[1,2]}`, 400, "2 deadlines_ms for 1 ids"},
		{wire.PathAbort, `{"ids":null}`, 400, "empty batch"},
		{wire.PathAbort, `[]`, 400, "malformed JSON"},
		{wire.PathAbort, ``, 400, "empty body"},
	} {
		code, msg := post(c.path, c.body)
		if code != c.code || !strings.Contains(msg, c.mention) {
			t.Errorf("POST %s %.60q = %d %q; want %d mentioning %q", c.path, c.body, code, msg, c.code, c.mention)
		}
	}
	for _, path := range []string{wire.PathPrepare, wire.PathCommit, wire.PathAbort} {
		resp, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
			t.Errorf("GET %s = %d (Allow %q), want 405", path, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
	if calls := g.callList(); len(calls) != 0 {
		t.Fatalf("bad requests reached the resource: %v", calls)
	}
	// And a good one still works.
	if code, msg := post(wire.PathPrepare, `{"transactions":[{"id":"a","payload":{"n":1}}]}`); code != 200 {
		t.Fatalf("good prepare: %d %q", code, msg)
	}
}
