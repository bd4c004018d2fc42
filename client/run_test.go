package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/client"
	"github.com/concordtx/concord/internal/apicheck"
)

type booking struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// Run marshals each branch's payload, answers a commit with nil, an abort
// with an *AbortedError matching ErrAborted that carries the result, and
// a failure with neither.
func TestRun(t *testing.T) {
	cl, parts := startCoordinator(t)
	ctx := context.Background()
	got := make(chan json.RawMessage, 2)
	parts["flights"].SetVote(func(_ concord.TxID, p json.RawMessage) (concord.Vote, string) {
		got <- p
		return concord.VoteYes, ""
	})
	res, err := cl.Run(ctx, client.Tx{Timeout: 1500 * time.Millisecond, Branches: []client.Branch{
		{Participant: "flights", Payload: booking{SKU: "FL100", Quantity: 2}},
		{Participant: "hotels"},
	}})
	if err != nil || !res.Committed() || concord.ValidateTxID(res.ID) != nil {
		t.Fatalf("run: %+v %v", res, err)
	}
	if p := <-got; string(p) != `{"sku":"FL100","quantity":2}` {
		t.Fatalf("flights got payload %s", p)
	}

	parts["hotels"].SetVote(func(concord.TxID, json.RawMessage) (concord.Vote, string) {
		return concord.VoteNo, "sold out"
	})
	res, err = cl.Run(ctx, client.Tx{ID: "trip-abort", Branches: []client.Branch{{Participant: "flights"}, {Participant: "hotels"}}})
	var ab *client.AbortedError
	if !errors.Is(err, client.ErrAborted) || !errors.As(err, &ab) || ab.Result != res || res.Outcome != concord.OutcomeAborted || res.ID != "trip-abort" {
		t.Fatalf("abort: %+v %v", res, err)
	}
	if res.Committed() || len(res.Branches) != 2 {
		t.Fatalf("abort result %+v", res)
	}
	// A failure is not an abort.
	_, err = cl.Run(ctx, client.Tx{Branches: []client.Branch{{Participant: "trains"}}})
	if !errors.Is(err, client.ErrBadRequest) || errors.Is(err, client.ErrAborted) {
		t.Fatalf("unknown participant: %v", err)
	}
	// Bad input is refused before sending.
	for name, tx := range map[string]client.Tx{
		"negative timeout": {Timeout: -time.Second, Branches: []client.Branch{{Participant: "flights"}}},
		"unmarshalable":    {Branches: []client.Branch{{Participant: "flights", Payload: func() {}}}},
	} {
		if _, err := cl.Run(ctx, tx); !errors.Is(err, client.ErrInvalidInput) {
			t.Errorf("%s: %v, want ErrInvalidInput", name, err)
		}
	}
}

// The timeout goes out in whole milliseconds, rounded up.
func TestRunTimeoutMS(t *testing.T) {
	body := make(chan []byte, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		body <- b
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":"t1","outcome":"committed","branches":[]}`))
	}))
	defer hs.Close()
	cl, err := client.New(client.Options{URL: hs.URL, WrapTransport: apicheck.Default.Transport})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Run(context.Background(), client.Tx{ID: "t1", Timeout: 1500 * time.Microsecond,
		Branches: []client.Branch{{Participant: "flights", Payload: json.RawMessage(`{"sku":"A","quantity":1}`)}}}); err != nil {
		t.Fatal(err)
	}
	if b := string(<-body); b != `{"id":"t1","timeout_ms":2,"branches":[{"participant":"flights","payload":{"sku":"A","quantity":1}}]}` {
		t.Fatalf("sent %s", b)
	}
}

// With several coordinator URLs, one that refuses connections is passed
// over for the next, which the client then keeps; one that answers, even
// with an error, is not: the request reached it.
func TestFailover(t *testing.T) {
	cl0, parts := startCoordinator(t)
	live := cl0.URL()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused
	cl, err := client.New(client.Options{URL: dead, URLs: []string{live}, WrapTransport: apicheck.Default.Transport})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := cl.Run(ctx, client.Tx{Branches: []client.Branch{{Participant: "flights"}}})
	if err != nil || !res.Committed() {
		t.Fatalf("run past a dead coordinator: %+v %v", res, err)
	}
	if cl.URL() != live {
		t.Fatalf("URL() %s after failing over, want %s", cl.URL(), live)
	}
	if _, err := cl.Get(ctx, res.ID); err != nil {
		t.Fatal(err)
	}

	// A coordinator that answers 503 is an answer: the call fails, and
	// the next coordinator never sees the request.
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":"overloaded"}`))
	}))
	defer busy.Close()
	cl2, err := client.New(client.Options{URL: busy.URL, URLs: []string{live}, WrapTransport: apicheck.Default.Transport})
	if err != nil {
		t.Fatal(err)
	}
	before := parts["flights"].Count("/v1/prepare")
	if _, err := cl2.Run(ctx, client.Tx{Branches: []client.Branch{{Participant: "flights"}}}); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("busy coordinator: %v, want ErrUnavailable", err)
	}
	if n := parts["flights"].Count("/v1/prepare"); n != before {
		t.Fatalf("the next coordinator ran the request a busy one refused (%d PREPAREs)", n-before)
	}

	// Every URL is checked.
	if _, err := client.New(client.Options{URL: live, URLs: []string{"ftp://x"}}); !errors.Is(err, client.ErrInvalidInput) {
		t.Fatalf("bad second URL: %v", err)
	}
}

// List takes a typed state.
func TestListStates(t *testing.T) {
	cl, _ := startCoordinator(t)
	ctx := context.Background()
	if _, err := cl.Run(ctx, client.Tx{ID: "listed", Branches: []client.Branch{{Participant: "flights"}}}); err != nil {
		t.Fatal(err)
	}
	l, err := cl.List(ctx, client.StateCommitted, 10)
	if err != nil || len(l.Transactions) != 1 || client.State(l.Transactions[0].State) != client.StateCommitted {
		t.Fatalf("committed: %+v %v", l, err)
	}
	if l, err := cl.List(ctx, client.StateAborted, 10); err != nil || len(l.Transactions) != 0 {
		t.Fatalf("aborted: %+v %v", l, err)
	}
}
