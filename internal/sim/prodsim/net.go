package prodsim

import (
	"encoding/json"
	"slices"
	"strconv"

	"bytes"
	"context"
	"errors"
	"github.com/concordtx/concord"
	"github.com/concordtx/concord/wire"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// NetFaults are the network's faults while they are on.
type NetFaults struct {
	Drop      float64       // a request, or its answer, is lost
	Duplicate float64       // a request is delivered twice
	MaxDelay  time.Duration // each way, uniform in 0..MaxDelay (so requests reorder)
	Slow      float64       // a request is held SlowDelay more
	SlowDelay time.Duration
	// Malformed: a PREPARE answer holding a no vote gets a yes vote for the
	// same transaction put before it, the malformed answer of a faulty
	// participant or proxy (a coordinator must take it as no answer).
	Malformed float64
}

// errNet is what a sender sees of a lost request or answer, a partition
// or a process that is down.
var errNet = errors.New("sim: connection lost")

// endpoint is one process's place on the network: its handler while it is
// up, and its incarnation, bumped by every crash, so that a process that
// crashed can send nothing more and an answer it had not sent is lost.
type endpoint struct {
	h   http.Handler
	inc uint64
}

// network carries HTTP requests between the processes of one run through
// their handlers, with the faults it is given. It is the http.RoundTripper
// of every process's http.Client: the production code's own HTTP clients
// and handlers run, over no socket.
type network struct {
	w      *world
	mu     sync.Mutex
	faults NetFaults
	on     bool // faults on
	eps    map[string]*endpoint
	cut    map[[2]string]bool

	sent, dropped, duplicated int
	dups                      sync.WaitGroup // duplicate deliveries still being served
}

func newNetwork(w *world, f NetFaults) *network {
	return &network{w: w, faults: f, on: true, eps: map[string]*endpoint{}, cut: map[[2]string]bool{}}
}

// host is a process's host name in URLs.
func host(name string) string { return name + ".sim" }

func baseURL(name string) string { return "http://" + host(name) }

// up puts a process's handler on the network under incarnation inc.
func (n *network) up(name string, inc uint64, h http.Handler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.eps[name] = &endpoint{h: h, inc: inc}
}

// down takes a process off the network: requests to it fail, and its
// requests and answers in flight are lost.
func (n *network) down(name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ep := n.eps[name]; ep != nil {
		ep.h = nil
		ep.inc++
	}
}

// partition cuts (or with on false, mends) the link between a and b.
func (n *network) partition(a, b string, on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if on {
		n.cut[[2]string{a, b}], n.cut[[2]string{b, a}] = true, true
	} else {
		delete(n.cut, [2]string{a, b})
		delete(n.cut, [2]string{b, a})
	}
}

// heal ends every fault and partition.
func (n *network) heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.on = false
	clear(n.cut)
}

// client returns the http.Client of process from in its incarnation inc
// (0 for a client, which never crashes).
func (n *network) client(from string, inc uint64) *http.Client {
	return &http.Client{Transport: &roundTripper{n: n, from: from, inc: inc}}
}

type roundTripper struct {
	n    *network
	from string
	inc  uint64
}

// draw is one request's fate.
type draw struct {
	delay, back                      time.Duration
	dropReq, dropAns, dup, malformed bool
}

func (n *network) draw() draw {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent++
	var d draw
	if !n.on {
		return d
	}
	n.w.rmu.Lock() // lock order: n.mu, then the world's generator
	defer n.w.rmu.Unlock()
	r := n.w.rng
	f := n.faults
	if f.MaxDelay > 0 {
		d.delay = time.Duration(r.Int64N(int64(f.MaxDelay) + 1))
		d.back = time.Duration(r.Int64N(int64(f.MaxDelay) + 1))
	}
	if f.Slow > 0 && r.Float64() < f.Slow {
		d.delay += f.SlowDelay
	}
	d.dropReq = f.Drop > 0 && r.Float64() < f.Drop/2
	d.dropAns = f.Drop > 0 && r.Float64() < f.Drop/2
	d.dup = f.Duplicate > 0 && r.Float64() < f.Duplicate
	d.malformed = f.Malformed > 0 && r.Float64() < f.Malformed
	if d.dropReq || d.dropAns {
		n.dropped++
	}
	if d.dup {
		n.duplicated++
	}
	return d
}

// alive reports whether process name is still incarnation inc (inc 0: a
// client) and reachable from from; it returns the handler to call.
func (n *network) reach(from string, fromInc uint64, to string) (http.Handler, uint64, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if fromInc != 0 {
		if ep := n.eps[from]; ep == nil || ep.inc != fromInc || ep.h == nil {
			return nil, 0, false
		}
	}
	ep := n.eps[to]
	if ep == nil || ep.h == nil || n.cut[[2]string{from, to}] {
		return nil, 0, false
	}
	return ep.h, ep.inc, true
}

func (n *network) stillUp(name string, inc uint64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	ep := n.eps[name]
	return ep != nil && ep.inc == inc && ep.h != nil
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RoundTrip delivers req to its host's handler, after the network's delay,
// unless a fault loses it; the answer comes back the same way.
func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	n := rt.n
	ctx := req.Context()
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	to := strings.TrimSuffix(req.URL.Hostname(), ".sim")
	d := n.draw()
	if err := sleep(ctx, d.delay); err != nil {
		return nil, err
	}
	h, inc, ok := n.reach(rt.from, rt.inc, to)
	if !ok || d.dropReq {
		return nil, errNet
	}
	if d.dup {
		// The copy runs on its own, as a retransmitted request would; its
		// answer goes nowhere.
		n.dups.Go(func() {
			dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			serve(dctx, h, req, body)
		})
	}
	rec := serve(ctx, h, req, body)
	if err := sleep(ctx, d.back); err != nil {
		return nil, err
	}
	// A process that crashed while serving sent nothing; a sender that
	// crashed hears nothing.
	if d.dropAns || !n.stillUp(to, inc) || (rt.inc != 0 && !n.stillUp(rt.from, rt.inc)) {
		return nil, errNet
	}
	if d.malformed && req.URL.Path == wire.PathPrepare && rec.Code == http.StatusOK {
		malform(rec)
	}
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// malform puts a yes vote before the first no vote of a PREPARE answer.
func malform(rec *httptest.ResponseRecorder) {
	var pr wire.PrepareResponse
	if json.Unmarshal(rec.Body.Bytes(), &pr) != nil {
		return
	}
	for i, v := range pr.Votes {
		if v.Vote == concord.VoteNo {
			pr.Votes = slices.Insert(pr.Votes, i, wire.VoteReply{ID: v.ID, Vote: concord.VoteYes})
			b, err := json.Marshal(pr)
			if err != nil {
				return
			}
			rec.Body.Reset()
			rec.Body.Write(b)
			rec.Header().Set("Content-Length", strconv.Itoa(len(b)))
			return
		}
	}
}

func serve(ctx context.Context, h http.Handler, req *http.Request, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequest(req.Method, req.URL.String(), bytes.NewReader(body)).WithContext(ctx)
	r.Header = req.Header.Clone()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}
