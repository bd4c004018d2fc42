package participant_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/participanttest"
	"github.com/concordtx/concord/wire"
)

// gated wraps a Resource: every call first reports itself on entered and
// then waits for a token on release (when gating is on). It fails the test
// if two calls for one transaction ever overlap, and tracks the most calls
// in flight at once.
type gated struct {
	participant.Resource
	t        *testing.T
	gate     bool
	entered  chan string
	release  chan struct{}
	mu       sync.Mutex
	busy     map[concord.TxID]string
	inFlight int
	maxIn    int
	calls    []string
}

func newGated(t *testing.T, r participant.Resource, gate bool) *gated {
	return &gated{Resource: r, t: t, gate: gate, entered: make(chan string, 1024), release: make(chan struct{}, 1024),
		busy: map[concord.TxID]string{}}
}

func (g *gated) enter(op string, id concord.TxID) func() {
	g.mu.Lock()
	if other, ok := g.busy[id]; ok {
		g.t.Errorf("%s of %s while %s of it is running", op, id, other)
	}
	g.busy[id] = op
	g.inFlight++
	g.maxIn = max(g.maxIn, g.inFlight)
	g.calls = append(g.calls, op+" "+string(id))
	g.mu.Unlock()
	g.entered <- op + " " + string(id)
	if g.gate {
		<-g.release
	}
	return func() {
		g.mu.Lock()
		delete(g.busy, id)
		g.inFlight--
		g.mu.Unlock()
	}
}

func (g *gated) Prepare(ctx context.Context, id concord.TxID, p json.RawMessage, info participant.PrepareInfo) (participant.PrepareResult, error) {
	defer g.enter("prepare", id)()
	return g.Resource.Prepare(ctx, id, p, info)
}

func (g *gated) Commit(ctx context.Context, id concord.TxID) error {
	defer g.enter("commit", id)()
	return g.Resource.Commit(ctx, id)
}

func (g *gated) Abort(ctx context.Context, id concord.TxID) error {
	defer g.enter("abort", id)()
	return g.Resource.Abort(ctx, id)
}

func (g *gated) callList() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.calls...)
}

func startServer(t *testing.T, opts participant.Options) (*participant.Server, *wire.ParticipantClient) {
	t.Helper()
	if opts.Clock == nil {
		opts.Clock = participanttest.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	}
	srv, err := participant.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	return srv, &wire.ParticipantClient{BaseURL: hs.URL}
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second): // real sockets: a bound on a hang, not a sleep
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// TestBatchRunsConcurrentlyBounded: the prepares of one batch run at once,
// but never more than MaxConcurrency.
func TestBatchRunsConcurrentlyBounded(t *testing.T) {
	g := newGated(t, participanttest.NewMemResource(), true)
	_, pc := startServer(t, participant.Options{Resource: g, MaxConcurrency: 3})
	var txs []wire.PrepareTx
	for i := range 10 {
		txs = append(txs, wire.PrepareTx{ID: concord.TxID(fmt.Sprintf("b%d", i)), Payload: participanttest.YesPayload(i)})
	}
	done := make(chan wire.PrepareResponse, 1)
	go func() {
		resp, err := pc.Prepare(context.Background(), wire.PrepareRequest{Transactions: txs})
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	for range 3 {
		recv(t, g.entered, "a prepare to start")
	}
	select {
	case c := <-g.entered:
		t.Fatalf("a fourth call (%s) started with MaxConcurrency 3", c)
	default:
	}
	for range 10 {
		g.release <- struct{}{}
	}
	resp := recv(t, done, "the batch's answer")
	if len(resp.Votes) != 10 {
		t.Fatalf("%d votes for 10 transactions", len(resp.Votes))
	}
	for i, v := range resp.Votes {
		if v.ID != txs[i].ID || v.Vote != concord.VoteYes {
			t.Errorf("vote %d = %+v", i, v)
		}
	}
	if g.maxIn != 3 {
		t.Errorf("at most %d calls ran at once, want 3", g.maxIn)
	}
}

// TestAbortDuringPrepare: an ABORT that arrives while the prepare is
// running is applied once it returns; the prepare is answered no and the
// transaction ends aborted at the resource.
func TestAbortDuringPrepare(t *testing.T) {
	mem := participanttest.NewMemResource()
	g := newGated(t, mem, true)
	srv, pc := startServer(t, participant.Options{Resource: g})
	ctx := context.Background()
	votes := make(chan wire.PrepareResponse, 1)
	go func() {
		resp, err := pc.Prepare(ctx, wire.PrepareRequest{Transactions: []wire.PrepareTx{{ID: "x", Payload: participanttest.YesPayload(1)}}})
		if err != nil {
			t.Error(err)
		}
		votes <- resp
	}()
	recv(t, g.entered, "the prepare")
	acks := make(chan wire.DecisionResponse, 1)
	go func() {
		resp, err := pc.Abort(ctx, []concord.TxID{"x"})
		if err != nil {
			t.Error(err)
		}
		acks <- resp
	}()
	// The abort reaches the server over a real socket: wait (bounded) until
	// it waits beside the prepare.
	for deadline := time.Now().Add(20 * time.Second); ; runtime.Gosched() {
		if info, _ := srv.Lookup("x"); info.Waiting == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the abort never reached the server")
		}
	}
	select {
	case c := <-g.entered:
		t.Fatalf("%s started while the prepare of x runs", c)
	case <-acks:
		t.Fatal("abort acknowledged before the prepare it must undo returned")
	default:
	}
	g.release <- struct{}{} // prepare returns yes
	if c := recv(t, g.entered, "the abort"); c != "abort x" {
		t.Fatalf("next call %q, want abort x", c)
	}
	g.release <- struct{}{}
	if v := recv(t, votes, "the vote"); v.Votes[0].Vote != concord.VoteNo {
		t.Errorf("vote = %+v, want no", v.Votes[0])
	}
	if a := recv(t, acks, "the abort's answer"); len(a.Acknowledged) != 1 {
		t.Errorf("abort answer = %+v", a)
	}
	if st := mem.State("x"); st != "aborted" {
		t.Fatalf("x is %q at the resource, want aborted", st)
	}
}

// TestOneCallPerTransaction hammers one transaction with concurrent
// duplicate prepares, commits and aborts: the resource never sees two calls
// for it at once, and every answer agrees with the one outcome.
func TestOneCallPerTransaction(t *testing.T) {
	mem := participanttest.NewMemResource()
	g := newGated(t, mem, false)
	_, pc := startServer(t, participant.Options{Resource: g})
	ctx := context.Background()
	for round := range 20 {
		id := concord.TxID(fmt.Sprintf("tx%d", round))
		if _, err := pc.Prepare(ctx, wire.PrepareRequest{Transactions: []wire.PrepareTx{{ID: id, Payload: participanttest.YesPayload(1)}}}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var acks, failures atomic.Int32
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var resp wire.DecisionResponse
				var err error
				switch i % 3 {
				case 0:
					_, err = pc.Prepare(ctx, wire.PrepareRequest{Transactions: []wire.PrepareTx{{ID: id, Payload: participanttest.YesPayload(1)}}})
					return
				case 1:
					resp, err = pc.Commit(ctx, []concord.TxID{id})
				case 2:
					resp, err = pc.Commit(ctx, []concord.TxID{id})
				}
				if err != nil {
					t.Error(err)
					return
				}
				acks.Add(int32(len(resp.Acknowledged)))
				failures.Add(int32(len(resp.Failed)))
			}()
		}
		wg.Wait()
		for len(g.entered) > 0 {
			<-g.entered
		}
		if failures.Load() != 0 || acks.Load() != 10 {
			t.Fatalf("%s: %d acks, %d failures; want 10 acks", id, acks.Load(), failures.Load())
		}
		if st := mem.State(id); st != "committed" {
			t.Fatalf("%s is %q", id, st)
		}
	}
	commits := 0
	for _, c := range g.callList() {
		if len(c) > 6 && c[:6] == "commit" {
			commits++
		}
	}
	if commits > 20*10 {
		t.Errorf("%d commit calls", commits)
	}
}

// TestOnePhase: with a one-phase resource one call commits; an ABORT then
// fails with outcome committed. Without one, the server prepares and
// commits.
func TestOnePhase(t *testing.T) {
	ctx := context.Background()
	t.Run("resource", func(t *testing.T) {
		mem := participanttest.NewMemResource()
		_, pc := startServer(t, participant.Options{Resource: mem})
		resp, err := pc.Prepare(ctx, wire.PrepareRequest{Transactions: []wire.PrepareTx{
			{ID: "one", Payload: participanttest.YesPayload(1), OnePhase: true},
			{ID: "two", Payload: participanttest.NoPayload(2), OnePhase: true},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if v := resp.Votes[0]; v.Outcome != concord.OutcomeCommitted || v.Vote != concord.VoteYes {
			t.Errorf("one-phase yes = %+v", v)
		}
		if v := resp.Votes[1]; v.Outcome != concord.OutcomeAborted || v.Vote != concord.VoteNo || v.Reason == "" {
			t.Errorf("one-phase no = %+v", v)
		}
		dec, err := pc.Abort(ctx, []concord.TxID{"one", "two"})
		if err != nil {
			t.Fatal(err)
		}
		if len(dec.Failed) != 1 || dec.Failed[0].ID != "one" || dec.Failed[0].Outcome != concord.OutcomeCommitted {
			t.Fatalf("abort after one-phase = %+v; want one failed with outcome committed", dec)
		}
		if len(dec.Acknowledged) != 1 || dec.Acknowledged[0] != "two" {
			t.Fatalf("abort after one-phase refusal = %+v; want two acknowledged", dec)
		}
		if mem.State("one") != "committed" {
			t.Fatal("one is not committed")
		}
	})
	t.Run("plain vote without one-phase support", func(t *testing.T) {
		mem := participanttest.NewMemResource()
		g := newGated(t, twoPhaseOnly{mem}, false)
		_, pc := startServer(t, participant.Options{Resource: g})
		resp, err := pc.Prepare(ctx, wire.PrepareRequest{Transactions: []wire.PrepareTx{{ID: "one", Payload: participanttest.YesPayload(1), OnePhase: true}}})
		if err != nil {
			t.Fatal(err)
		}
		// The resource cannot commit in one step, so it must not decide
		// alone: a plain yes leaves the decision to the coordinator.
		if v := resp.Votes[0]; v.Vote != concord.VoteYes || v.Outcome != concord.OutcomePending {
			t.Errorf("one-phase = %+v, want a plain yes", v)
		}
		if calls := g.callList(); len(calls) != 1 || calls[0] != "prepare one" {
			t.Errorf("calls = %v, want only prepare", calls)
		}
		if mem.State("one") != "prepared" {
			t.Errorf("one is %q, want prepared until the coordinator decides", mem.State("one"))
		}
	})
}

// twoPhaseOnly hides CommitOnePhase.
type twoPhaseOnly struct{ participant.Resource }

// TestInDoubtAsksPrepareCoordinator: a prepared transaction with no
// decision after InDoubtAfter asks the coordinator named in its PREPARE,
// not the default, and applies the answer; before InDoubtAfter it does not
// ask.
func TestInDoubtAsksPrepareCoordinator(t *testing.T) {
	named := participanttest.NewFakeCoordinator(t)
	fallback := participanttest.NewFakeCoordinator(t)
	named.Set("q", concord.OutcomeCommitted)
	mem := participanttest.NewMemResource()
	clock := participanttest.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	srv, pc := startServer(t, participant.Options{Resource: mem, Clock: clock, Coordinator: fallback.URL(),
		InDoubtAfter: 10 * time.Second, TickInterval: time.Second})
	ctx := context.Background()
	if _, err := pc.Prepare(ctx, wire.PrepareRequest{Coordinator: named.URL(), Transactions: []wire.PrepareTx{{ID: "q", Payload: participanttest.YesPayload(1)}}}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	for range 9 {
		clock.BlockUntilWaiters(1, stop)
		clock.Advance(time.Second)
	}
	clock.BlockUntilWaiters(1, stop) // the 9th tick is done
	if len(named.Queries)+len(fallback.Queries) != 0 {
		t.Fatal("asked the coordinator before InDoubtAfter")
	}
	if got := srv.InDoubt(); len(got) != 1 || got[0].ID != "q" || got[0].Coordinator != named.URL() {
		t.Fatalf("InDoubt = %+v", got)
	}
	clock.Advance(time.Second)
	if id := recv(t, named.Queries, "a query"); id != "q" {
		t.Fatalf("asked about %s", id)
	}
	if _, err := srv.Commit(ctx, []concord.TxID{"q"}); err != nil { // waits for the resolution's commit to finish
		t.Fatal(err)
	}
	if mem.State("q") != "committed" || len(fallback.Queries) != 0 {
		t.Fatalf("q is %q; fallback asked %d times", mem.State("q"), len(fallback.Queries))
	}
}

func TestNotStartedAndClosed(t *testing.T) {
	srv, err := participant.NewServer(participant.Options{Resource: participanttest.NewMemResource()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Commit(context.Background(), []concord.TxID{"a"}); !errors.Is(err, participant.ErrNotStarted) {
		t.Fatalf("before Start: %v", err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if _, err := srv.Commit(context.Background(), []concord.TxID{"a"}); !errors.Is(err, participant.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestBadOptions(t *testing.T) {
	mem := participanttest.NewMemResource()
	for _, o := range []participant.Options{
		{},
		{Resource: mem, Coordinator: "ftp://x"},
		{Resource: mem, Coordinator: "http://"},
		{Resource: mem, MaxConcurrency: -1},
		{Resource: mem, QueryMin: time.Second, QueryMax: time.Millisecond},
	} {
		if _, err := participant.NewServer(o); !errors.Is(err, participant.ErrBadOptions) {
			t.Errorf("NewServer(%+v) = %v, want ErrBadOptions", o, err)
		}
	}
}

// TestCloseDuringCall: Close answers waiting requests at once (503), waits
// for the resource call in flight, and leaves the transaction to the
// resource (nothing decided).
func TestCloseDuringCall(t *testing.T) {
	mem := participanttest.NewMemResource()
	g := newGated(t, mem, true)
	srv, pc := startServer(t, participant.Options{Resource: g})
	errs := make(chan error, 1)
	go func() {
		_, err := pc.Prepare(context.Background(), wire.PrepareRequest{Transactions: []wire.PrepareTx{{ID: "c", Payload: participanttest.YesPayload(1)}}})
		errs <- err
	}()
	recv(t, g.entered, "the prepare")
	closed := make(chan struct{})
	go func() {
		srv.Close()
		close(closed)
	}()
	var se *wire.StatusError
	if err := recv(t, errs, "the request's answer"); !errors.As(err, &se) || se.Code != 503 {
		t.Fatalf("request during Close = %v, want 503", err)
	}
	select {
	case <-closed:
		t.Fatal("Close returned while a resource call was still running")
	default:
	}
	g.release <- struct{}{}
	recv(t, closed, "Close to return")
	if st := mem.State("c"); st != "prepared" {
		t.Fatalf("c is %q after Close, want prepared (Close decides nothing)", st)
	}
}
