package travel

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/wire"
)

var e2eStock = map[string][]Stock{
	Flights: {{"FL100", 200}, {"FL200", 12}},
	Hotels:  {{"H-PARIS", 250}, {"H-ROME", 20}},
	Cars:    {{"C-ECON", 220}, {"C-SUV", 15}},
}

// runTrips books n random trips from workers goroutines and returns every
// booking with its answer.
func runTrips(t *testing.T, cl *cluster, prefix string, n, workers int, seed uint64) []booking {
	return runTripsNotify(t, cl, prefix, n, workers, seed, nil)
}

// runTripsNotify is runTrips that also sends on done (if not nil; it must
// have room for n) once per answered trip.
func runTripsNotify(t *testing.T, cl *cluster, prefix string, n, workers int, seed uint64, done chan<- struct{}) []booking {
	t.Helper()
	skus := skusOf(e2eStock)
	out := make([]booking, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for i := range next {
				req := randomTrip(concord.TxID(fmt.Sprintf("%s-%d", prefix, i)), rng.IntN, skus)
				resp, err := cl.coord.Submit(context.Background(), req)
				if err != nil {
					t.Errorf("submit %s: %v", req.ID, err)
					continue
				}
				out[i] = booking{req: req, resp: resp}
				if done != nil {
					done <- struct{}{}
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// TestEndToEndConcurrent books hundreds of trips concurrently through a real
// coordinator and the three services over HTTP on loopback: some sell out,
// some name an unknown SKU, single-service trips commit in one phase. Every
// transaction must end in the same state at every service it touched, and
// every inventory must be conserved with confirmed equal to the committed
// quantities.
func TestEndToEndConcurrent(t *testing.T) {
	cl := newCluster(t, e2eStock)
	bookings := runTrips(t, cl, "trip", 400, 16, 1)
	cl.quiesce(t)
	cl.check(t, bookings)

	var committed, aborted, onePhase int
	for _, b := range bookings {
		switch b.resp.Outcome {
		case concord.OutcomeCommitted:
			committed++
		case concord.OutcomeAborted:
			aborted++
		}
		if len(b.req.Branches) == 1 {
			onePhase++
		}
	}
	// The workload is meant to exercise both outcomes and one-phase
	// commit; if it stops doing so the test proves less.
	if committed < 50 || aborted < 50 || onePhase < 20 {
		t.Fatalf("workload too one-sided: %d committed, %d aborted, %d one-phase", committed, aborted, onePhase)
	}
}

// TestEndToEndParticipantCrashInDoubt crashes the hotel service right when
// the COMMIT of a trip it voted yes on arrives (losing whatever it had not
// synced). The trip is committed (the decision was durable), the coordinator
// keeps retrying the hotel and shows it unacknowledged, other trips go on
// meanwhile, and when the hotel comes back it recovers its prepared
// reservation and commits it.
func TestEndToEndParticipantCrashInDoubt(t *testing.T) {
	cl := newCluster(t, e2eStock)
	hotel := cl.nodes[Hotels]
	const target = concord.TxID("in-doubt-trip")
	crashed := make(chan struct{})
	hotel.mu.Lock()
	hotel.onCommit = func(ids []concord.TxID) bool {
		if !slices.Contains(ids, target) {
			return false
		}
		hotel.onCommit = nil // called with hotel.mu unheld; cleared once
		close(crashed)
		return true
	}
	hotel.mu.Unlock()

	before := runTrips(t, cl, "before", 100, 8, 2)
	trip := wire.SubmitRequest{ID: target, Branches: []wire.Branch{
		{Participant: Flights, Payload: Request{SKU: "FL100", Quantity: 1}.Payload()},
		{Participant: Hotels, Payload: Request{SKU: "H-PARIS", Quantity: 2}.Payload()},
		{Participant: Cars, Payload: Request{SKU: "C-ECON", Quantity: 1}.Payload()},
	}}
	resp, err := cl.coord.Submit(context.Background(), trip)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Outcome != concord.OutcomeCommitted {
		t.Fatalf("the in-doubt trip: %+v", resp)
	}
	select {
	case <-crashed:
	case <-time.After(10 * time.Second):
		t.Fatal("the hotel never got the COMMIT")
	}
	// Down, the hotel cannot acknowledge: the coordinator retries and
	// shows it pending.
	eventually(t, 10*time.Second, "coordinator retrying the hotel", func() (bool, string) {
		st, err := cl.coord.Status(target)
		if err != nil {
			return false, err.Error()
		}
		for _, b := range st.Branches {
			if b.Participant == Hotels {
				return !b.Acknowledged && b.Attempts >= 3 && !st.Done, fmt.Sprintf("%+v", st)
			}
		}
		return false, fmt.Sprintf("no hotel branch: %+v", st)
	})
	during := runTrips(t, cl, "during", 60, 8, 3) // the hotel is down: its trips abort
	for _, b := range during {
		if b.resp.Outcome == concord.OutcomeCommitted && slices.ContainsFunc(b.req.Branches, func(br wire.Branch) bool { return br.Participant == Hotels }) {
			t.Errorf("%s committed with the hotel down: %s", b.resp.ID, branchNames(b.req))
		}
	}

	hotel.start(t, cl.coord.URL())
	_, hs := hotel.current()
	if r, err := hs.Reservation(context.Background(), target); err != nil || (r.State != StatePrepared && r.State != StateCommitted) {
		t.Fatalf("after the restart the hotel lost the prepared reservation: %+v, %v", r, err)
	}
	eventually(t, 10*time.Second, "the in-doubt trip to finish", func() (bool, string) {
		st, err := cl.coord.Status(target)
		return err == nil && st.Done, fmt.Sprintf("%+v %v", st, err)
	})
	after := runTrips(t, cl, "after", 60, 8, 4)
	cl.quiesce(t)
	all := append(append(append(before, booking{req: trip, resp: resp}), during...), after...)
	cl.check(t, all)
	r, err := hs.Reservation(context.Background(), target)
	if err != nil || r.State != StateCommitted || r.Quantity != 2 {
		t.Fatalf("hotel reservation of the in-doubt trip: %+v, %v", r, err)
	}
}

// TestEndToEndCrashesUnderLoad crashes each service in turn while trips
// run concurrently, at whatever point its work has reached (its file system
// drops every write not yet synced), and restarts it on the same storage a
// little later. Once everything settles, every trip must have one outcome
// at every service it touched and every inventory must be conserved.
func TestEndToEndCrashesUnderLoad(t *testing.T) {
	cl := newCluster(t, e2eStock)
	const n = 600
	done := make(chan struct{}, n)
	result := make(chan []booking, 1)
	go func() { result <- runTripsNotify(t, cl, "load", n, 16, 5, done) }()
	wait := func(k int) {
		for range k {
			<-done
		}
	}
	for _, name := range ServiceNames() {
		wait(60)
		cl.nodes[name].crash()
		wait(30) // trips go on: those that need the crashed service abort
		cl.nodes[name].start(t, cl.coord.URL())
	}
	bookings := <-result
	cl.quiesce(t)
	cl.check(t, bookings)
	var committed int
	for _, b := range bookings {
		if b.resp.Outcome == concord.OutcomeCommitted {
			committed++
		}
	}
	if committed < 50 {
		t.Fatalf("only %d of %d trips committed: the crashes should not stop the system for long", committed, n)
	}
}
