package main

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/travel"
	"github.com/concordtx/concord/wire"
)

// demoTrip draws one trip: always a flight, usually a hotel, often a car.
func demoTrip(id concord.TxID, rng *mrand.Rand) wire.SubmitRequest {
	pick := func(skus []string, weights []int) string {
		n := rng.IntN(100)
		for i, w := range weights {
			if n < w {
				return skus[i]
			}
			n -= w
		}
		return skus[len(skus)-1]
	}
	q := int64(1)
	if rng.IntN(5) == 0 {
		q = 2
	}
	req := wire.SubmitRequest{ID: id}
	add := func(service, sku string) {
		req.Branches = append(req.Branches, wire.Branch{Participant: service, Payload: travel.Request{SKU: sku, Quantity: q}.Payload()})
	}
	add(travel.Flights, pick([]string{"FL100", "FL200", "FL300"}, []int{65, 20, 15}))
	if rng.IntN(4) != 0 {
		add(travel.Hotels, pick([]string{"H-PARIS", "H-ROME", "H-OSLO"}, []int{50, 35, 15}))
	}
	if rng.IntN(2) == 0 {
		add(travel.Cars, pick([]string{"C-ECON", "C-SUV", "C-VAN"}, []int{60, 30, 10}))
	}
	return req
}

// book books trips number from .. from+n-1 concurrently, showing progress.
func (r *demoRun) book(phase string, from, n int) {
	if n <= 0 {
		return
	}
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done, committed, aborted, pending, failed := 0, 0, 0, 0, 0
	step := max(1, n/4)
	for w := range r.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				rng := mrand.New(mrand.NewPCG(r.seed, uint64(i)))
				req := demoTrip(concord.TxID(fmt.Sprintf("%s-%04d", r.prefix, i)), rng)
				ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
				resp, err := r.client.Submit(ctx, req)
				cancel()
				b := demoBooking{req: req, resp: resp, final: resp.Outcome, err: err, phase: phase}
				r.mu.Lock()
				r.bookings = append(r.bookings, b)
				r.mu.Unlock()
				mu.Lock()
				done++
				switch {
				case err != nil:
					failed++
				case resp.Outcome == concord.OutcomeCommitted:
					committed++
				case resp.Outcome == concord.OutcomeAborted:
					aborted++
				default:
					pending++
				}
				if done%step == 0 || done == n {
					line := fmt.Sprintf("      %d/%d booked: %d committed, %d aborted", done, n, committed, aborted)
					if pending > 0 {
						line += fmt.Sprintf(", %d pending (a lone service did not answer; it settles later)", pending)
					}
					if failed > 0 {
						line += fmt.Sprintf(", %d failed to submit", failed)
					}
					r.say("%s", line)
				}
				mu.Unlock()
			}
		}()
		_ = w
	}
	for i := from; i < from+n && r.ctx.Err() == nil; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}
