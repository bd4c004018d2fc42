package travel

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
)

func queryServer(t *testing.T) (*httptest.Server, *MemStore) {
	t.Helper()
	stock, err := ParseInventory("FL100=120,FL200=40")
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewMemStore(stock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	(&queryHandler{service: Flights, store: st}).register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, st
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestHTTPInventory(t *testing.T) {
	srv, st := queryServer(t)
	ctx := t.Context()
	for id, q := range map[concord.TxID]int64{"c1": 2, "p1": 1} {
		if res, err := st.Prepare(ctx, id, Request{SKU: "FL100", Quantity: q}.Payload(), participant.PrepareInfo{}); err != nil || res.Vote != concord.VoteYes {
			t.Fatalf("prepare %s: %+v, %v", id, res, err)
		}
	}
	if err := st.Commit(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	code, body := get(t, srv.URL+PathInventory)
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	want := `{"service":"flights","items":[{"sku":"FL100","capacity":120,"available":117,"held":1,"confirmed":2},{"sku":"FL200","capacity":40,"available":40,"held":0,"confirmed":0}]}` + "\n"
	if body != want {
		t.Fatalf("body\n%s\nwant\n%s", body, want)
	}
}

func TestHTTPReservations(t *testing.T) {
	srv, st := queryServer(t)
	ctx := t.Context()
	for _, id := range []concord.TxID{"a", "b", "c"} {
		if _, err := st.Prepare(ctx, id, Request{SKU: "FL200", Quantity: 3}.Payload(), participant.PrepareInfo{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Commit(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := st.Abort(ctx, "b"); err != nil {
		t.Fatal(err)
	}

	code, body := get(t, srv.URL+ReservationPath("a"))
	if code != 200 || body != `{"service":"flights","id":"a","state":"committed","sku":"FL200","quantity":3}`+"\n" {
		t.Fatalf("GET a: %d %s", code, body)
	}
	code, body = get(t, srv.URL+ReservationPath("nobody"))
	if code != 404 || !strings.Contains(body, "no reservation for transaction nobody") {
		t.Fatalf("GET unknown: %d %s", code, body)
	}

	list := func(query string) []string {
		t.Helper()
		code, body := get(t, srv.URL+PathReservations+query)
		if code != 200 {
			t.Fatalf("list %s: %d %s", query, code, body)
		}
		var l ReservationList
		if err := json.Unmarshal([]byte(body), &l); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range l.Reservations {
			out = append(out, string(r.ID)+":"+string(r.State))
		}
		return out
	}
	for query, want := range map[string]string{
		"":                 "[a:committed b:aborted c:prepared]",
		"?state=all":       "[a:committed b:aborted c:prepared]",
		"?state=prepared":  "[c:prepared]",
		"?state=committed": "[a:committed]",
		"?state=aborted":   "[b:aborted]",
	} {
		if got := list(query); strings.Join(got, " ") != strings.Trim(want, "[]") {
			t.Errorf("list%s = %v, want %s", query, got, want)
		}
	}
	if code, body := get(t, srv.URL+PathReservations+"?state=prepared"); code != 200 || strings.Contains(body, "null") {
		t.Fatalf("list: %d %s", code, body)
	}
}

func TestHTTPBadRequests(t *testing.T) {
	srv, _ := queryServer(t)
	cases := []struct {
		method, path string
		code         int
		mention      string
	}{
		{"GET", PathReservations + "?state=pending", 400, `unknown reservation state "pending"`},
		{"GET", PathReservations + "?state=prepared&state=aborted", 400, "more than once"},
		{"GET", PathReservations + "?sate=prepared", 400, `unknown query parameter "sate"`},
		{"GET", PathReservations + "/bad%20id", 400, "bad transaction id"},
		{"GET", PathReservations + "/" + strings.Repeat("x", 65), 400, "at most 64"},
		{"GET", PathReservations + "/", 400, "empty"},
		{"GET", PathReservations + "/a/b", 400, "bad transaction id"},
		{"POST", PathInventory, 405, "use GET"},
		{"DELETE", ReservationPath("a"), 405, "use GET"},
		{"PUT", PathReservations, 405, "use GET"},
	}
	for _, c := range cases {
		req, err := http.NewRequest(c.method, srv.URL+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var er struct{ Error string }
		if resp.StatusCode != c.code || json.Unmarshal(b, &er) != nil || !strings.Contains(er.Error, c.mention) {
			t.Errorf("%s %s: %d %s; want %d mentioning %q", c.method, c.path, resp.StatusCode, b, c.code, c.mention)
		}
	}
}
