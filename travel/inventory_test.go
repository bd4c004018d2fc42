package travel

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/concordtx/concord"
)

func newTestInventory(t *testing.T, spec string) *Inventory {
	t.Helper()
	stock, err := ParseInventory(spec)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewInventory(stock)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func req(sku string, q int64) []byte { return Request{SKU: sku, Quantity: q}.Payload() }

func item(t *testing.T, v *Inventory, sku string) Item {
	t.Helper()
	for _, it := range v.Items() {
		if it.SKU == sku {
			return it
		}
	}
	t.Fatalf("no item %s", sku)
	return Item{}
}

func TestInventoryReserveCommitAbort(t *testing.T) {
	v := newTestInventory(t, "FL100=10,FL200=4")
	if _, err := v.Reserve("t1", req("FL100", 3)); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Reserve("t2", req("FL100", 2)); err != nil {
		t.Fatal(err)
	}
	if got := item(t, v, "FL100"); got != (Item{"FL100", 10, 5, 5, 0}) {
		t.Fatalf("after two holds: %+v", got)
	}
	if err := v.Commit("t1"); err != nil {
		t.Fatal(err)
	}
	if err := v.Abort("t2"); err != nil {
		t.Fatal(err)
	}
	if got := item(t, v, "FL100"); got != (Item{"FL100", 10, 7, 0, 3}) {
		t.Fatalf("after commit and abort: %+v", got)
	}
	if got := item(t, v, "FL200"); got != (Item{"FL200", 4, 4, 0, 0}) {
		t.Fatalf("untouched SKU changed: %+v", got)
	}
	r, err := v.Reservation("t1")
	if err != nil || r != (Reservation{ID: "t1", State: StateCommitted, SKU: "FL100", Quantity: 3}) {
		t.Fatalf("t1: %+v, %v", r, err)
	}
	r, err = v.Reservation("t2")
	if err != nil || r.State != StateAborted {
		t.Fatalf("t2: %+v, %v", r, err)
	}
	if _, err := v.Reservation("t3"); !errors.Is(err, ErrNoReservation) {
		t.Fatalf("t3: %v, want ErrNoReservation", err)
	}
	if err := v.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestInventoryRefusals(t *testing.T) {
	v := newTestInventory(t, "FL100=3")
	cases := []struct {
		payload []byte
		want    error
	}{
		{[]byte(`{`), ErrMalformedPayload},
		{req("FL100", 0), ErrBadQuantity},
		{req("ZZ9", 1), ErrUnknownSKU},
		{req("FL100", 4), ErrNotEnough},
	}
	for i, c := range cases {
		id := concord.TxID(fmt.Sprintf("r%d", i))
		if _, err := v.Reserve(id, c.payload); !errors.Is(err, c.want) {
			t.Errorf("Reserve(%s) = %v, want %v", c.payload, err, c.want)
		}
		if _, err := v.Reservation(id); !errors.Is(err, ErrNoReservation) {
			t.Errorf("a refused reservation left a record: %v", err)
		}
	}
	if got := item(t, v, "FL100"); got != (Item{"FL100", 3, 3, 0, 0}) {
		t.Fatalf("refusals changed the stock: %+v", got)
	}
	// Exactly the last units can be taken, then no more.
	if _, err := v.Reserve("a", req("FL100", 3)); err != nil {
		t.Fatal(err)
	}
	_, err := v.Reserve("b", req("FL100", 1))
	if !errors.Is(err, ErrNotEnough) || !strings.Contains(err.Error(), "0 available, 1 asked") {
		t.Fatalf("sold out: %v", err)
	}
}

func TestInventoryIdempotence(t *testing.T) {
	v := newTestInventory(t, "FL100=10")
	if _, err := v.Reserve("t1", req("FL100", 2)); err != nil {
		t.Fatal(err)
	}
	// A duplicate prepare holds nothing more, even with another payload.
	r, err := v.Reserve("t1", req("FL100", 5))
	if err != nil || r.Quantity != 2 {
		t.Fatalf("duplicate reserve: %+v, %v", r, err)
	}
	if got := item(t, v, "FL100"); got.Held != 2 {
		t.Fatalf("duplicate reserve held more: %+v", got)
	}
	for range 2 {
		if err := v.Commit("t1"); err != nil {
			t.Fatal(err)
		}
	}
	if got := item(t, v, "FL100"); got != (Item{"FL100", 10, 8, 0, 2}) {
		t.Fatalf("duplicate commit: %+v", got)
	}
	if err := v.Abort("t1"); !errors.Is(err, ErrDecided) {
		t.Fatalf("abort after commit: %v, want ErrDecided", err)
	}
	if _, err := v.Reserve("t2", req("FL100", 1)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := v.Abort("t2"); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Commit("t2"); !errors.Is(err, ErrDecided) {
		t.Fatalf("commit after abort: %v, want ErrDecided", err)
	}
	if _, err := v.Reserve("t2", req("FL100", 1)); !errors.Is(err, ErrDecided) {
		t.Fatalf("prepare after abort: %v, want ErrDecided", err)
	}
	if err := v.Commit("nobody"); !errors.Is(err, ErrNoReservation) {
		t.Fatalf("commit unknown: %v, want ErrNoReservation", err)
	}
	if err := v.Abort("nobody"); err != nil {
		t.Fatalf("abort unknown: %v", err)
	}
	if got := item(t, v, "FL100"); got != (Item{"FL100", 10, 8, 0, 2}) {
		t.Fatalf("end state: %+v", got)
	}
}

// TestInventoryConservationRandom drives random operations from many
// goroutines and checks conservation and that confirmed equals the committed
// quantities.
func TestInventoryConservationRandom(t *testing.T) {
	v := newTestInventory(t, "A=50,B=20,C=3")
	skus := []string{"A", "B", "C", "D"}
	var mu sync.Mutex
	committed := map[string]int64{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for i := range 300 {
				id := concord.TxID(fmt.Sprintf("g%d-%d", g, i))
				sku := skus[rng.IntN(len(skus))]
				r, err := v.Reserve(id, req(sku, int64(1+rng.IntN(4))))
				if err != nil {
					continue
				}
				if rng.IntN(2) == 0 {
					if err := v.Commit(id); err != nil {
						t.Error(err)
					}
					mu.Lock()
					committed[r.SKU] += r.Quantity
					mu.Unlock()
				} else if err := v.Abort(id); err != nil {
					t.Error(err)
				}
				if i%50 == 0 {
					if err := v.Check(); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := v.Check(); err != nil {
		t.Fatal(err)
	}
	for _, it := range v.Items() {
		if it.Confirmed != committed[it.SKU] {
			t.Errorf("%s: confirmed %d, committed quantities sum to %d", it.SKU, it.Confirmed, committed[it.SKU])
		}
		if it.Held != 0 {
			t.Errorf("%s: %d still held with every transaction decided", it.SKU, it.Held)
		}
	}
}

func TestInventorySnapshotRestore(t *testing.T) {
	v := newTestInventory(t, "A=10,B=5")
	mustReserve := func(id concord.TxID, sku string, q int64) {
		t.Helper()
		if _, err := v.Reserve(id, req(sku, q)); err != nil {
			t.Fatal(err)
		}
	}
	mustReserve("p1", "A", 2)
	mustReserve("c1", "A", 3)
	mustReserve("a1", "B", 1)
	if err := v.Commit("c1"); err != nil {
		t.Fatal(err)
	}
	if err := v.Abort("a1"); err != nil {
		t.Fatal(err)
	}
	snap, err := v.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	w := newTestInventory(t, "Z=1")
	if err := w.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(w.Items()) != fmt.Sprint(v.Items()) {
		t.Fatalf("items: %v, want %v", w.Items(), v.Items())
	}
	if fmt.Sprint(w.Reservations("")) != fmt.Sprint(v.Reservations("")) {
		t.Fatalf("reservations: %v, want %v", w.Reservations(""), v.Reservations(""))
	}
	// The restored inventory behaves as the original would.
	if err := w.Commit("p1"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Reserve("a1", req("B", 1)); !errors.Is(err, ErrDecided) {
		t.Fatalf("prepare after abort, restored: %v", err)
	}
	if got := item(t, w, "A"); got != (Item{"A", 10, 5, 0, 5}) {
		t.Fatalf("restored A after commit: %+v", got)
	}
}

func TestInventoryRestoreRejectsBadSnapshots(t *testing.T) {
	v := newTestInventory(t, "A=10")
	if _, err := v.Reserve("p1", req("A", 2)); err != nil {
		t.Fatal(err)
	}
	good, err := v.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string]string{
		"not json":        `{`,
		"unknown field":   strings.Replace(string(good), `"version"`, `"x":1,"version"`, 1),
		"version":         strings.Replace(string(good), `"version":1`, `"version":9`, 1),
		"broken sum":      strings.Replace(string(good), `"available":8`, `"available":9`, 1),
		"held mismatch":   strings.Replace(string(good), `"quantity":2`, `"quantity":1`, 1),
		"bad txid":        strings.Replace(string(good), `"id":"p1"`, `"id":"p 1"`, 1),
		"bad state":       strings.Replace(string(good), `"state":"prepared"`, `"state":"committed"`, 1),
		"unknown sku ref": strings.Replace(string(good), `"sku":"A","quantity"`, `"sku":"B","quantity"`, 1),
	}
	for name, b := range bad {
		if b == string(good) {
			t.Fatalf("%s: replacement did not apply to %s", name, good)
		}
		w := newTestInventory(t, "Q=1")
		if err := w.Restore([]byte(b)); err == nil {
			t.Errorf("%s: restored without error", name)
		}
		if got := w.Items(); len(got) != 1 || got[0].SKU != "Q" {
			t.Errorf("%s: failed restore changed the inventory: %v", name, got)
		}
	}
}

func TestInventoryRetention(t *testing.T) {
	v := newTestInventory(t, "A=1000000")
	if _, err := v.Reserve("keep", req("A", 1)); err != nil {
		t.Fatal(err)
	}
	for i := range DecidedRetention + 5 {
		id := concord.TxID(fmt.Sprintf("t%d", i))
		if _, err := v.Reserve(id, req("A", 1)); err != nil {
			t.Fatal(err)
		}
		if err := v.Commit(id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := v.Reservation("t0"); !errors.Is(err, ErrNoReservation) {
		t.Fatalf("oldest decided still remembered: %v", err)
	}
	if _, err := v.Reservation("t5"); err != nil {
		t.Fatalf("t5 forgotten too early: %v", err)
	}
	if r, err := v.Reservation("keep"); err != nil || r.State != StatePrepared {
		t.Fatalf("prepared reservation forgotten: %+v, %v", r, err)
	}
	if got := item(t, v, "A"); got.Confirmed != DecidedRetention+5 || got.Held != 1 {
		t.Fatalf("counts: %+v", got)
	}
	if err := v.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestInventorySnapshotEncoding checks that Snapshot writes what
// encoding/json writes for the whole snapshot, reservations with unusual
// reasons included.
func TestInventorySnapshotEncoding(t *testing.T) {
	v, err := NewInventory([]Stock{{SKU: "A", Capacity: 10}, {SKU: "B.2", Capacity: 5}})
	if err != nil {
		t.Fatal(err)
	}
	for i, q := range []int64{1, 2, 3, 1} {
		id := concord.TxID(fmt.Sprintf("t%d", i))
		if _, err := v.Reserve(id, Request{SKU: "A", Quantity: q}.Payload()); err != nil {
			t.Fatal(err)
		}
		switch i {
		case 0:
			v.Commit(id)
		case 1:
			v.Abort(id)
		}
	}
	v.decided = append(v.decided, &Reservation{ID: "odd", State: StateAborted, Reason: `sold <out> & "gone" é`},
		&Reservation{ID: "plain", State: StateAborted, Reason: "refused"})
	got, err := v.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	want := snapshot{Version: snapshotVersion, Items: v.Items()}
	for _, id := range []concord.TxID{"t2", "t3"} {
		want.Prepared = append(want.Prepared, *v.res[id])
	}
	for _, r := range v.decided {
		want.Decided = append(want.Decided, *r)
	}
	wantJSON, _ := json.Marshal(want)
	if string(got) != string(wantJSON) {
		t.Fatalf("Snapshot wrote\n%s\nencoding/json writes\n%s", got, wantJSON)
	}
}

// BenchmarkInventorySnapshot encodes an inventory remembering
// DecidedRetention decided reservations, as the file store's snapshots do,
// with ids of the coordinator's form.
func BenchmarkInventorySnapshot(b *testing.B) {
	v, err := NewInventory([]Stock{{SKU: "C-ECON", Capacity: MaxCapacity}})
	if err != nil {
		b.Fatal(err)
	}
	p := Request{SKU: "C-ECON", Quantity: 1}.Payload()
	for i := range DecidedRetention + 100 {
		id := concord.TxID(fmt.Sprintf("tx-%024x", uint64(i)*0x9e3779b97f4a7c15))
		if _, err := v.Reserve(id, p); err != nil {
			b.Fatal(err)
		}
		if i < DecidedRetention {
			v.Commit(id)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Snapshot(); err != nil {
			b.Fatal(err)
		}
	}
}
