package chaos

import (
	"strings"
	"testing"

	"github.com/concordtx/concord"
)

// consistent is an observation of a healthy run: t1 committed at flights and
// hotels, t2 aborted (hotels voted no and kept nothing), t3 never reached
// anyone.
func consistent() observation {
	return observation{
		txs: []*txRecord{
			{ID: "t1", Answer: "committed", Branches: []booking{{"flights", "FL100", 2}, {"hotels", "H-OSLO", 1}}},
			{ID: "t2", Answer: "aborted", Branches: []booking{{"flights", "FL100", 1}, {"hotels", "H-OSLO", 5}}},
			{ID: "t3", Branches: []booking{{"cars", "C-ECON", 1}}},
		},
		coordinator: map[string]string{"t1": "committed", "t2": "aborted"},
		reservations: map[string]map[string]string{
			"flights": {"t1": "committed", "t2": "aborted"},
			"hotels":  {"t1": "committed"},
			"cars":    {},
		},
		inventories: map[string][]item{
			"flights": {{SKU: "FL100", Capacity: 10, Available: 8, Confirmed: 2}},
			"hotels":  {{SKU: "H-OSLO", Capacity: 3, Available: 2, Confirmed: 1}},
			"cars":    {{SKU: "C-ECON", Capacity: 5, Available: 5}},
		},
		capacity: map[string]map[string]int64{
			"flights": {"FL100": 10}, "hotels": {"H-OSLO": 3}, "cars": {"C-ECON": 5},
		},
		retention: 100,
	}
}

func TestCheckAcceptsAConsistentRun(t *testing.T) {
	v := check(consistent())
	if len(v.violations) != 0 || len(v.inexactStock) != 0 {
		t.Fatalf("violations in a consistent run: %v (inexact %v)", v.violations, v.inexactStock)
	}
}

func TestCheckFindsEachViolation(t *testing.T) {
	cases := []struct {
		name   string
		break_ func(o *observation)
		want   string
	}{
		{"split outcome", func(o *observation) { o.reservations["hotels"]["t1"] = "aborted" }, "committed at flights but aborted at hotels"},
		{"lost commit", func(o *observation) { delete(o.reservations["hotels"], "t1") }, "hotels has no record"},
		{"client told committed", func(o *observation) {
			o.reservations["flights"]["t1"], o.reservations["hotels"]["t1"] = "aborted", "aborted"
		}, "client was told committed"},
		{"client told aborted", func(o *observation) { o.reservations["flights"]["t2"] = "committed" }, "client was told aborted but flights committed"},
		{"left prepared", func(o *observation) { o.reservations["cars"]["t3"] = "prepared" }, "still prepared at cars"},
		{"coordinator says aborted", func(o *observation) {
			o.coordinator["t1"] = "aborted"
			o.txs[0].Answer = ""
		}, "coordinator says aborted but flights, hotels committed"},
		{"coordinator disagrees with client", func(o *observation) { o.coordinator["t2"] = "committed" }, "client was told aborted but the coordinator says committed"},
		{"coordinator still preparing", func(o *observation) { o.coordinator["t3"] = "preparing" }, `still reports "preparing"`},
		{"pending list", func(o *observation) { o.stillPending = []string{"t9"} }, "coordinator still has t9 pending"},
		{"prepared list", func(o *observation) { o.stillPrepared = map[string][]string{"cars": {"t8"}} }, "cars still holds t8 prepared"},
		{"refused booking", func(o *observation) { o.txs[2].Refused = "http 409: conflict" }, "refused a well-formed booking"},
		{"stock not conserved", func(o *observation) { o.inventories["flights"][0].Available = 9 }, "!= capacity"},
		{"stock held", func(o *observation) {
			o.inventories["cars"][0].Available, o.inventories["cars"][0].Held = 4, 1
		}, "still held"},
		{"confirmed differs from commits", func(o *observation) {
			o.inventories["flights"][0].Available, o.inventories["flights"][0].Confirmed = 7, 3
		}, "confirmed 3, but committed bookings total 2"},
		{"capacity changed", func(o *observation) {
			o.inventories["cars"][0].Capacity, o.inventories["cars"][0].Available = 6, 6
		}, "capacity 6, configured 5"},
		{"missing SKU", func(o *observation) { o.capacity["cars"]["C-VAN"] = 1 }, "lacks SKU C-VAN"},
		{"API down", func(o *observation) { o.unreachable = []string{"hotels inventory: refused"} }, "did not answer"},
	}
	for _, c := range cases {
		o := consistent()
		c.break_(&o)
		v := check(o)
		found := false
		for _, msg := range v.violations {
			if strings.Contains(msg, c.want) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no violation containing %q in %q", c.name, c.want, v.violations)
		}
	}
}

func TestCheckPastRetentionForgetsButDoesNotLie(t *testing.T) {
	o := consistent()
	o.retention = 1 // flights and hotels saw 2 transactions each
	delete(o.reservations["hotels"], "t1")
	v := check(o)
	if len(v.violations) != 0 {
		t.Fatalf("a forgotten reservation past retention reported: %v", v.violations)
	}
	if v.forgotten != 1 || len(v.inexactStock) != 2 {
		t.Fatalf("forgotten %d, inexact %v; want 1 and [flights hotels]", v.forgotten, v.inexactStock)
	}
	// An explicit contradiction is still caught past retention.
	o.reservations["hotels"]["t1"] = "aborted"
	if v := check(o); len(v.violations) == 0 {
		t.Fatal("split outcome past retention not reported")
	}
}

func TestNewBookingsAreValid(t *testing.T) {
	w := newWorkload("http://127.0.0.1:1", 1, 1, 10)
	ids := map[concord.TxID]bool{}
	for range 1000 {
		id := w.nextID()
		if err := concord.ValidateTxID(id); err != nil || ids[id] {
			t.Fatalf("id %q: %v, duplicate %v", id, err, ids[id])
		}
		ids[id] = true
	}
}
