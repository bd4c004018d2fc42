// Command fakeconcord is a small stand-in for the concord binary that the
// chaos package's own tests drive: a two-phase-commit coordinator and
// inventory participants with the same command lines and HTTP APIs, durable
// through fsynced JSON-lines logs, with the same failpoints. Its --bug flag
// switches on deliberately broken behaviour, to show that the chaos checker
// notices it.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/failpoint"
	"github.com/concordtx/concord/wire"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: fakeconcord coordinator|participant [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "coordinator":
		err = coordinatorMain(os.Args[2:])
	case "participant":
		err = participantMain(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakeconcord:", err)
		os.Exit(1)
	}
}

// logEntry is one line of either process's log.
type logEntry struct {
	T     string   `json:"t"`
	ID    string   `json:"id"`
	Parts []string `json:"parts,omitempty"`
	SKU   string   `json:"sku,omitempty"`
	Qty   int64    `json:"qty,omitempty"`
}

// jlog is an append-only JSON-lines file; sync forces it to disk.
type jlog struct {
	mu sync.Mutex
	f  *os.File
}

func openLog(dir, name string) (*jlog, []logEntry, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	path := filepath.Join(dir, name)
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	var entries []logEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e logEntry
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			break // torn tail
		}
		entries = append(entries, e)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	return &jlog{f: f}, entries, nil
}

func (l *jlog) write(e logEntry, sync bool) {
	b, _ := json.Marshal(e)
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.f.Write(append(b, '\n')); err != nil {
		panic(err)
	}
	if sync {
		if err := l.f.Sync(); err != nil {
			panic(err)
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func postJSON(hc *http.Client, url string, in, out any) error {
	b, _ := json.Marshal(in)
	resp, err := hc.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("http %d: %s", resp.StatusCode, body)
	}
	return json.Unmarshal(body, out)
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// ---- coordinator ----

type ctx struct {
	id       string
	parts    []string
	payloads map[string]json.RawMessage
	state    string // preparing, committed, aborted
	acked    map[string]bool
	done     chan struct{}
	resp     wire.SubmitResponse
	body     string
}

type coord struct {
	mu    sync.Mutex
	txs   map[string]*ctx
	parts map[string]string
	log   *jlog
	hc    *http.Client
	self  string
}

func coordinatorMain(args []string) error {
	fs := flag.NewFlagSet("coordinator", flag.ContinueOnError)
	listen := fs.String("listen", "", "")
	data := fs.String("data", "", "")
	advertise := fs.String("advertise", "", "")
	bug := fs.String("bug", "", "no-restart: refuse to start on a log that holds records")
	var parts multiFlag
	fs.Var(&parts, "participant", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := &coord{txs: map[string]*ctx{}, parts: map[string]string{}, hc: &http.Client{Timeout: 3 * time.Second}, self: "http://" + *listen}
	if *advertise != "" {
		c.self = *advertise
	}
	for _, p := range parts {
		name, url, _ := strings.Cut(p, "=")
		c.parts[name] = url
	}
	l, entries, err := openLog(*data, "coordinator.log")
	if err != nil {
		return err
	}
	c.log = l
	if *bug == "no-restart" && len(entries) > 0 {
		return fmt.Errorf("%d log records: refusing to recover", len(entries))
	}
	for _, e := range entries {
		switch e.T {
		case "begin":
			t := &ctx{id: e.ID, parts: e.Parts, state: "aborted", acked: map[string]bool{}, done: make(chan struct{})}
			t.resp = wire.SubmitResponse{ID: concord.TxID(e.ID), Outcome: concord.OutcomeAborted, Reason: "coordinator restarted"}
			close(t.done)
			c.txs[e.ID] = t
		case "commit":
			if t := c.txs[e.ID]; t != nil {
				t.state = "committed"
				t.resp.Outcome, t.resp.Reason = concord.OutcomeCommitted, ""
			}
		case "end":
			if t := c.txs[e.ID]; t != nil {
				for _, p := range t.parts {
					t.acked[p] = true
				}
			}
		}
	}
	for _, t := range c.txs {
		if t.state == "committed" && len(t.acked) < len(t.parts) {
			go c.deliver(t)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/v1/transactions", c.handleList)
	mux.HandleFunc("/v1/transactions/", c.handleTx)
	return http.ListenAndServe(*listen, mux)
}

func (c *coord) handleList(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		c.submit(w, r)
		return
	}
	var out wire.TxList
	c.mu.Lock()
	for _, t := range c.txs {
		if t.state == "preparing" || (t.state == "committed" && len(t.acked) < len(t.parts)) {
			out.Transactions = append(out.Transactions, wire.TxStatus{ID: concord.TxID(t.id), State: t.state})
		}
	}
	c.mu.Unlock()
	writeJSON(w, 200, out)
}

func (c *coord) handleTx(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/v1/transactions/")
	id, outcome := strings.CutSuffix(rest, "/outcome")
	c.mu.Lock()
	t := c.txs[id]
	state := ""
	if t != nil {
		state = t.state
	}
	c.mu.Unlock()
	if outcome {
		o := concord.OutcomeAborted
		switch state {
		case "committed":
			o = concord.OutcomeCommitted
		case "preparing":
			o = concord.OutcomePending
		}
		writeJSON(w, 200, wire.OutcomeResponse{ID: concord.TxID(id), Outcome: o})
		return
	}
	if t == nil {
		writeJSON(w, 404, wire.ErrorResponse{Error: "unknown transaction"})
		return
	}
	writeJSON(w, 200, wire.TxStatus{ID: concord.TxID(id), State: state})
}

func (c *coord) submit(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req wire.SubmitRequest
	if err := json.Unmarshal(body, &req); err != nil || req.ID == "" || len(req.Branches) == 0 {
		writeJSON(w, 400, wire.ErrorResponse{Error: "bad request"})
		return
	}
	id := string(req.ID)
	c.mu.Lock()
	t, seen := c.txs[id]
	if !seen {
		t = &ctx{id: id, state: "preparing", acked: map[string]bool{}, done: make(chan struct{}), payloads: map[string]json.RawMessage{}, body: string(body)}
		for _, b := range req.Branches {
			t.parts = append(t.parts, b.Participant)
			t.payloads[b.Participant] = b.Payload
		}
		c.txs[id] = t
	}
	c.mu.Unlock()
	if !seen {
		c.run(t)
	}
	<-t.done
	writeJSON(w, 200, t.resp)
}

func (c *coord) run(t *ctx) {
	c.log.write(logEntry{T: "begin", ID: t.id, Parts: t.parts}, false)
	failpoint.Hit(failpoint.CoordinatorAfterBeginLog)
	votes := make([]wire.VoteReply, len(t.parts))
	var wg sync.WaitGroup
	for i, p := range t.parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var resp wire.PrepareResponse
			err := postJSON(c.hc, c.parts[p]+"/v1/prepare", wire.PrepareRequest{Coordinator: c.self,
				Transactions: []wire.PrepareTx{{ID: concord.TxID(t.id), Payload: t.payloads[p]}}}, &resp)
			failpoint.Hit(failpoint.CoordinatorAfterPrepareSent)
			switch {
			case err != nil:
				votes[i] = wire.VoteReply{Vote: concord.VoteUnreachable, Reason: err.Error()}
			case len(resp.Votes) != 1:
				votes[i] = wire.VoteReply{Vote: concord.VoteUnreachable, Reason: "no vote"}
			default:
				votes[i] = resp.Votes[0]
			}
		}()
	}
	wg.Wait()
	failpoint.Hit(failpoint.CoordinatorAfterVotes)
	commit := true
	for i, v := range votes {
		t.resp.Branches = append(t.resp.Branches, wire.BranchResult{Participant: t.parts[i], Vote: v.Vote, Reason: v.Reason})
		if v.Vote != concord.VoteYes {
			commit = false
			t.resp.Reason = t.parts[i] + ": " + v.Vote.String() + " " + v.Reason
		}
	}
	t.resp.ID = concord.TxID(t.id)
	if commit {
		c.log.write(logEntry{T: "commit", ID: t.id}, true)
		failpoint.Hit(failpoint.CoordinatorAfterDecisionSync)
		c.mu.Lock()
		t.state = "committed"
		c.mu.Unlock()
		t.resp.Outcome = concord.OutcomeCommitted
		go c.deliver(t)
	} else {
		c.log.write(logEntry{T: "abort", ID: t.id}, false)
		c.mu.Lock()
		t.state = "aborted"
		c.mu.Unlock()
		t.resp.Outcome = concord.OutcomeAborted
		for _, p := range t.parts {
			go postJSON(c.hc, c.parts[p]+"/v1/abort", wire.DecisionRequest{IDs: []concord.TxID{concord.TxID(t.id)}}, &wire.DecisionResponse{})
		}
	}
	close(t.done)
}

func (c *coord) deliver(t *ctx) {
	backoff := 50 * time.Millisecond
	for {
		all := true
		for _, p := range t.parts {
			c.mu.Lock()
			acked := t.acked[p]
			c.mu.Unlock()
			if acked {
				continue
			}
			var resp wire.DecisionResponse
			err := postJSON(c.hc, c.parts[p]+"/v1/commit", wire.DecisionRequest{IDs: []concord.TxID{concord.TxID(t.id)}}, &resp)
			failpoint.Hit(failpoint.CoordinatorAfterCommitSent)
			if err == nil && len(resp.Acknowledged) == 1 {
				c.mu.Lock()
				t.acked[p] = true
				c.mu.Unlock()
			} else {
				all = false
			}
		}
		if all {
			c.log.write(logEntry{T: "end", ID: t.id}, false)
			return
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, time.Second)
	}
}

// ---- participant ----

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
