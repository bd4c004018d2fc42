package prodsim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/client"
	"github.com/concordtx/concord/travel"
	"github.com/concordtx/concord/wire"
)

// txRecord is what clients asked of one id and were told.
type txRecord struct {
	id  concord.TxID
	req wire.SubmitRequest
	// branch reservations by participant.
	want map[string]travel.Request
	// told are the definite outcomes (committed or aborted) the id was
	// answered with, each with the submission it answered.
	told []told
}

type told struct {
	outcome concord.Outcome
	changed bool // answered a resubmission with a changed body
	at      time.Duration
}

const clients = 8

// workload starts the clients: each submits its share of the transactions
// one after another, resubmitting an id that got no definite answer (an
// error, a lost answer, a 503, "pending") until it does; some ids are
// submitted twice at once, some again with a changed body after their
// answer.
func (w *world) workload(wg *sync.WaitGroup) {
	n := w.opts.Transactions
	// Spread the submissions over the fault window.
	gap := w.opts.FaultWindow * clients / time.Duration(max(n, 1))
	for i := range clients {
		cl, err := client.New(client.Options{URL: baseURL(coordName), HTTPClient: w.net.client(fmt.Sprintf("client%d", i), 0), Timeout: 3 * time.Second})
		if err != nil {
			panic(err) // a constant, valid URL
		}
		var recs []*txRecord
		for j := i; j < n; j += clients {
			recs = append(recs, w.newTx(j))
		}
		wg.Go(func() {
			for _, r := range recs {
				time.Sleep(w.dur(2 * gap))
				if w.float() < 0.05 {
					// The same request twice at once.
					wg.Go(func() { w.submit(cl, r, r.req, false) })
				}
				if w.float() < 0.03 {
					// An operator's abort racing the transaction.
					wg.Go(func() {
						time.Sleep(w.dur(30 * time.Millisecond))
						ctx, cancel := context.WithTimeout(context.Background(), time.Second)
						defer cancel()
						_, err := cl.Abort(ctx, r.id)
						w.tracef("client", "%s abort asked: %v", r.id, err)
					})
				}
				w.submit(cl, r, r.req, false)
				if w.float() < 0.05 {
					// The same id with a changed body: 409 within the
					// idempotency window, never another outcome.
					ch := r.req
					ch.Branches = append([]wire.Branch(nil), ch.Branches...)
					ch.Branches[0].Payload = travel.Request{SKU: "BIG", Quantity: 7}.Payload()
					w.submit(cl, r, ch, true)
				}
				if w.float() < 0.05 {
					// A late identical resubmission.
					w.submit(cl, r, r.req, false)
				}
			}
		})
	}
}

// newTx draws transaction j: one to all participants (one is one-phase),
// most reserving what is there, some too much (voted no), some an unknown
// SKU.
func (w *world) newTx(j int) *txRecord {
	id := concord.TxID(fmt.Sprintf("t%d", j))
	r := &txRecord{id: id, want: map[string]travel.Request{}}
	k := 1 + w.intn(len(w.parts))
	perm := make([]int, len(w.parts))
	for i := range perm {
		perm[i] = i
	}
	for i := range k {
		x := i + w.intn(len(perm)-i)
		perm[i], perm[x] = perm[x], perm[i]
		p := w.parts[perm[i]]
		var rq travel.Request
		switch v := w.intn(20); {
		case v < 12:
			rq = travel.Request{SKU: "BIG", Quantity: int64(1 + w.intn(3))}
		case v < 17:
			rq = travel.Request{SKU: "MID", Quantity: int64(1 + w.intn(3))}
		case v < 19:
			rq = travel.Request{SKU: "TINY", Quantity: int64(1 + w.intn(3))}
		default:
			rq = travel.Request{SKU: "NOPE", Quantity: 1}
		}
		r.want[p.name] = rq
		r.req.Branches = append(r.req.Branches, wire.Branch{Participant: p.name, Payload: rq.Payload()})
	}
	r.req.ID = id
	w.mu.Lock()
	w.txs[id] = r
	w.order = append(w.order, r)
	w.mu.Unlock()
	return r
}

// submit sends req until it has a definite answer (or, for a changed body,
// a 409), backing off between attempts.
func (w *world) submit(cl *client.Client, r *txRecord, req wire.SubmitRequest, changed bool) {
	for attempt := 0; ; attempt++ {
		w.mu.Lock()
		if attempt > 0 || len(r.told) > 0 {
			w.res.Resubmissions++
		}
		w.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		resp, err := cl.Submit(ctx, req)
		cancel()
		switch {
		case err == nil && (resp.Outcome == concord.OutcomeCommitted || resp.Outcome == concord.OutcomeAborted):
			w.mu.Lock()
			r.told = append(r.told, told{outcome: resp.Outcome, changed: changed, at: time.Since(w.start)})
			w.mu.Unlock()
			w.tracef("client", "%s %s%s", r.id, resp.Outcome, map[bool]string{true: " (changed body)"}[changed])
			return
		case changed && errors.Is(err, client.ErrConflict):
			w.mu.Lock()
			w.res.Conflicts++
			w.mu.Unlock()
			w.tracef("client", "%s 409 to a changed body", r.id)
			return
		case errors.Is(err, client.ErrConflict):
			w.violate(Violation{Invariant: "one id, one answer", Tx: r.id, Detail: "an identical resubmission was answered 409: " + err.Error()})
			return
		case errors.Is(err, client.ErrBadRequest):
			w.violate(Violation{Invariant: "workload", Tx: r.id, Detail: "a valid request was refused: " + err.Error()})
			return
		}
		if err != nil {
			w.tracef("client", "%s submit: %v", r.id, err)
		} else {
			w.tracef("client", "%s submit: %s", r.id, resp.Outcome)
		}
		if w.anyRefused() {
			return // no answer can be promised while a process refuses to start
		}
		if attempt > 100 {
			w.violate(Violation{Invariant: "liveness", Tx: r.id, Detail: fmt.Sprintf("no definite answer after %d submissions: %v", attempt, err)})
			return
		}
		time.Sleep(20*time.Millisecond + w.dur(200*time.Millisecond))
	}
}
