package travel

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/wire"
)

func TestServiceOptions(t *testing.T) {
	st, err := NewMemStore([]Stock{{"A", 1}})
	if err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]Options{
		"no name":     {Store: st},
		"no store":    {Name: Cars},
		"resource":    {Name: Cars, Store: st, Server: participant.Options{Resource: st}},
		"bad coord":   {Name: Cars, Store: st, Server: participant.Options{Coordinator: "nope"}},
		"bad timeout": {Name: Cars, Store: st, Server: participant.Options{CallTimeout: -1}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: accepted", name)
		} else if name != "bad coord" && name != "bad timeout" && !errors.Is(err, ErrBadOptions) {
			t.Errorf("%s: %v, want ErrBadOptions", name, err)
		}
	}
}

// TestServiceHandler drives a service over HTTP: 503 before Start, then the
// participant protocol, the views, the status page and JSON 404s.
func TestServiceHandler(t *testing.T) {
	st, err := NewMemStore([]Stock{{"C-ECON", 3}})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Options{Name: Cars, Store: st, Server: participant.Options{Coordinator: "http://127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	defer svc.Close()
	if code, body := get(t, srv.URL+wire.PathHealth); code != http.StatusServiceUnavailable {
		t.Fatalf("healthz before start: %d %s", code, body)
	}
	pc := &wire.ParticipantClient{BaseURL: srv.URL}
	req := wire.PrepareRequest{Transactions: []wire.PrepareTx{{ID: "t1", Payload: Request{SKU: "C-ECON", Quantity: 2}.Payload()}}}
	if _, err := pc.Prepare(t.Context(), req); err == nil {
		t.Fatal("prepare before start accepted")
	}
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, srv.URL+wire.PathHealth); code != 200 || !strings.Contains(body, `"service":"cars"`) {
		t.Fatalf("healthz: %d %s", code, body)
	}
	resp, err := pc.Prepare(t.Context(), req)
	if err != nil || len(resp.Votes) != 1 || resp.Votes[0].Vote != concord.VoteYes {
		t.Fatalf("prepare: %+v, %v", resp, err)
	}
	resp, err = pc.Prepare(t.Context(), wire.PrepareRequest{Transactions: []wire.PrepareTx{{ID: "t2", Payload: Request{SKU: "C-ECON", Quantity: 2}.Payload()}}})
	if err != nil || resp.Votes[0].Vote != concord.VoteNo || !strings.Contains(resp.Votes[0].Reason, "not enough left: C-ECON has 1 available, 2 asked") {
		t.Fatalf("prepare past capacity: %+v, %v", resp, err)
	}
	if code, body := get(t, srv.URL+ReservationPath("t1")); code != 200 || !strings.Contains(body, `"state":"prepared"`) {
		t.Fatalf("reservation: %d %s", code, body)
	}
	if code, body := get(t, srv.URL+PathStatus); code != 200 || !strings.Contains(body, `"in_doubt":[{"id":"t1"`) {
		t.Fatalf("status: %d %s", code, body)
	}
	dr, err := pc.Commit(t.Context(), []concord.TxID{"t1"})
	if err != nil || len(dr.Acknowledged) != 1 {
		t.Fatalf("commit: %+v, %v", dr, err)
	}
	if code, body := get(t, srv.URL+PathInventory); code != 200 || !strings.Contains(body, `"available":1,"held":0,"confirmed":2`) {
		t.Fatalf("inventory: %d %s", code, body)
	}
	code, body := get(t, srv.URL+"/v1/nothing")
	if code != 404 || !strings.Contains(body, `"error":"no such endpoint GET /v1/nothing"`) {
		t.Fatalf("unknown path: %d %s", code, body)
	}
	r, err := http.Post(srv.URL+PathStatus, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 405 {
		t.Fatalf("POST status: %d %s", r.StatusCode, b)
	}
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := svc.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}
