package testutil

import (
	"encoding/json"
	"fmt"
	"github.com/concordtx/concord/internal/apicheck"
	"github.com/concordtx/concord/openapi"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/wire"
)

// Participant is a test double that serves the participant wire protocol
// on 127.0.0.1 with a faithful in-memory state per transaction (prepared,
// committed, aborted), and lets a test choose its votes and misbehave: stay
// silent, answer late, answer twice, or be down and come back with its
// state intact (as a participant that made its prepared state durable).
type Participant struct {
	Name string
	URL  string
	srv  *httptest.Server

	mu      sync.Mutex
	state   map[concord.TxID]string // "prepared", "committed", "aborted"
	vote    func(id concord.TxID, payload json.RawMessage) (concord.Vote, string)
	mode    Mode
	modes   map[string]Mode // per path, overriding mode
	gate    chan struct{}   // Slow/Silent: requests wait here
	seen    chan Seen       // every request that arrived, if set
	counts  map[string]int
	history []Seen
}

// Mode is how a Participant double behaves.
type Mode int

// Modes.
const (
	Normal    Mode = iota
	Silent         // never answers: holds every request until its client gives up or Release
	Slow           // answers once Release is called
	Down           // drops every connection without an answer
	Duplicate      // answers every vote and acknowledgement twice, plus one for an id never asked
)

// Seen is one request a Participant received.
type Seen struct {
	Path string
	IDs  []concord.TxID
	// DeadlinesMS are a PREPARE's deadline_ms, one per id.
	DeadlinesMS []int64
}

// NewParticipant starts a double named name; it votes yes until SetVote.
// Every request it gets and every answer it writes are validated against
// the participant protocol's OpenAPI document (internal/apicheck): a
// coordinator's request that does not match fails the test.
func NewParticipant(t testing.TB, name string) *Participant {
	p, stop := startParticipant(name, func(h http.Handler) http.Handler {
		chk, err := apicheck.New(openapi.Participant())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			for _, f := range chk.Failures() {
				t.Errorf("participant %s: %s", name, f)
			}
		})
		return chk.Handler(h)
	})
	t.Cleanup(stop)
	return p
}

// StartParticipant is NewParticipant for code without a testing.TB (an
// Example): stop closes it.
func StartParticipant(name string) (p *Participant, stop func()) {
	return startParticipant(name, func(h http.Handler) http.Handler { return h })
}

func startParticipant(name string, wrap func(http.Handler) http.Handler) (p *Participant, stop func()) {
	p = &Participant{
		Name:   name,
		state:  make(map[concord.TxID]string),
		counts: make(map[string]int),
		modes:  make(map[string]Mode),
		gate:   make(chan struct{}),
	}
	p.srv = httptest.NewServer(wrap(http.HandlerFunc(p.serve)))
	p.URL = p.srv.URL
	return p, func() {
		p.Release()
		p.srv.CloseClientConnections()
		p.srv.Close()
	}
}

// SetVote sets how the double votes: fn gets each transaction's id and
// payload. Nil means always yes.
func (p *Participant) SetVote(fn func(id concord.TxID, payload json.RawMessage) (concord.Vote, string)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.vote = fn
}

// SetMode changes how the double behaves from the next request on.
func (p *Participant) SetMode(m Mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
	p.gate = make(chan struct{})
}

// SetPathMode makes the double behave as m for requests on path only
// (wire.PathPrepare, PathCommit, PathAbort, or PathHealth for the health
// probes); Normal there clears it.
func (p *Participant) SetPathMode(path string, m Mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m == Normal {
		delete(p.modes, path)
	} else {
		p.modes[path] = m
	}
}

// Release lets requests held by Silent or Slow go on (Silent ones then get
// no answer, Slow ones their answer).
func (p *Participant) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
}

// Notify makes the double send every request it receives on ch.
func (p *Participant) Notify(ch chan Seen) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = ch
}

// State returns the state of id here: "", "prepared", "committed" or "aborted".
func (p *Participant) State(id concord.TxID) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state[id]
}

// SetState forces the state of id, as a participant restored from its own
// log would hold it.
func (p *Participant) SetState(id concord.TxID, s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state[id] = s
}

// States returns a copy of every transaction's state here.
func (p *Participant) States() map[concord.TxID]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[concord.TxID]string, len(p.state))
	for k, v := range p.state {
		out[k] = v
	}
	return out
}

// InDoubt lists the transactions prepared here and not yet decided.
func (p *Participant) InDoubt() []concord.TxID {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []concord.TxID
	for id, s := range p.state {
		if s == "prepared" {
			out = append(out, id)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Count returns how many transactions arrived on path (wire.PathPrepare,
// PathCommit or PathAbort), counting each transaction of a batch.
func (p *Participant) Count(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[path]
}

// Requests returns how many requests arrived on path.
func (p *Participant) Requests(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts["req "+path]
}

func (p *Participant) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == wire.PathHealth {
		p.serveHealth(w, r)
		return
	}
	if r.Method != http.MethodPost {
		wire.MethodNotAllowed(w, r, http.MethodPost)
		return
	}
	var ids []concord.TxID
	var deadlines []int64
	var prep wire.PrepareRequest
	var dec wire.DecisionRequest
	var err error
	switch r.URL.Path {
	case wire.PathPrepare:
		err = wire.DecodeRequest(w, r, 0, &prep)
		for _, tx := range prep.Transactions {
			ids = append(ids, tx.ID)
			deadlines = append(deadlines, tx.DeadlineMS)
		}
	case wire.PathCommit, wire.PathAbort:
		err = wire.DecodeRequest(w, r, 0, &dec)
		ids = dec.IDs
	default:
		wire.WriteError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
		return
	}
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	p.mu.Lock()
	mode, gate, seen := p.mode, p.gate, p.seen
	if m, ok := p.modes[r.URL.Path]; ok {
		mode = m
	}
	p.counts[r.URL.Path] += len(ids)
	p.counts["req "+r.URL.Path]++
	p.history = append(p.history, Seen{Path: r.URL.Path, IDs: ids})
	p.mu.Unlock()
	if seen != nil {
		seen <- Seen{Path: r.URL.Path, IDs: ids, DeadlinesMS: deadlines}
	}
	switch mode {
	case Down:
		panic(http.ErrAbortHandler) // the connection is dropped: no answer
	case Silent:
		select {
		case <-gate:
		case <-r.Context().Done():
		}
		panic(http.ErrAbortHandler)
	case Slow:
		select {
		case <-gate:
		case <-r.Context().Done():
			panic(http.ErrAbortHandler)
		}
	}
	switch r.URL.Path {
	case wire.PathPrepare:
		resp := p.prepare(prep)
		if mode == Duplicate {
			resp.Votes = append(resp.Votes, resp.Votes...)
			resp.Votes = append(resp.Votes, wire.VoteReply{ID: "never-asked", Vote: concord.VoteYes})
		}
		wire.WriteJSON(w, http.StatusOK, resp)
	case wire.PathCommit, wire.PathAbort:
		resp := p.decide(r.URL.Path == wire.PathCommit, dec.IDs)
		if mode == Duplicate {
			resp.Acknowledged = append(resp.Acknowledged, resp.Acknowledged...)
			resp.Acknowledged = append(resp.Acknowledged, "never-asked")
		}
		wire.WriteJSON(w, http.StatusOK, resp)
	}
}

func (p *Participant) prepare(req wire.PrepareRequest) wire.PrepareResponse {
	p.mu.Lock()
	defer p.mu.Unlock()
	var resp wire.PrepareResponse
	for _, tx := range req.Transactions {
		reply := wire.VoteReply{ID: tx.ID}
		switch p.state[tx.ID] {
		case "aborted":
			reply.Vote, reply.Reason = concord.VoteNo, "already aborted"
			if tx.OnePhase {
				reply.Outcome = concord.OutcomeAborted
			}
		case "prepared":
			reply.Vote = concord.VoteYes
		case "committed":
			reply.Vote = concord.VoteYes
			if tx.OnePhase {
				reply.Outcome = concord.OutcomeCommitted
			}
		default:
			v, why := concord.VoteYes, ""
			if p.vote != nil {
				v, why = p.vote(tx.ID, tx.Payload)
			}
			reply.Vote, reply.Reason = v, why
			switch {
			case v == concord.VoteYes && tx.OnePhase:
				p.state[tx.ID] = "committed"
				reply.Outcome = concord.OutcomeCommitted
			case v == concord.VoteYes:
				p.state[tx.ID] = "prepared"
			case v == concord.VoteNo:
				p.state[tx.ID] = "aborted"
				if tx.OnePhase {
					reply.Outcome = concord.OutcomeAborted
				}
			case v == concord.VoteReadOnly && tx.OnePhase:
				reply.Outcome = concord.OutcomeCommitted
			}
		}
		resp.Votes = append(resp.Votes, reply)
	}
	return resp
}

func (p *Participant) decide(commit bool, ids []concord.TxID) wire.DecisionResponse {
	p.mu.Lock()
	defer p.mu.Unlock()
	resp := wire.DecisionResponse{Acknowledged: []concord.TxID{}}
	for _, id := range ids {
		s := p.state[id]
		switch {
		case commit && (s == "prepared" || s == "committed"):
			p.state[id] = "committed"
			resp.Acknowledged = append(resp.Acknowledged, id)
		case commit && s == "aborted":
			resp.Failed = append(resp.Failed, wire.TxFailure{ID: id, Reason: "already aborted", Outcome: concord.OutcomeAborted})
		case commit:
			resp.Failed = append(resp.Failed, wire.TxFailure{ID: id, Reason: "unknown transaction"})
		case s == "committed":
			resp.Failed = append(resp.Failed, wire.TxFailure{ID: id, Reason: "already committed", Outcome: concord.OutcomeCommitted})
		default:
			p.state[id] = "aborted"
			resp.Acknowledged = append(resp.Acknowledged, id)
		}
	}
	return resp
}

// String describes the double for test messages.
func (p *Participant) String() string { return fmt.Sprintf("participant %s at %s", p.Name, p.URL) }

// serveHealth answers GET wire.PathHealth as the mode set for that path
// says: 200 when Normal, never (Silent: a frozen process), a dropped
// connection (Down). Probes are not counted among the protocol requests.
func (p *Participant) serveHealth(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	mode, gate := p.modes[wire.PathHealth], p.gate
	p.mu.Unlock()
	switch mode {
	case Down:
		panic(http.ErrAbortHandler)
	case Silent:
		select {
		case <-gate:
		case <-r.Context().Done():
		}
		panic(http.ErrAbortHandler)
	}
	wire.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
