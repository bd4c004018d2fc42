package participanttest

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/wire"
)

// forgottenCommit: a COMMIT whose acknowledgement was lost reaches, after
// the transaction's deadline plus the clock skew allowance, a participant
// whose resource committed it and has forgotten it. The participant.Server
// over the resource, told the deadline by the COMMIT, acknowledges it and
// says so (the answer's forgotten); told none (an older coordinator), or
// before that time, "unknown transaction" stays a failure. Driven through
// the HTTP handler, as a coordinator would, by a server restarted over the
// restarted resource, so that only the resource's record (none) counts.
func (s *suite) forgottenCommit(t *testing.T) {
	r, restart := s.h.New(t, s.env())
	a, early := s.id(t, 7), s.id(t, 8)
	deadline := s.clock.Now().Add(30 * time.Second)
	forgetAt := deadline.Add(s.retention.ClockSkew)
	serve := func(r participant.Resource) *wire.ParticipantClient {
		srv, err := participant.NewServer(participant.Options{Resource: r, Clock: s.clock, Retention: s.retention})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		if err := srv.Start(ctxFor(t)); err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv.Handler())
		t.Cleanup(hs.Close)
		return &wire.ParticipantClient{BaseURL: hs.URL}
	}
	ctx := ctxFor(t)
	pc := serve(r)
	prep, err := pc.Prepare(ctx, wire.PrepareRequest{Coordinator: "http://127.0.0.1:1", Transactions: []wire.PrepareTx{
		{ID: a, Payload: s.h.Yes(7), DeadlineMS: deadline.UnixMilli()}}})
	if err != nil || len(prep.Votes) != 1 || prep.Votes[0].Vote != concord.VoteYes {
		t.Fatalf("prepare = %+v, %v", prep, err)
	}
	withDeadline := wire.DecisionRequest{IDs: []concord.TxID{a}, DeadlinesMS: []int64{deadline.UnixMilli()}}
	dec, err := pc.CommitRequest(ctx, withDeadline)
	if err != nil || len(dec.Acknowledged) != 1 || len(dec.Forgotten) != 0 {
		t.Fatalf("commit = %+v, %v; want acknowledged, not as forgotten", dec, err)
	}

	// Before the forget time, no record is an anomaly: a COMMIT, with a
	// deadline, of a transaction never prepared here fails.
	dec, err = pc.CommitRequest(ctx, wire.DecisionRequest{IDs: []concord.TxID{early}, DeadlinesMS: []int64{deadline.UnixMilli()}})
	if err != nil || len(dec.Acknowledged) != 0 || len(dec.Failed) != 1 || !strings.Contains(dec.Failed[0].Reason, "unknown") {
		t.Fatalf("commit with no record before its deadline plus skew = %+v, %v; want an unknown-transaction failure", dec, err)
	}

	// The acknowledgement was lost; the resource forgets the commit.
	s.clock.Advance(forgetAt.Sub(s.clock.Now()) + time.Second)
	s.decisions(t, r, 100, 4)
	s.wantRemembered(t, r, string(a), 0)
	r = restart(t)
	pc = serve(r)

	// Without a deadline (an older coordinator): a failure, as before.
	dec, err = pc.Commit(ctx, []concord.TxID{a})
	if err != nil || len(dec.Acknowledged) != 0 || len(dec.Failed) != 1 || !strings.Contains(dec.Failed[0].Reason, "unknown") {
		t.Fatalf("commit without a deadline of a forgotten transaction = %+v, %v; want an unknown-transaction failure", dec, err)
	}
	// With it: acknowledged, and said to be forgotten.
	for range 2 {
		dec, err = pc.CommitRequest(ctx, withDeadline)
		if err != nil || !slices.Equal(dec.Acknowledged, []concord.TxID{a}) || !slices.Equal(dec.Forgotten, []concord.TxID{a}) || len(dec.Failed) != 0 {
			t.Fatalf("commit with its deadline of a transaction committed and forgotten = %+v, %v; want acknowledged as forgotten", dec, err)
		}
	}
	// Nothing was made up: the resource still holds no record.
	s.wantRemembered(t, r, string(a), 0)
	wantRecovered(t, r, nil, []concord.TxID{a})
}
