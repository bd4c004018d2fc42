package coordinator_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/participanttest"
	"github.com/concordtx/concord/wire"
)

// A COMMIT whose acknowledgement is lost for longer than the transaction's
// deadline plus the participant's clock skew allowance reaches a real
// participant.Server whose resource committed the transaction and has since
// forgotten it. The COMMIT carries the deadline, so the participant
// acknowledges it as committed and forgotten, and the transaction finishes
// acknowledged instead of awaiting an acknowledgement forever.
func TestCommitAckLostPastForgetTimeFinishes(t *testing.T) {
	e := newEnv(t, "flights")
	e.opts.RetryMin, e.opts.RetryMax = 100*time.Millisecond, time.Second

	retention := participant.Retention{MaxLifetime: time.Minute, ClockSkew: 10 * time.Second}
	pclock := participanttest.NewFakeClock(epoch)
	res := participanttest.NewMemResource()
	res.Now, res.Retention = pclock.Now, retention
	srv, err := participant.NewServer(participant.Options{Resource: res, Clock: pclock, Retention: retention,
		Retain: 1, Shards: 1}) // a small memory: the resource's record is what counts
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The hotels participant applies every COMMIT, but while drop is set
	// its answer is lost: the coordinator gets a 503 instead.
	var drop atomic.Bool
	var commits atomic.Int64
	drop.Store(true)
	h := srv.Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != wire.PathCommit {
			h.ServeHTTP(w, r)
			return
		}
		commits.Add(1)
		if !drop.Load() {
			h.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		wire.WriteError(w, http.StatusServiceUnavailable, "acknowledgement lost")
	}))
	t.Cleanup(hs.Close)
	e.opts.Participants["hotels"] = hs.URL
	e.start()

	const id = "lost-ack"
	resp := e.submit(wire.SubmitRequest{ID: id, TimeoutMS: 5000, Branches: branches("flights", "hotels")})
	if resp.Outcome != concord.OutcomeCommitted {
		t.Fatalf("outcome %v", resp.Outcome)
	}
	eventually(t, "a COMMIT applied and its acknowledgement lost", func() bool {
		return res.State(id) == "committed" && e.status(id).Branches[1].Attempts >= 1
	})
	if e.status(id).Done {
		t.Fatal("done without the hotels acknowledgement")
	}

	// The partition lasts past deadline + skew by the participant's
	// clock: the resource forgets the commit, and another decision pushes
	// it out of the server's memory.
	pclock.Advance(5*time.Second + retention.ClockSkew + time.Second)
	if n, err := res.Remembered(context.Background(), id); err != nil || n != 0 {
		t.Fatalf("the resource still remembers %s: %d, %v", id, n, err)
	}
	if _, err := srv.Abort(context.Background(), []concord.TxID{"other"}); err != nil {
		t.Fatal(err)
	}

	// The partition heals; the next COMMIT is answered.
	drop.Store(false)
	before := commits.Load()
	for i := 0; !e.status(id).Done; i++ {
		if i > 200 {
			st := e.status(id)
			t.Fatalf("after %d more COMMITs the transaction is not done: %+v", commits.Load()-before, st.Branches[1])
		}
		e.clock.Advance(e.opts.RetryMax)
		eventually(t, "a retried COMMIT answered", func() bool {
			b := e.status(id).Branches[1]
			return b.Acknowledged || b.LastError != "" && commits.Load() > before
		})
	}
	if b := e.status(id).Branches[1]; !b.Acknowledged {
		t.Fatalf("hotels branch %+v; want acknowledged", b)
	}
}
