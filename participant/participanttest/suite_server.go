package participanttest

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/wire"
)

// FakeCoordinator serves the outcome query (GET
// /v1/transactions/{id}/outcome) from a table the test fills, answering
// pending for anything not in it, and reports every query on Queries.
type FakeCoordinator struct {
	Server  *httptest.Server
	Queries chan concord.TxID

	mu       sync.Mutex
	outcomes map[concord.TxID]concord.Outcome
}

// NewFakeCoordinator starts a FakeCoordinator on a loopback port; t's
// cleanup stops it.
func NewFakeCoordinator(t *testing.T) *FakeCoordinator {
	return NewFakeCoordinatorTLS(t, nil)
}

// NewFakeCoordinatorTLS is NewFakeCoordinator serving https with cfg (plain
// http if cfg is nil).
func NewFakeCoordinatorTLS(t *testing.T, cfg *tls.Config) *FakeCoordinator {
	f := &FakeCoordinator{Queries: make(chan concord.TxID, 1024), outcomes: make(map[concord.TxID]concord.Outcome)}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, wire.PathTransactions+"/")
		id, ok2 := strings.CutSuffix(rest, "/outcome")
		if !ok || !ok2 || r.Method != http.MethodGet {
			wire.WriteError(w, http.StatusNotFound, "not an outcome query: "+r.Method+" "+r.URL.Path)
			return
		}
		f.mu.Lock()
		o := f.outcomes[concord.TxID(id)]
		f.mu.Unlock()
		select {
		case f.Queries <- concord.TxID(id):
		default:
		}
		wire.WriteJSON(w, http.StatusOK, wire.OutcomeResponse{ID: concord.TxID(id), Outcome: o})
	}))
	if cfg != nil {
		f.Server.TLS = cfg
		f.Server.StartTLS()
	} else {
		f.Server.Start()
	}
	t.Cleanup(f.Server.Close)
	return f
}

// Set makes the coordinator answer o for id from now on.
func (f *FakeCoordinator) Set(id concord.TxID, o concord.Outcome) {
	f.mu.Lock()
	f.outcomes[id] = o
	f.mu.Unlock()
}

// URL is the coordinator's base URL.
func (f *FakeCoordinator) URL() string { return f.Server.URL }

// callLog wraps a Resource and reports every successful Commit and Abort.
type callLog struct {
	participant.Resource
	calls chan call
}

type call struct {
	op string
	id concord.TxID
}

func (c *callLog) Commit(ctx context.Context, id concord.TxID) error {
	err := c.Resource.Commit(ctx, id)
	if err == nil {
		c.calls <- call{"commit", id}
	}
	return err
}

func (c *callLog) Abort(ctx context.Context, id concord.TxID) error {
	err := c.Resource.Abort(ctx, id)
	if err == nil {
		c.calls <- call{"abort", id}
	}
	return err
}

// inDoubt crashes a resource holding prepared transactions, then drives a
// participant.Server over the restarted one against a fake coordinator:
// the server recovers them, asks the coordinator their PREPAREs named (not
// another one it is now configured with, which answers every query with
// presumed abort), applies what it is told, keeps asking while the answer
// is pending, and never aborts a prepared transaction on its own.
func (s *suite) inDoubt(t *testing.T) {
	r, restart := s.h.New(t, s.env())
	coord := NewFakeCoordinator(t)
	other := NewFakeCoordinator(t) // a fresh coordinator at the configured address: it knows nothing
	a, b, c, d := s.id(t, 1), s.id(t, 2), s.id(t, 3), s.id(t, 4)
	info := participant.PrepareInfo{Deadline: s.clock.Now().Add(30 * time.Second),
		Coordinator: participant.CoordinatorRef{URLs: []string{coord.URL()}}}
	for i, id := range []concord.TxID{a, b, c, d} {
		mustPrepareWith(t, r, id, s.h.Yes(i+1), info, concord.VoteYes)
	}
	r = restart(t)
	wantRecovered(t, r, []concord.TxID{a, b, c, d}, nil)

	coord.Set(a, concord.OutcomeCommitted)
	coord.Set(b, concord.OutcomeAborted) // c and d: pending for now
	for _, id := range []concord.TxID{a, b, c, d} {
		other.Set(id, concord.OutcomeAborted)
	}
	clock := NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	logged := &callLog{Resource: r, calls: make(chan call, 64)}
	srv, err := participant.NewServer(participant.Options{
		Resource: logged, Coordinator: other.URL(), Clock: clock,
		InDoubtAfter: time.Second, QueryMin: time.Second, QueryMax: 8 * time.Second, TickInterval: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := srv.Start(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	got := map[concord.TxID]string{}
	wait := func(want int) {
		t.Helper()
		deadline := time.After(30 * time.Second) // real sockets: a bound, not a sleep
		for len(got) < want {
			select {
			case cl := <-logged.calls:
				if prev, ok := got[cl.id]; ok {
					t.Fatalf("%s: %s after %s", cl.id, cl.op, prev)
				}
				got[cl.id] = cl.op
			case <-deadline:
				t.Fatalf("in-doubt resolution: after 30s only %v", got)
			}
		}
	}
	// Fake time runs on while the test waits for real sockets.
	stop := make(chan struct{})
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		for clock.BlockUntilWaiters(1, stop) {
			clock.Advance(time.Second)
		}
	}()
	defer func() { close(stop); <-pumped }()

	wait(2)
	if got[a] != "commit" || got[b] != "abort" {
		t.Fatalf("resolved %v; want %s committed and %s aborted", got, a, b)
	}
	// c and d stay prepared however often the coordinator says pending.
	asked := map[concord.TxID]int{}
	deadline := time.After(30 * time.Second)
	for asked[c] < 3 || asked[d] < 3 {
		select {
		case id := <-coord.Queries:
			asked[id]++
		case <-deadline:
			t.Fatalf("in-doubt queries: after 30s only %v", asked)
		}
	}
	if len(other.Queries) > 0 {
		t.Fatalf("the server asked %s, its configured coordinator, about %s: its PREPARE named %s", other.URL(), <-other.Queries, coord.URL())
	}
	for len(logged.calls) > 0 {
		cl := <-logged.calls
		t.Fatalf("%s of %s while the coordinator says pending: a participant never decides alone after voting yes", cl.op, cl.id)
	}
	wantRecovered(t, r, []concord.TxID{c, d}, []concord.TxID{a, b})
	if st := srv.Status(); st.Queries < 6 || st.InDoubt < 2 {
		t.Errorf("Status = %+v, want at least 6 queries and 2 in doubt", st)
	}

	// Now the coordinator knows; a later query (capped backoff) settles them.
	coord.Set(c, concord.OutcomeCommitted)
	coord.Set(d, concord.OutcomeAborted)
	wait(4)
	if got[c] != "commit" || got[d] != "abort" {
		t.Fatalf("resolved %v; want %s committed and %s aborted", got, c, d)
	}
	wantRecovered(t, r, nil, []concord.TxID{a, b, c, d})
	srv.Close() // waits for the calls in flight, whose counters follow their effect
	// c and d were settled after queries answered pending.
	if st := srv.Status(); st.ResolvedCommitted < 1 || st.ResolvedAborted < 1 {
		t.Errorf("Status = %+v; want c counted resolved committed and d resolved aborted", st)
	}
	if ctx := ctxFor(t); !errors.Is(r.Abort(ctx, c), participant.ErrAlreadyDecided) {
		t.Fatalf("abort of %s after it was resolved committed did not fail", c)
	}
}

// wireProtocol drives a participant.Server over the resource through its
// HTTP handler, as a coordinator would.
func (s *suite) wireProtocol(t *testing.T) {
	r, _ := s.h.New(t, s.env())
	srv, err := participant.NewServer(participant.Options{Resource: r, Clock: NewFakeClock(time.Unix(0, 0))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := srv.Start(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	pc := &wire.ParticipantClient{BaseURL: hs.URL}
	ctx := ctxFor(t)
	a, b, c, late, unknown := s.id(t, 1), s.id(t, 2), s.id(t, 3), s.id(t, 4), s.id(t, 5)

	prep, err := pc.Prepare(ctx, wire.PrepareRequest{Coordinator: "http://127.0.0.1:1", Transactions: []wire.PrepareTx{
		{ID: a, Payload: s.h.Yes(1)}, {ID: b, Payload: s.h.No(2)}, {ID: c, Payload: s.h.Yes(3)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	votes := map[concord.TxID]concord.Vote{}
	for _, v := range prep.Votes {
		votes[v.ID] = v.Vote
	}
	if len(prep.Votes) != 3 || votes[a] != concord.VoteYes || votes[b] != concord.VoteNo || votes[c] != concord.VoteYes {
		t.Fatalf("batch prepare votes = %+v", prep.Votes)
	}
	dec, err := pc.Commit(ctx, []concord.TxID{a, unknown})
	if err != nil {
		t.Fatal(err)
	}
	if len(dec.Acknowledged) != 1 || dec.Acknowledged[0] != a || len(dec.Failed) != 1 || dec.Failed[0].ID != unknown {
		t.Fatalf("commit {a, unknown} = %+v; want a acknowledged and the unknown one failed", dec)
	}
	if dec, err = pc.Commit(ctx, []concord.TxID{a}); err != nil || len(dec.Acknowledged) != 1 {
		t.Fatalf("duplicate commit = %+v, %v", dec, err)
	}
	if dec, err = pc.Abort(ctx, []concord.TxID{a}); err != nil || len(dec.Failed) != 1 || dec.Failed[0].Outcome != concord.OutcomeCommitted {
		t.Fatalf("abort of committed = %+v, %v; want a failure with outcome committed", dec, err)
	}
	if dec, err = pc.Abort(ctx, []concord.TxID{c, late}); err != nil || len(dec.Acknowledged) != 2 {
		t.Fatalf("abort {c, late} = %+v, %v", dec, err)
	}
	prep, err = pc.Prepare(ctx, wire.PrepareRequest{Transactions: []wire.PrepareTx{{ID: late, Payload: s.h.Yes(4)}}})
	if err != nil || len(prep.Votes) != 1 || prep.Votes[0].Vote != concord.VoteNo {
		t.Fatalf("prepare after abort = %+v, %v; want a no vote", prep, err)
	}
	wantRecovered(t, r, nil, []concord.TxID{a, b, c, late})
}
