package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/failpoint"
	"github.com/concordtx/concord/wire"
)

// The coordinator: two-phase commit, presumed abort, one transaction per
// request, its decisions in an fsynced JSON-lines log.

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
	fs.Int64("segment-size", 0, "accepted and ignored: the stand-in keeps no segmented log")
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
