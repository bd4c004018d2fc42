package travel

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/coordinator"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/wal/memfs"
	"github.com/concordtx/concord/wire"
)

// node is one travel service on a loopback port whose process can be
// crashed (its file system drops what was not synced) and restarted on the
// same port and storage.
type node struct {
	name  string
	stock []Stock
	mfs   *memfs.FS
	srv   *httptest.Server

	mu      sync.Mutex
	svc     *Service
	store   *FileStore
	handler atomic.Pointer[http.Handler] // nil while down
	// onCommit, when set, sees every COMMIT request's ids before the
	// service does; returning true crashes the node instead of serving it.
	onCommit func(ids []concord.TxID) bool
}

func newNode(t *testing.T, name string, stock []Stock) *node {
	n := &node{name: name, stock: stock, mfs: memfs.New()}
	n.srv = httptest.NewServer(http.HandlerFunc(n.serve))
	t.Cleanup(func() {
		n.srv.CloseClientConnections()
		n.srv.Close()
		n.mu.Lock()
		if n.svc != nil {
			n.svc.Close()
		}
		n.mu.Unlock()
	})
	return n
}

func (n *node) URL() string { return n.srv.URL }

func (n *node) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == wire.PathCommit && r.Method == http.MethodPost {
		n.mu.Lock()
		hook := n.onCommit
		n.mu.Unlock()
		if hook != nil {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var req wire.DecisionRequest
			if json.Unmarshal(body, &req) == nil && hook(req.IDs) {
				n.crash()
			}
		}
	}
	h := n.handler.Load()
	if h == nil {
		// Down: the connection drops without an answer.
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	(*h).ServeHTTP(w, r)
}

// start opens the store (recovering what is durable) and serves.
func (n *node) start(t *testing.T, coordURL string) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	st, err := OpenFileStore(StoreConfig{Service: n.name, Dir: "/data/" + n.name, FS: n.mfs, Stock: n.stock})
	if err != nil {
		t.Fatalf("%s: %v", n.name, err)
	}
	svc, err := New(Options{Name: n.name, Store: st, Server: participant.Options{
		Coordinator:  coordURL,
		InDoubtAfter: 300 * time.Millisecond,
		QueryMin:     20 * time.Millisecond,
		QueryMax:     200 * time.Millisecond,
		TickInterval: 20 * time.Millisecond,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	n.svc, n.store = svc, st
	h := svc.Handler()
	n.handler.Store(&h)
}

// crash kills the node: it stops answering, the file system loses what was
// not synced, and the old service is dropped.
func (n *node) crash() {
	n.handler.Store(nil)
	n.mfs.Crash()
	n.mu.Lock()
	svc := n.svc
	n.svc, n.store = nil, nil
	n.mu.Unlock()
	if svc != nil {
		svc.Close() // its files are gone: nothing it does now reaches storage
	}
}

func (n *node) current() (*Service, *FileStore) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.svc, n.store
}

// cluster is a coordinator and the three travel services in one process.
type cluster struct {
	coord *coordinator.Coordinator
	nodes map[string]*node
}

func newCluster(t *testing.T, stock map[string][]Stock) *cluster {
	t.Helper()
	cl := &cluster{nodes: map[string]*node{}}
	urls := map[string]string{}
	for _, name := range ServiceNames() {
		cl.nodes[name] = newNode(t, name, stock[name])
		urls[name] = cl.nodes[name].URL()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := coordinator.New(coordinator.Options{
		Dir:            "/coordinator/wal",
		FS:             memfs.New(),
		Participants:   urls,
		DefaultTimeout: time.Second,
		AnswerGrace:    200 * time.Millisecond,
		RetryMin:       10 * time.Millisecond,
		RetryMax:       100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ln); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cl.coord = c
	for _, n := range cl.nodes {
		n.start(t, c.URL())
	}
	return cl
}

// booking is a submitted transaction and the coordinator's answer.
type booking struct {
	req  wire.SubmitRequest
	resp wire.SubmitResponse
}

// eventually polls cond until it holds, failing after timeout. Real sockets
// and real retries leave no event to wait on instead.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last: %s", what, timeout, state)
		}
		<-tick.C
	}
}

// quiesce waits until the coordinator has nothing pending and no service
// holds a prepared reservation.
func (cl *cluster) quiesce(t *testing.T) {
	t.Helper()
	eventually(t, 20*time.Second, "quiescence", func() (bool, string) {
		l, err := cl.coord.List(coordinator.ListPending, 100)
		if err != nil {
			return false, err.Error()
		}
		if len(l.Transactions) > 0 {
			return false, fmt.Sprintf("%d pending at the coordinator, first %+v", len(l.Transactions), l.Transactions[0])
		}
		for _, n := range cl.nodes {
			_, st := n.current()
			if st == nil {
				return false, n.name + " is down"
			}
			p, _ := st.Reservations(context.Background(), StatePrepared)
			if len(p) > 0 {
				return false, fmt.Sprintf("%s holds %d prepared, first %+v", n.name, len(p), p[0])
			}
		}
		return true, ""
	})
}

// check asserts agreement and conservation: every transaction is in the
// same state at every service it touched as the coordinator says, and each
// service's inventory is conserved with confirmed equal to the committed
// quantities.
func (cl *cluster) check(t *testing.T, bookings []booking) {
	t.Helper()
	ctx := context.Background()
	confirmed := map[string]map[string]int64{}
	for _, name := range ServiceNames() {
		confirmed[name] = map[string]int64{}
	}
	outcomes := map[concord.Outcome]int{}
	for _, b := range bookings {
		st, err := cl.coord.Status(b.resp.ID)
		if err != nil {
			t.Errorf("%s: coordinator status: %v", b.resp.ID, err)
			continue
		}
		outcome := b.resp.Outcome
		switch outcome {
		case concord.OutcomeCommitted, concord.OutcomeAborted:
			if st.State != outcome.String() {
				t.Errorf("%s: client heard %s, coordinator says %s", b.resp.ID, outcome, st.State)
			}
		case concord.OutcomePending:
			// A lone participant that did not answer in time: the
			// coordinator could not decide alone and told the client so;
			// by now the participant's answer has settled it.
			if outcome, err = concord.ParseOutcome(st.State); err != nil || outcome == concord.OutcomePending {
				t.Errorf("%s: still %s after quiescence", b.resp.ID, st.State)
				continue
			}
			outcomes[concord.OutcomePending]++
		default:
			t.Errorf("%s: outcome %s", b.resp.ID, outcome)
			continue
		}
		outcomes[outcome]++
		b.resp.Outcome = outcome
		for _, br := range b.req.Branches {
			_, store := cl.nodes[br.Participant].current()
			r, err := store.Reservation(ctx, b.resp.ID)
			switch {
			case b.resp.Outcome == concord.OutcomeCommitted:
				if err != nil || r.State != StateCommitted {
					t.Errorf("%s committed, but at %s: %+v, %v", b.resp.ID, br.Participant, r, err)
					continue
				}
				req, _ := DecodeRequest(br.Payload)
				if r.SKU != req.SKU || r.Quantity != req.Quantity {
					t.Errorf("%s at %s: holds %s x%d, asked %s x%d", b.resp.ID, br.Participant, r.SKU, r.Quantity, req.SKU, req.Quantity)
				}
				confirmed[br.Participant][r.SKU] += r.Quantity
			default:
				if err == nil && r.State != StateAborted {
					t.Errorf("%s aborted, but at %s: %+v", b.resp.ID, br.Participant, r)
				}
			}
		}
	}
	for _, name := range ServiceNames() {
		_, store := cl.nodes[name].current()
		if err := store.Check(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		items, _ := store.Items(ctx)
		for _, it := range items {
			if it.Available+it.Held+it.Confirmed != it.Capacity || it.Held != 0 {
				t.Errorf("%s %s: %+v", name, it.SKU, it)
			}
			if it.Confirmed != confirmed[name][it.SKU] {
				t.Errorf("%s %s: confirmed %d, committed transactions booked %d", name, it.SKU, it.Confirmed, confirmed[name][it.SKU])
			}
		}
	}
	t.Logf("%d transactions: %d committed, %d aborted (%d of them answered pending first)", len(bookings),
		outcomes[concord.OutcomeCommitted], outcomes[concord.OutcomeAborted], outcomes[concord.OutcomePending])
}

// randomTrip builds a booking of a random non-empty subset of the services.
func randomTrip(id concord.TxID, pick func(n int) int, skus map[string][]string) wire.SubmitRequest {
	req := wire.SubmitRequest{ID: id}
	for {
		for _, name := range ServiceNames() {
			if pick(3) == 0 {
				continue
			}
			list := skus[name]
			sku := list[pick(len(list))]
			if pick(25) == 0 {
				sku = "NOPE" // not offered: a no vote
			}
			req.Branches = append(req.Branches, wire.Branch{
				Participant: name,
				Payload:     Request{SKU: sku, Quantity: int64(1 + pick(3))}.Payload(),
			})
		}
		if len(req.Branches) > 0 {
			return req
		}
	}
}

func skusOf(stock map[string][]Stock) map[string][]string {
	out := map[string][]string{}
	for name, s := range stock {
		for _, it := range s {
			out[name] = append(out[name], it.SKU)
		}
		sort.Strings(out[name])
	}
	return out
}

func branchNames(req wire.SubmitRequest) string {
	var names []string
	for _, b := range req.Branches {
		names = append(names, b.Participant)
	}
	return strings.Join(names, ",")
}
