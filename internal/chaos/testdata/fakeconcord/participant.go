package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/failpoint"
	"github.com/concordtx/concord/wire"
)

// The participant: an inventory whose reservations are prepared, committed
// and aborted through an fsynced JSON-lines log.

type res struct {
	state    string
	sku      string
	qty      int64
	prepared time.Time
}

type stockItem struct{ capacity, held, confirmed int64 }

type part struct {
	mu      sync.Mutex
	service string
	stock   map[string]*stockItem
	skus    []string
	res     map[string]*res
	log     *jlog
	coord   string
	bug     string
	hc      *http.Client
}

func participantMain(args []string) error {
	fs := flag.NewFlagSet("participant", flag.ContinueOnError)
	service := fs.String("service", "", "")
	listen := fs.String("listen", "", "")
	data := fs.String("data", "", "")
	coordURL := fs.String("coordinator", "", "")
	inv := fs.String("inventory", "", "")
	bug := fs.String("bug", "", "forget-prepared: prepared state is neither synced nor recovered; forget-committed: committed state is not recovered")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p := &part{service: *service, stock: map[string]*stockItem{}, res: map[string]*res{}, coord: *coordURL, bug: *bug,
		hc: &http.Client{Timeout: 3 * time.Second}}
	for _, kv := range strings.Split(*inv, ",") {
		sku, n, _ := strings.Cut(kv, "=")
		capacity, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			return fmt.Errorf("bad inventory %q", kv)
		}
		p.stock[sku] = &stockItem{capacity: capacity}
		p.skus = append(p.skus, sku)
	}
	l, entries, err := openLog(*data, "participant.log")
	if err != nil {
		return err
	}
	p.log = l
	for _, e := range entries {
		r := p.res[e.ID]
		switch e.T {
		case "prepared":
			if p.bug == "forget-prepared" {
				continue
			}
			p.res[e.ID] = &res{state: "prepared", sku: e.SKU, qty: e.Qty, prepared: time.Now()}
			p.stock[e.SKU].held += e.Qty
		case "committed":
			if p.bug == "forget-committed" {
				if r != nil && r.state == "prepared" {
					p.stock[r.sku].held -= r.qty
				}
				delete(p.res, e.ID)
				continue
			}
			if r == nil {
				r = &res{sku: e.SKU, qty: e.Qty}
				p.res[e.ID] = r
				p.stock[e.SKU].held += e.Qty
			}
			r.state = "committed"
			p.stock[r.sku].held -= r.qty
			p.stock[r.sku].confirmed += r.qty
		case "aborted":
			if r != nil && r.state == "prepared" {
				p.stock[r.sku].held -= r.qty
			}
			if r == nil {
				r = &res{}
				p.res[e.ID] = r
			}
			r.state = "aborted"
		}
	}
	go p.resolveInDoubt()
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/prepare", p.prepare)
	mux.HandleFunc("/v1/commit", p.commit)
	mux.HandleFunc("/v1/abort", p.abort)
	mux.HandleFunc("/v1/inventory", p.inventory)
	mux.HandleFunc("/v1/reservations", p.list)
	mux.HandleFunc("/v1/reservations/", p.one)
	return http.ListenAndServe(*listen, mux)
}

func (p *part) prepare(w http.ResponseWriter, r *http.Request) {
	var req wire.PrepareRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, 400, wire.ErrorResponse{Error: err.Error()})
		return
	}
	var out wire.PrepareResponse
	for _, tx := range req.Transactions {
		out.Votes = append(out.Votes, p.prepareOne(tx))
	}
	writeJSON(w, 200, out)
}

func (p *part) prepareOne(tx wire.PrepareTx) wire.VoteReply {
	id := string(tx.ID)
	p.mu.Lock()
	defer p.mu.Unlock()
	if r := p.res[id]; r != nil {
		if r.state == "aborted" {
			return wire.VoteReply{ID: tx.ID, Vote: concord.VoteNo, Reason: "aborted"}
		}
		return wire.VoteReply{ID: tx.ID, Vote: concord.VoteYes}
	}
	var pl struct {
		SKU      string `json:"sku"`
		Quantity int64  `json:"quantity"`
	}
	_ = json.Unmarshal(tx.Payload, &pl)
	st := p.stock[pl.SKU]
	if st == nil || pl.Quantity <= 0 || st.capacity-st.held-st.confirmed < pl.Quantity {
		p.res[id] = &res{state: "aborted"}
		p.log.write(logEntry{T: "aborted", ID: id}, false)
		return wire.VoteReply{ID: tx.ID, Vote: concord.VoteNo, Reason: "not enough " + pl.SKU}
	}
	st.held += pl.Quantity
	p.res[id] = &res{state: "prepared", sku: pl.SKU, qty: pl.Quantity, prepared: time.Now()}
	p.log.write(logEntry{T: "prepared", ID: id, SKU: pl.SKU, Qty: pl.Quantity}, p.bug != "forget-prepared")
	failpoint.Hit(failpoint.ParticipantAfterPrepareSync)
	return wire.VoteReply{ID: tx.ID, Vote: concord.VoteYes}
}

func (p *part) decide(id, state string) (ok bool, outcome concord.Outcome) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.res[id]
	switch {
	case r == nil && state == "aborted":
		p.res[id] = &res{state: "aborted"}
		p.log.write(logEntry{T: "aborted", ID: id}, false)
		return true, 0
	case r == nil:
		return false, 0
	case r.state == state:
		return true, 0
	case r.state != "prepared":
		o := concord.OutcomeAborted
		if r.state == "committed" {
			o = concord.OutcomeCommitted
		}
		return false, o
	}
	st := p.stock[r.sku]
	st.held -= r.qty
	if state == "committed" {
		st.confirmed += r.qty
	}
	r.state = state
	p.log.write(logEntry{T: state, ID: id, SKU: r.sku, Qty: r.qty}, state == "committed")
	if state == "committed" {
		failpoint.Hit(failpoint.ParticipantAfterCommit)
	}
	return true, 0
}

func (p *part) decision(w http.ResponseWriter, r *http.Request, state string) {
	var req wire.DecisionRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, 400, wire.ErrorResponse{Error: err.Error()})
		return
	}
	out := wire.DecisionResponse{Acknowledged: []concord.TxID{}}
	for _, id := range req.IDs {
		if ok, o := p.decide(string(id), state); ok {
			out.Acknowledged = append(out.Acknowledged, id)
		} else {
			out.Failed = append(out.Failed, wire.TxFailure{ID: id, Reason: "cannot " + state, Outcome: o})
		}
	}
	writeJSON(w, 200, out)
}

func (p *part) commit(w http.ResponseWriter, r *http.Request) { p.decision(w, r, "committed") }
func (p *part) abort(w http.ResponseWriter, r *http.Request)  { p.decision(w, r, "aborted") }

func (p *part) resolveInDoubt() {
	for range time.Tick(250 * time.Millisecond) {
		var ids []string
		p.mu.Lock()
		for id, r := range p.res {
			if r.state == "prepared" && time.Since(r.prepared) > time.Second {
				ids = append(ids, id)
			}
		}
		p.mu.Unlock()
		for _, id := range ids {
			resp, err := p.hc.Get(p.coord + "/v1/transactions/" + id + "/outcome")
			if err != nil {
				continue
			}
			var o wire.OutcomeResponse
			json.NewDecoder(resp.Body).Decode(&o)
			resp.Body.Close()
			switch o.Outcome {
			case concord.OutcomeCommitted:
				p.decide(id, "committed")
			case concord.OutcomeAborted:
				p.decide(id, "aborted")
			}
		}
	}
}

func (p *part) inventory(w http.ResponseWriter, r *http.Request) {
	var items []map[string]any
	p.mu.Lock()
	for _, sku := range p.skus {
		st := p.stock[sku]
		items = append(items, map[string]any{"sku": sku, "capacity": st.capacity, "held": st.held,
			"confirmed": st.confirmed, "available": st.capacity - st.held - st.confirmed})
	}
	p.mu.Unlock()
	writeJSON(w, 200, map[string]any{"service": p.service, "items": items})
}

func (p *part) list(w http.ResponseWriter, r *http.Request) {
	want := r.URL.Query().Get("state")
	var out []map[string]any
	p.mu.Lock()
	for id, res := range p.res {
		if want == "" || res.state == want {
			out = append(out, map[string]any{"id": id, "state": res.state, "sku": res.sku, "quantity": res.qty})
		}
	}
	p.mu.Unlock()
	writeJSON(w, 200, map[string]any{"service": p.service, "reservations": out})
}

func (p *part) one(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/v1/reservations/")
	p.mu.Lock()
	res := p.res[id]
	p.mu.Unlock()
	if res == nil || (res.state == "aborted" && res.sku == "") {
		writeJSON(w, 404, wire.ErrorResponse{Error: "no reservation"})
		return
	}
	writeJSON(w, 200, map[string]any{"id": id, "state": res.state, "sku": res.sku, "quantity": res.qty})
}
