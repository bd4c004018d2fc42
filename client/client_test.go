package client_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/client"
	"github.com/concordtx/concord/coordinator"
	"github.com/concordtx/concord/internal/apicheck"
	"github.com/concordtx/concord/internal/testutil"
	"github.com/concordtx/concord/wal/memfs"
	"github.com/concordtx/concord/wire"
)

func startCoordinator(t *testing.T) (*client.Client, map[string]*testutil.Participant) {
	t.Helper()
	parts := map[string]*testutil.Participant{}
	urls := map[string]string{}
	for _, n := range []string{"flights", "hotels"} {
		parts[n] = testutil.NewParticipant(t, n)
		urls[n] = parts[n].URL
	}
	c, err := coordinator.New(coordinator.Options{Dir: "/c", FS: memfs.New(), Participants: urls,
		Clock: testutil.NewFakeClock(time.Unix(0, 0)), DecisionDelay: -1, ShutdownTimeout: time.Second}) // the fake clock never moves: decisions leave at once
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ln); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cl, err := client.New(client.Options{WrapTransport: apicheck.Default.Transport, URL: c.URL()})
	if err != nil {
		t.Fatal(err)
	}
	return cl, parts
}

func TestClientRoundTrip(t *testing.T) {
	cl, _ := startCoordinator(t)
	ctx := context.Background()
	if err := cl.Health(ctx); err != nil {
		t.Fatal(err)
	}
	req := wire.SubmitRequest{Branches: []wire.Branch{{Participant: "flights"}, {Participant: "hotels"}}}
	resp, err := cl.Submit(ctx, req)
	if err != nil || resp.Outcome != concord.OutcomeCommitted {
		t.Fatalf("%+v %v", resp, err)
	}
	if concord.ValidateTxID(resp.ID) != nil {
		t.Fatalf("no id generated: %q", resp.ID)
	}
	st, err := cl.Get(ctx, resp.ID)
	if err != nil || st.State != "committed" || len(st.Branches) != 2 {
		t.Fatalf("%+v %v", st, err)
	}
	if o, err := cl.Outcome(ctx, resp.ID); err != nil || o != concord.OutcomeCommitted {
		t.Fatalf("%v %v", o, err)
	}
	// An id the coordinator holds no record of is forgotten, not aborted.
	if o, err := cl.Outcome(ctx, "unknown-id"); !errors.Is(err, client.ErrForgotten) || !errors.Is(err, client.ErrNotFound) || o != concord.OutcomePending {
		t.Fatalf("unknown: %v %v, want pending and ErrForgotten", o, err)
	}
	if _, err := cl.Get(ctx, "unknown-id"); !errors.Is(err, client.ErrForgotten) {
		t.Fatalf("status of an unknown id: %v, want ErrForgotten", err)
	}
	for _, id := range []concord.TxID{".", ".."} {
		if _, err := cl.Get(ctx, id); !errors.Is(err, client.ErrInvalidInput) {
			t.Fatalf("id %q: %v, want ErrInvalidInput", id, err)
		}
	}
	l, err := cl.List(ctx, "all", 10)
	if err != nil || len(l.Transactions) != 1 || l.Transactions[0].ID != resp.ID {
		t.Fatalf("%+v %v", l, err)
	}
	// Errors map to sentinels.
	req.ID = resp.ID
	req.Branches = req.Branches[:1]
	if _, err := cl.Submit(ctx, req); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("conflict: %v", err)
	}
	if _, err := cl.Get(ctx, "nobody"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("not found: %v", err)
	}
	bad := wire.SubmitRequest{Branches: []wire.Branch{{Participant: "trains"}}}
	var apiErr *client.APIError
	if _, err := cl.Submit(ctx, bad); !errors.Is(err, client.ErrBadRequest) || !errors.As(err, &apiErr) || apiErr.StatusCode != 400 {
		t.Fatalf("bad request: %v", err)
	}
	if _, err := cl.List(ctx, "weird", 0); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("bad filter: %v", err)
	}
	if _, err := cl.Get(ctx, "bad id"); !errors.Is(err, client.ErrInvalidInput) {
		t.Fatalf("bad id: %v", err)
	}
	if _, err := cl.Submit(ctx, wire.SubmitRequest{}); !errors.Is(err, client.ErrInvalidInput) {
		t.Fatalf("no branches: %v", err)
	}
	// Operator calls: nothing to re-drive or abort on an unknown transaction;
	// a committed one is never aborted (409 while live, 404 once finished).
	if _, err := cl.RetryNow(ctx, "never-submitted"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("retry unknown: %v", err)
	}
	if _, err := cl.Abort(ctx, resp.ID); !errors.Is(err, client.ErrConflict) && !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("abort of a commit: %v", err)
	}
	if _, err := cl.Abort(ctx, "bad id"); !errors.Is(err, client.ErrInvalidInput) {
		t.Fatalf("abort bad id: %v", err)
	}
	// What concord tx asks through the client, so that it carries the
	// client's credentials under TLS: a list by participant, a timeline, an
	// abort with a reason.
	if l, err := cl.ListParticipant(ctx, client.StateAll, "hotels", 10); err != nil || len(l.Transactions) != 1 {
		t.Fatalf("list at hotels: %+v %v", l, err)
	}
	if l, err := cl.ListParticipant(ctx, client.StateAll, "cars", 10); err != nil || len(l.Transactions) != 0 {
		t.Fatalf("list at cars: %+v %v", l, err)
	}
	if tl, err := cl.Timeline(ctx, resp.ID); err != nil || len(tl.Events) == 0 {
		t.Fatalf("timeline: %+v %v", tl, err)
	}
	if _, err := cl.AbortBecause(ctx, resp.ID, "changed my mind"); !errors.Is(err, client.ErrConflict) && !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("abort of a commit with a reason: %v", err)
	}
}

func TestClientOptions(t *testing.T) {
	for _, u := range []string{"ftp://x", "127.0.0.1:7070", "http://"} {
		if _, err := client.New(client.Options{WrapTransport: apicheck.Default.Transport, URL: u}); !errors.Is(err, client.ErrInvalidInput) {
			t.Errorf("URL %q accepted: %v", u, err)
		}
	}
	cl, err := client.New(client.Options{})
	if err != nil || cl.URL() != client.DefaultURL {
		t.Fatalf("default: %v %v", cl, err)
	}
	// Nothing listens on a port we just released: a clear network error.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	cl, _ = client.New(client.Options{WrapTransport: apicheck.Default.Transport, URL: "http://" + addr, Timeout: 2 * time.Second})
	if err := cl.Health(context.Background()); err == nil {
		t.Fatal("health of a closed port succeeded")
	}
}
