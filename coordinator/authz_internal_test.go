package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/security"
	"github.com/concordtx/concord/wal/memfs"
	"github.com/concordtx/concord/wire"
)

// gateTransport votes yes on every PREPARE and acknowledges every
// decision; while gate is set, a PREPARE waits for it to close.
type gateTransport struct {
	mu   sync.Mutex
	gate chan struct{}
}

func (g *gateTransport) Prepare(ctx context.Context, _ string, req wire.PrepareRequest) (wire.PrepareResponse, error) {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return wire.PrepareResponse{}, ctx.Err()
		}
	}
	var resp wire.PrepareResponse
	for _, tx := range req.Transactions {
		resp.Votes = append(resp.Votes, wire.VoteReply{ID: tx.ID, Vote: concord.VoteYes})
	}
	return resp, nil
}

func (g *gateTransport) ack(ids []concord.TxID) (wire.DecisionResponse, error) {
	return wire.DecisionResponse{Acknowledged: ids}, nil
}

func (g *gateTransport) Commit(_ context.Context, _ string, req wire.DecisionRequest) (wire.DecisionResponse, error) {
	return g.ack(req.IDs)
}

func (g *gateTransport) Abort(_ context.Context, _ string, req wire.DecisionRequest) (wire.DecisionResponse, error) {
	return g.ack(req.IDs)
}

const (
	aliceTok = "alice-token-0123456789"
	bobTok   = "bob-token-0123456789ab"
)

// newAuthCoordinator returns a coordinator authenticating alice and bob by
// token, serving its handler over plain HTTP (the handler does not look at
// the transport), and logging into logs.
func newAuthCoordinator(t *testing.T, tr Transport, logs io.Writer) (*Coordinator, *httptest.Server) {
	t.Helper()
	toks, err := security.ParseTokens(strings.NewReader("alice " + aliceTok + "\nbob " + bobTok + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if logs == nil {
		logs = io.Discard
	}
	c, err := New(Options{Dir: "/c", FS: memfs.New(), Transport: tr, Auth: &security.Authenticator{Tokens: toks},
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(func() {
		srv.Close()
		c.Close()
	})
	return c, srv
}

func call(t *testing.T, srv *httptest.Server, token, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func submitOf(id concord.TxID, parts ...string) string {
	req := wire.SubmitRequest{ID: id}
	for _, p := range parts {
		req.Branches = append(req.Branches, wire.Branch{Participant: p, Payload: json.RawMessage(`{}`)})
	}
	b, _ := json.Marshal(req)
	return string(b)
}

// Authorization is decided on the transaction acted on, not before it
// exists: bob's abort, status, retry, timeline and outcome requests for an
// id nobody has used yet pass authentication; alice's transaction of that
// id becomes live just then (in the window afterGuard opens); each of
// bob's requests is refused 403 and alice's transaction commits.
func TestAuthorizationOnTheObjectActedOn(t *testing.T) {
	for _, c := range []struct{ method, path string }{
		{"POST", "/abort"}, {"POST", "/retry"}, {"GET", ""}, {"GET", "/timeline"}, {"GET", "/outcome"},
	} {
		t.Run(c.method+c.path, func(t *testing.T) {
			tr := &gateTransport{gate: make(chan struct{})}
			coord, srv := newAuthCoordinator(t, tr, nil)
			const id = "raceT-1"
			alice := make(chan error, 1)
			coord.afterGuard = func(r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer "+bobTok {
					return
				}
				go func() {
					resp, err := coord.submit(security.WithPrincipal(context.Background(), security.Principal{Name: "alice", Via: security.ViaToken}),
						wire.SubmitRequest{ID: id, Branches: []wire.Branch{{Participant: "flights", Payload: json.RawMessage(`{}`)}, {Participant: "hotels", Payload: json.RawMessage(`{}`)}}})
					if err == nil && resp.Outcome != concord.OutcomeCommitted {
						err = fmt.Errorf("alice's transaction %s: %s", resp.Outcome, resp.Reason)
					}
					alice <- err
				}()
				deadline := time.Now().Add(10 * time.Second)
				for t1, _, _ := coord.table.lookup(id); t1 == nil; t1, _, _ = coord.table.lookup(id) {
					if time.Now().After(deadline) {
						t.Error("alice's transaction never became live")
						return
					}
					time.Sleep(time.Millisecond) // the submit runs on its own goroutine: poll for the table entry
				}
			}
			code, body := call(t, srv, bobTok, c.method, wire.TransactionPath(id)+c.path, "")
			coord.afterGuard = nil
			if code != http.StatusForbidden {
				t.Errorf("bob's %s %s on alice's transaction: %d %s, want 403", c.method, c.path, code, body)
			}
			close(tr.gate)
			select {
			case err := <-alice:
				if err != nil {
					t.Error(err)
				}
			case <-time.After(10 * time.Second): // bounds a broken test, not a synchronization
				t.Fatal("alice's submit never ran or never finished")
			}
		})
	}
}

// A client's list is filtered by owner before the limit: alice's one
// transaction shows although bob has more than MaxListLimit with ids
// sorted before hers.
func TestClientListFilteredBeforeLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("submits MaxListLimit+1 transactions")
	}
	coord, srv := newAuthCoordinator(t, &gateTransport{}, nil)
	bob := security.WithPrincipal(context.Background(), security.Principal{Name: "bob", Via: security.ViaToken})
	for i := range MaxListLimit + 1 {
		if _, err := coord.submit(bob, wire.SubmitRequest{ID: concord.TxID(fmt.Sprintf("a-%05d", i)),
			Branches: []wire.Branch{{Participant: "flights", Payload: json.RawMessage(`{}`)}}}); err != nil {
			t.Fatal(err)
		}
	}
	if code, body := call(t, srv, aliceTok, "POST", wire.PathTransactions, submitOf("z-alice", "flights")); code != 200 {
		t.Fatalf("alice's submit: %d %s", code, body)
	}
	code, body := call(t, srv, aliceTok, "GET", wire.PathTransactions+"?state=all&limit=10", "")
	var l wire.TxList
	json.Unmarshal([]byte(body), &l)
	if code != 200 || len(l.Transactions) != 1 || l.Transactions[0].ID != "z-alice" {
		t.Errorf("alice's list: %d, %d transactions %.200s; want hers", code, len(l.Transactions), body)
	}
	code, body = call(t, srv, bobTok, "GET", wire.PathTransactions+"?state=all&limit=3&participant=flights", "")
	json.Unmarshal([]byte(body), &l)
	if code != 200 || len(l.Transactions) != 3 || l.Transactions[0].ID != "a-00000" {
		t.Errorf("bob's list: %d %.200s", code, body)
	}
}

// Who did what is logged, bounded: an abort logs who asked and at most
// MaxLoggedReason bytes of its reason; aborts of unknown ids by anyone are
// logged a few times a second, not once each.
func TestActionLogsBoundedAndRateLimited(t *testing.T) {
	var logs syncBuffer
	tr := &gateTransport{gate: make(chan struct{})}
	coord, srv := newAuthCoordinator(t, tr, &logs)
	done := make(chan struct{})
	go func() {
		defer close(done)
		call(t, srv, aliceTok, "POST", wire.PathTransactions, submitOf("held", "flights", "hotels"))
	}()
	deadline := time.Now().Add(10 * time.Second)
	for t1, _, _ := coord.table.lookup("held"); t1 == nil; t1, _, _ = coord.table.lookup("held") {
		if time.Now().After(deadline) {
			t.Fatal("the transaction never became live")
		}
		time.Sleep(time.Millisecond) // the submit runs on its own goroutine: poll for the table entry
	}
	reason := strings.Repeat("R", 60<<10)
	body, _ := json.Marshal(wire.ActionRequest{Reason: reason})
	if code, msg := call(t, srv, aliceTok, "POST", wire.TransactionPath("held")+"/abort", string(body)); code != 200 {
		t.Fatalf("abort: %d %s", code, msg)
	}
	close(tr.gate)
	<-done
	for i := range 200 {
		call(t, srv, bobTok, "POST", wire.TransactionPath(concord.TxID(fmt.Sprintf("nope-%d", i)))+"/abort", "")
	}
	out := logs.String()
	var abortLine string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "operator abort") && strings.Contains(l, "tx=held") {
			abortLine = l
		}
	}
	if !strings.Contains(abortLine, "by=alice") || !strings.Contains(abortLine, "via=token") {
		t.Errorf("the abort's line does not say who: %.300s", abortLine)
	}
	if len(abortLine) > MaxLoggedReason+300 {
		t.Errorf("the abort's line has %d bytes: the reason is not bounded", len(abortLine))
	}
	if n := strings.Count(out, "operator abort refused"); n == 0 || n > 20 {
		t.Errorf("%d lines for 200 aborts of unknown ids, want a few", n)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
