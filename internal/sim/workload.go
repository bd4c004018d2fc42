package sim

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/tpc"
	"github.com/concordtx/concord/travel"
)

// serviceNames are the participants of a run, in order.
var serviceNames = []string{travel.Flights, travel.Hotels, travel.Cars, "trains"}

// skus are the SKUs every simulated service offers.
var skus = []string{"A", "B"}

// drawStock gives a service small capacities, so that concurrent bookings
// run it out of stock.
func drawStock(r *rand.Rand) []travel.Stock {
	st := make([]travel.Stock, len(skus))
	for i, sku := range skus {
		st[i] = travel.Stock{SKU: sku, Capacity: 4 + r.Int64N(12)}
	}
	return st
}

// workload schedules the run's transactions at random instants of the
// fault window: concurrent bookings of one to all participants, some
// read-only, some asking for more than is left, a few malformed.
func (s *sim) workload() {
	n := s.opts.Transactions
	at := make([]time.Duration, n)
	span := int64(s.opts.FaultWindow) * 4 / 5
	for i := range at {
		at[i] = time.Duration(s.rng.Int64N(span + 1))
	}
	slices.Sort(at)
	for i := range n {
		id := concord.TxID(fmt.Sprintf("tx-%04d", i+1))
		branches := s.drawBranches()
		timeout := 200*time.Millisecond + time.Duration(s.rng.Int64N(int64(1300*time.Millisecond)))
		s.sched.at(epoch.Add(at[i]), func() { s.coord.submit(id, branches, timeout) })
	}
}

func (s *sim) drawBranches() []tpc.Branch {
	k := len(s.parts)
	if k > 1 && s.rng.IntN(5) != 0 {
		k = 2 + s.rng.IntN(k-1)
	} else {
		k = 1
	}
	order := s.rng.Perm(len(s.parts))[:k]
	branches := make([]tpc.Branch, k)
	for i, pi := range order {
		var payload json.RawMessage
		switch r := s.rng.IntN(100); {
		case r < 15:
			payload = readOnlyPayload
		case r < 18:
			payload = travel.Request{SKU: "NO-SUCH", Quantity: 1}.Payload()
		default:
			payload = travel.Request{SKU: skus[s.rng.IntN(len(skus))], Quantity: 1 + s.rng.Int64N(3)}.Payload()
		}
		branches[i] = tpc.Branch{Participant: s.parts[pi].name, Payload: payload}
	}
	return branches
}

// schedulePartitions schedules partitions over the fault window: a
// participant cut off from the coordinator in one direction or both, or the
// coordinator cut off from everyone, for a while.
func (s *sim) schedulePartitions() {
	if s.faults.PartitionEvery <= 0 || s.faults.PartitionMax <= 0 {
		return
	}
	t := time.Duration(0)
	for {
		t += time.Duration(s.rng.ExpFloat64() * float64(s.faults.PartitionEvery))
		if t >= s.opts.FaultWindow {
			return
		}
		p := s.parts[s.rng.IntN(len(s.parts))].name
		links := [][2]string{{coordinatorName, p}, {p, coordinatorName}}
		switch s.rng.IntN(4) {
		case 0:
			links = links[:1]
		case 1:
			links = links[1:]
		case 2:
			// The coordinator cut off from every participant.
			links = nil
			for _, q := range s.parts {
				links = append(links, [2]string{coordinatorName, q.name}, [2]string{q.name, coordinatorName})
			}
		}
		d := time.Duration(1 + s.rng.Int64N(int64(s.faults.PartitionMax)))
		s.sched.at(epoch.Add(t), func() {
			if s.healed {
				return
			}
			s.partitions++
			s.touchAll()
			for _, l := range links {
				s.net.cut[l] = true
			}
			s.tracef("network", "PARTITION %v for %s", links, d)
			s.sched.after(d, func() {
				for _, l := range links {
					delete(s.net.cut, l)
				}
				s.tracef("network", "partition %v over", links)
			})
		})
	}
}

// operator schedules an operator's actions over the fault window: now and
// then an abort of a random live transaction (refused with tpc.ErrDecided
// once it is decided, never aborting a commit) or a resend of every
// pending phase-2 message.
func (s *sim) operator() {
	t := time.Duration(0)
	for {
		t += time.Duration(s.rng.ExpFloat64() * float64(400*time.Millisecond))
		if t >= s.opts.FaultWindow {
			return
		}
		s.sched.at(epoch.Add(t), func() {
			if s.coord.up() && len(s.coord.txs) > 0 {
				s.coord.operatorAction(s.rng.IntN(2) == 0)
			}
		})
	}
}
