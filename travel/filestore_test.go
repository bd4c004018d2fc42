package travel

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/filestore"
	"github.com/concordtx/concord/wal/memfs"
)

func openMem(t *testing.T, mfs *memfs.FS, stock []Stock) *FileStore {
	t.Helper()
	st, err := OpenFileStore(StoreConfig{Service: Flights, Dir: "/data/flights", FS: mfs, Stock: stock})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func mustVote(t *testing.T, st Store, id concord.TxID, sku string, q int64, want concord.Vote) {
	t.Helper()
	res, err := st.Prepare(t.Context(), id, Request{SKU: sku, Quantity: q}.Payload(), participant.PrepareInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Vote != want {
		t.Fatalf("prepare %s: %s (%s), want %s", id, res.Vote, res.Reason, want)
	}
}

func itemsOf(t *testing.T, st Store) []Item {
	t.Helper()
	items, err := st.Items(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// TestFileStoreSurvivesCrash prepares, commits and aborts, crashes the file
// system (dropping everything not synced), reopens, and finds every
// acknowledged hold and confirmation again.
func TestFileStoreSurvivesCrash(t *testing.T) {
	mfs := memfs.New()
	ctx := t.Context()
	st := openMem(t, mfs, []Stock{{"FL100", 10}, {"FL200", 2}})
	mustVote(t, st, "held", "FL100", 3, concord.VoteYes)
	mustVote(t, st, "done", "FL100", 2, concord.VoteYes)
	mustVote(t, st, "gone", "FL200", 2, concord.VoteYes)
	mustVote(t, st, "refused", "FL200", 1, concord.VoteNo)
	if err := st.Commit(ctx, "done"); err != nil {
		t.Fatal(err)
	}
	if err := st.Abort(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	// Commit is durable on return; the abort is not forced, so make a later
	// forced write cover it.
	mustVote(t, st, "later", "FL200", 1, concord.VoteYes)
	before := fmt.Sprint(itemsOf(t, st))

	mfs.Crash() // the process dies: no Close
	st2 := openMem(t, mfs, nil)
	defer st2.Close()
	if got := fmt.Sprint(itemsOf(t, st2)); got != before {
		t.Fatalf("after crash: %s\nbefore:      %s", got, before)
	}
	if err := st2.Check(); err != nil {
		t.Fatal(err)
	}
	ids, err := st2.Recover(ctx)
	if err != nil || len(ids) != 2 || ids[0].ID != "held" || ids[1].ID != "later" {
		t.Fatalf("recover: %v, %v", ids, err)
	}
	r, err := st2.Reservation(ctx, "refused")
	if err != nil || r.State != StateAborted || r.Reason == "" {
		t.Fatalf("refused reservation after restart: %+v, %v", r, err)
	}
	// The recovered hold commits, and a late prepare of the aborted one is refused.
	if err := st2.Commit(ctx, "held"); err != nil {
		t.Fatal(err)
	}
	mustVote(t, st2, "gone", "FL200", 1, concord.VoteNo)
	if err := st2.Abort(ctx, "done"); !errors.Is(err, participant.ErrAlreadyDecided) {
		t.Fatalf("abort committed: %v", err)
	}
	if err := st2.Commit(ctx, "nobody"); !errors.Is(err, participant.ErrUnknownTx) {
		t.Fatalf("commit unknown: %v", err)
	}
	if got := itemsOf(t, st2)[0]; got != (Item{"FL100", 10, 5, 0, 5}) {
		t.Fatalf("FL100: %+v", got)
	}
}

// TestFileStoreUnsyncedAbortReplaysSafely crashes after an unforced abort:
// whether or not the abort record survived, the inventory is conserved and
// the transaction can still be aborted.
func TestFileStoreUnsyncedAbortReplaysSafely(t *testing.T) {
	mfs := memfs.New()
	ctx := t.Context()
	st := openMem(t, mfs, []Stock{{"A", 4}})
	mustVote(t, st, "p", "A", 4, concord.VoteYes)
	if err := st.Abort(ctx, "p"); err != nil { // not forced
		t.Fatal(err)
	}
	mfs.Crash()
	st2 := openMem(t, mfs, nil)
	defer st2.Close()
	// The abort record may be lost: then p is prepared again (presumed
	// abort resolves it); either way, conservation holds.
	if err := st2.Check(); err != nil {
		t.Fatal(err)
	}
	it := itemsOf(t, st2)[0]
	if it.Held+it.Available != 4 || it.Confirmed != 0 {
		t.Fatalf("after crash: %+v", it)
	}
	if err := st2.Abort(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if got := itemsOf(t, st2)[0]; got != (Item{"A", 4, 4, 0, 0}) {
		t.Fatalf("after abort: %+v", got)
	}
}

func TestFileStoreStockIsFixedAtCreation(t *testing.T) {
	mfs := memfs.New()
	st := openMem(t, mfs, []Stock{{"A", 4}})
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopening without a stock keeps the stored one, not the default.
	st = openMem(t, mfs, nil)
	if got := itemsOf(t, st); len(got) != 1 || got[0].SKU != "A" {
		t.Fatalf("reopened: %v", got)
	}
	st.Close()
	// The same stock given again is fine; another is refused, naming both.
	openMem(t, mfs, []Stock{{"A", 4}}).Close()
	_, err := OpenFileStore(StoreConfig{Service: Flights, Dir: "/data/flights", FS: mfs, Stock: []Stock{{"A", 5}}})
	if !errors.Is(err, ErrStockMismatch) {
		t.Fatalf("different stock: %v, want ErrStockMismatch", err)
	}
	if want := "the store holds A=4, the configuration asks for A=5"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
	// A fresh store without a stock gets the service's default.
	d, err := OpenFileStore(StoreConfig{Service: Hotels, Dir: "/data/hotels", FS: mfs})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	def, _ := DefaultInventory(Hotels)
	if got := itemsOf(t, d); len(got) != len(def) || got[0].SKU != def[0].SKU {
		t.Fatalf("default hotels inventory: %v", got)
	}
}

func TestFileStoreBadStockFile(t *testing.T) {
	mfs := memfs.New()
	if err := mfs.MkdirAll("/d"); err != nil {
		t.Fatal(err)
	}
	if err := mfs.WriteFile("/d/"+stockFile, []byte(`[{"sku":"A","capacity":-1}]`)); err != nil {
		t.Fatal(err)
	}
	_, err := OpenFileStore(StoreConfig{Service: Flights, Dir: "/d", FS: mfs})
	if !errors.Is(err, ErrBadInventory) || !strings.Contains(err.Error(), stockFile) {
		t.Fatalf("bad stock file: %v", err)
	}
	if _, err := OpenFileStore(StoreConfig{Service: Flights, FS: mfs}); !errors.Is(err, ErrBadOptions) {
		t.Fatalf("no directory: %v", err)
	}
}

// TestFileStoreConcurrentCrashes runs concurrent prepares and decisions,
// crashes at a random moment, reopens, and checks conservation and that
// every acknowledged result survived, over several seeds.
func TestFileStoreConcurrentCrashes(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			mfs := memfs.New()
			st := openMem(t, mfs, []Stock{{"A", 400}, {"B", 100}})
			target := 20 + int(seed)*10
			reached := make(chan struct{})
			var mu sync.Mutex
			acked := map[concord.TxID]State{} // results the store acknowledged
			var wg sync.WaitGroup
			ctx, cancel := context.WithCancel(t.Context())
			for g := range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(seed, uint64(g)))
					for i := 0; ctx.Err() == nil && i < 200; i++ {
						id := concord.TxID(fmt.Sprintf("s%d-g%d-%d", seed, g, i))
						sku := []string{"A", "B"}[rng.IntN(2)]
						res, err := st.Prepare(ctx, id, Request{SKU: sku, Quantity: int64(1 + rng.IntN(3))}.Payload(), participant.PrepareInfo{})
						if err != nil || res.Vote != concord.VoteYes {
							continue
						}
						mu.Lock()
						acked[id] = StatePrepared
						if len(acked) == target {
							close(reached)
						}
						mu.Unlock()
						if rng.IntN(2) == 0 {
							if st.Commit(ctx, id) == nil {
								mu.Lock()
								acked[id] = StateCommitted
								mu.Unlock()
							}
						} else {
							_ = st.Abort(ctx, id) // unforced: may be lost
						}
					}
				}()
			}
			// Crash after some work, while the goroutines still run.
			finished := make(chan struct{})
			go func() { wg.Wait(); close(finished) }()
			select {
			case <-reached:
			case <-finished:
				t.Fatalf("the workload ended before %d acknowledgements", target)
			}
			mu.Lock()
			mfs.Crash()
			snapshot := make(map[concord.TxID]State, len(acked))
			for id, s := range acked {
				snapshot[id] = s
			}
			mu.Unlock()
			cancel()
			<-finished

			st2 := openMem(t, mfs, nil)
			defer st2.Close()
			if err := st2.Check(); err != nil {
				t.Fatal(err)
			}
			for id, want := range snapshot {
				r, err := st2.Reservation(t.Context(), id)
				if err != nil {
					t.Fatalf("%s acknowledged %s, lost after crash: %v", id, want, err)
				}
				if want == StateCommitted && r.State != StateCommitted {
					t.Fatalf("%s: committed, after crash %s", id, r.State)
				}
			}
		})
	}
}

// TestMachineRefusesRememberedIDs: an id the store has forgotten but the
// inventory still remembers is refused, never voted yes without a hold.
func TestMachineRefusesRememberedIDs(t *testing.T) {
	inv, err := NewInventory([]Stock{{"A", 5}})
	if err != nil {
		t.Fatal(err)
	}
	m := machine{inv}
	if r := m.Prepare("t1", Request{SKU: "A", Quantity: 2}.Payload()); r.Vote != concord.VoteYes {
		t.Fatalf("first prepare: %+v", r)
	}
	m.Commit("t1")
	r := m.Prepare("t1", Request{SKU: "A", Quantity: 2}.Payload())
	if r.Vote != concord.VoteNo || !strings.Contains(r.Reason, "already used") {
		t.Fatalf("prepare of a committed id: %+v", r)
	}
	if got := inv.Items()[0]; got != (Item{"A", 5, 3, 0, 2}) {
		t.Fatalf("items %+v", got)
	}
}

// TestFileStoreReservationPastInventoryRetention: a committed reservation
// the inventory no longer details is still reported committed.
func TestFileStoreReservationPastInventoryRetention(t *testing.T) {
	st := openMem(t, memfs.New(), []Stock{{"A", 100}})
	defer st.Close()
	st.inv.mu.Lock()
	st.inv.retain = 5
	st.inv.mu.Unlock()
	ctx := t.Context()
	for i := range 6 {
		id := concord.TxID(fmt.Sprintf("t%d", i))
		mustVote(t, st, id, "A", 1, concord.VoteYes)
		if err := st.Commit(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	r, err := st.Reservation(ctx, "t0")
	if err != nil || r.State != StateCommitted || r.SKU != "" {
		t.Fatalf("t0 past the inventory's retention: %+v, %v", r, err)
	}
	if r, err := st.Reservation(ctx, "t1"); err != nil || r.SKU != "A" || r.Quantity != 1 {
		t.Fatalf("t1: %+v, %v", r, err)
	}
}

func TestFileStoreLogWithoutStockFile(t *testing.T) {
	mfs := memfs.New()
	st := openMem(t, mfs, []Stock{{"A", 4}})
	mustVote(t, st, "p", "A", 1, concord.VoteYes)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := mfs.Remove("/data/flights/" + stockFile); err != nil {
		t.Fatal(err)
	}
	_, err := OpenFileStore(StoreConfig{Service: Flights, Dir: "/data/flights", FS: mfs})
	if !errors.Is(err, filestore.ErrCorrupt) || !strings.Contains(err.Error(), "no "+stockFile) {
		t.Fatalf("log without stock file: %v", err)
	}
}
