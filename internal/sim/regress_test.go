package sim

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/travel"
	"github.com/concordtx/concord/wal/memfs"
)

// abortBeforePrepareSurvives aborts a transaction the resource never saw,
// crashes the disk, reopens and prepares it: a resource that keeps its
// promise refuses.
func abortBeforePrepareSurvives(t *testing.T, open func(disk *memfs.FS) (resource, error)) bool {
	t.Helper()
	disk := memfs.New()
	r, err := open(disk)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := r.Abort(ctx, "tx-late"); err != nil {
		t.Fatal(err)
	}
	disk.Crash()
	r.close()
	if r, err = open(disk); err != nil {
		t.Fatal(err)
	}
	defer r.close()
	res, err := r.Prepare(ctx, "tx-late", travel.Request{SKU: "A", Quantity: 1}.Payload(), participant.PrepareInfo{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Vote == concord.VoteNo
}

func testStock() []travel.Stock {
	return []travel.Stock{{SKU: "A", Capacity: 5}, {SKU: "B", Capacity: 5}}
}

// TestAbortBeforePrepareSurvivesCrash: a resource that acknowledged an
// ABORT for a transaction it had not seen (an abort that overtook its
// PREPARE) must refuse that PREPARE even after a crash. The coordinator
// settles a one-phase transaction whose answer is late as "aborted" on that
// acknowledgement; if the resource forgets it, the late one-phase PREPARE
// commits and the client was told the opposite. The simulator found this in
// participant/filestore, which wrote that ABORT unforced (TestSimulation
// seed 1831 at the time: "client told aborted, but the transaction
// committed"); it now forces it.
func TestAbortBeforePrepareSurvivesCrash(t *testing.T) {
	t.Run("sim store", func(t *testing.T) {
		if !abortBeforePrepareSurvives(t, func(disk *memfs.FS) (resource, error) {
			return openSimStore(disk, storeDir, testStock())
		}) {
			t.Fatal("after a crash the late prepare was accepted")
		}
	})
	t.Run("filestore", func(t *testing.T) {
		p := &partNode{s: newSim(Options{Seed: 1}), name: "flights", stock: testStock(), armed: new(atomic.Bool), fired: new(atomic.Bool)}
		if !abortBeforePrepareSurvives(t, func(disk *memfs.FS) (resource, error) {
			p.disk = disk
			return openFileResource(p)
		}) {
			t.Fatal("participant/filestore lost an acknowledged abort-before-prepare in a crash: " +
				"the late prepare was accepted (a late one-phase prepare then commits a transaction the client was told aborted)")
		}
	})
}

// onePhaseRefusalSurvives refuses a one-phase commit for want of stock,
// crashes the disk, frees the stock and asks again: a resource that keeps
// its answer refuses again.
func onePhaseRefusalSurvives(t *testing.T, open func(disk *memfs.FS) (resource, error)) bool {
	t.Helper()
	disk := memfs.New()
	r, err := open(disk)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	hold := travel.Request{SKU: "A", Quantity: 5}.Payload() // all of A
	if res, err := r.Prepare(ctx, "tx-hold", hold, participant.PrepareInfo{}); err != nil || res.Vote != concord.VoteYes {
		t.Fatalf("prepare tx-hold: %v %v", res, err)
	}
	late := travel.Request{SKU: "A", Quantity: 1}.Payload()
	if o, _, err := r.CommitOnePhase(ctx, "tx-late", late, participant.PrepareInfo{}); err != nil || o != concord.OutcomeAborted {
		t.Fatalf("one-phase tx-late with A sold out: %v %v", o, err)
	}
	disk.Crash()
	r.close()
	if r, err = open(disk); err != nil {
		t.Fatal(err)
	}
	defer r.close()
	if err := r.Abort(ctx, "tx-hold"); err != nil { // A is free again
		t.Fatal(err)
	}
	o, _, err := r.CommitOnePhase(ctx, "tx-late", late, participant.PrepareInfo{})
	if err != nil {
		t.Fatal(err)
	}
	return o == concord.OutcomeAborted
}

// TestOnePhaseRefusalSurvivesCrash: a one-phase refusal is the
// transaction's outcome, reported to the client as final, so a duplicate
// of that request must get the same answer after a crash, even once stock
// is free. The simulator found both stores losing it (TestSimulation -store
// sim, seed 13290 at the time: "client told aborted, but the transaction
// committed"); participant/filestore wrote the refusal unforced and now
// forces it.
func TestOnePhaseRefusalSurvivesCrash(t *testing.T) {
	t.Run("sim store", func(t *testing.T) {
		if !onePhaseRefusalSurvives(t, func(disk *memfs.FS) (resource, error) {
			return openSimStore(disk, storeDir, testStock())
		}) {
			t.Fatal("after a crash the refused one-phase transaction committed")
		}
	})
	t.Run("filestore", func(t *testing.T) {
		p := &partNode{s: newSim(Options{Seed: 1}), name: "flights", stock: testStock(), armed: new(atomic.Bool), fired: new(atomic.Bool)}
		if !onePhaseRefusalSurvives(t, func(disk *memfs.FS) (resource, error) {
			p.disk = disk
			return openFileResource(p)
		}) {
			t.Fatal("participant/filestore lost a reported one-phase refusal in a crash: a duplicate of the request committed a transaction the client was told aborted")
		}
	})
}

// TestNetwork checks the simulated network on its own: a perfect network
// delivers every message once, a cut link delivers nothing, loss and
// duplication happen at about their rates.
func TestNetwork(t *testing.T) {
	deliveries := func(f NetFaults, cut bool) (int, *network) {
		s := newSim(Options{Seed: 7, Participants: 1, Faults: &Faults{Net: f}})
		s.coord.start()
		s.parts[0].start()
		if cut {
			s.net.cut[[2]string{coordinatorName, s.parts[0].name}] = true
		}
		got := 0
		s.onSend = func(message) {}
		// Outcome answers to queries nobody asked are dropped by the
		// receiver, so they only count deliveries.
		for i := range 1000 {
			s.net.send(message{kind: msgOutcome, from: coordinatorName, to: s.parts[0].name, tx: "x", req: uint64(i)}, nil)
		}
		for s.sched.step(epoch.Add(time.Hour)) {
		}
		got = s.net.delivered
		return got, s.net
	}
	if n, _ := deliveries(NetFaults{MaxDelay: 10 * time.Millisecond}, false); n != 1000 {
		t.Errorf("perfect network delivered %d of 1000", n)
	}
	if n, _ := deliveries(NetFaults{}, true); n != 0 {
		t.Errorf("cut link delivered %d", n)
	}
	n, net := deliveries(NetFaults{Drop: 0.2, Duplicate: 0.1}, false)
	if net.dropped < 120 || net.dropped > 280 || net.duplicated < 50 || net.duplicated > 150 {
		t.Errorf("drop 0.2, duplicate 0.1 of 1000: %d dropped, %d duplicated", net.dropped, net.duplicated)
	}
	if n != 1000-net.dropped+net.duplicated {
		t.Errorf("delivered %d, want %d sent - %d dropped + %d duplicated", n, 1000, net.dropped, net.duplicated)
	}
}

// TestSchedulerOrder checks that events run in time order, and in the
// order they were scheduled at equal times.
func TestSchedulerOrder(t *testing.T) {
	s := newScheduler()
	var got []int
	for i, d := range []time.Duration{3, 1, 2, 1, 0} {
		s.after(d*time.Millisecond, func() { got = append(got, i) })
	}
	for s.step(epoch.Add(time.Second)) {
	}
	want := []int{4, 1, 3, 2, 0}
	if len(got) != len(want) {
		t.Fatalf("ran %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("ran %v, want %v", got, want)
		}
	}
	if s.step(epoch.Add(time.Second)) {
		t.Fatal("step with an empty queue ran something")
	}
}
