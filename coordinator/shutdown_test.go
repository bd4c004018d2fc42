package coordinator_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/coordinator"
	"github.com/concordtx/concord/internal/testutil"
	"github.com/concordtx/concord/wire"
)

// Close in the middle of hundreds of transactions returns, every caller
// gets an answer (an outcome, or "unavailable"), and a coordinator started
// on the same log brings every transaction to one outcome at every
// participant, the one its client heard if it heard one.
func TestCloseUnderLoadThenRestart(t *testing.T) {
	const n = 300
	e := newEnv(t, "flights", "hotels", "cars")
	e.start()
	heard := make([]concord.Outcome, n)
	var wg sync.WaitGroup
	admitted := make(chan struct{})
	var once sync.Once
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if i == n/3 {
				once.Do(func() { close(admitted) })
			}
			r, err := e.c.Submit(context.Background(), wire.SubmitRequest{
				ID: concord.TxID(fmt.Sprintf("sd-%04d", i)), Branches: branches("flights", "hotels", "cars")})
			switch {
			case err == nil:
				heard[i] = r.Outcome
			case !errors.Is(err, coordinator.ErrUnavailable):
				t.Errorf("sd-%04d: %v", i, err)
			}
		}(i)
	}
	<-admitted
	if err := e.c.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	e.c = nil
	e.start()
	eventually(t, "every transaction settled", func() bool {
		for _, p := range e.parts {
			for _, id := range p.InDoubt() {
				switch e.outcome(id) {
				case concord.OutcomeCommitted:
					p.SetState(id, "committed")
				case concord.OutcomeAborted:
					p.SetState(id, "aborted")
				}
			}
		}
		return e.c.Stats().Live == 0 && len(e.parts["flights"].InDoubt())+len(e.parts["hotels"].InDoubt())+len(e.parts["cars"].InDoubt()) == 0
	})
	for i := 0; i < n; i++ {
		id := concord.TxID(fmt.Sprintf("sd-%04d", i))
		states := map[string]bool{}
		for _, p := range e.parts {
			if s := p.State(id); s != "" {
				states[s] = true
			}
		}
		if len(states) > 1 {
			t.Fatalf("%s: participants disagree: %v", id, states)
		}
		if heard[i] == concord.OutcomeCommitted && !states["committed"] || heard[i] == concord.OutcomeAborted && states["committed"] {
			t.Fatalf("%s: client heard %v, participants hold %v", id, heard[i], states)
		}
	}
}

// A client waiting for a transaction that has no outcome yet hears
// "unavailable" as soon as the coordinator closes: its wait is woken, not
// left to the answer's grace (which the fake clock never reaches).
func TestCloseWakesAWaitingClient(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	e.parts["hotels"].SetMode(testutil.Silent)
	e.start()
	done := make(chan error, 1)
	go func() {
		_, err := e.c.Submit(context.Background(), wire.SubmitRequest{ID: "waiting", Branches: branches("flights", "hotels")})
		done <- err
	}()
	eventually(t, "the PREPARE held by hotels", func() bool { return e.parts["hotels"].Count(wire.PathPrepare) == 1 })
	if err := e.c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, coordinator.ErrUnavailable) {
			t.Fatalf("Submit after Close: %v, want ErrUnavailable", err)
		}
	case <-time.After(10 * time.Second): // a bound on failure, not a synchronization
		t.Fatal("Submit still waits after Close")
	}
	e.c = nil
}
