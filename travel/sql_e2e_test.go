package travel

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/coordinator"
	"github.com/concordtx/concord/internal/testutil/testdb"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/wal/memfs"
	"github.com/concordtx/concord/wire"
)

// These tests book trips through a real coordinator whose flights live in
// PostgreSQL, hotels in MariaDB and cars in the file store, all on loopback.

var mixedStock = map[string][]Stock{
	Flights: {{"FL100", 200}, {"FL300", 8}},
	Hotels:  {{"H-PARIS", 200}, {"H-OSLO", 10}},
	Cars:    {{"C-ECON", 200}, {"C-VAN", 5}},
}

// swappable serves whatever handler is installed; with none it drops the
// connection unanswered, as a dead process would.
type swappable struct {
	h atomic.Pointer[http.Handler]
}

func (s *swappable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := s.h.Load()
	if h == nil {
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

func (s *swappable) set(h http.Handler) {
	if h == nil {
		s.h.Store(nil)
		return
	}
	s.h.Store(&h)
}

// mixedNode is one travel service on a fixed loopback address whose process
// can be killed and restarted on the same store.
type mixedNode struct {
	name     string
	storeURL string // "" for the file store in dir
	dir      string
	stock    []Stock
	sw       swappable
	srv      *httptest.Server

	mu    sync.Mutex
	svc   *Service
	store Store
	// afterPrepare, when set, sees the ids of every PREPARE the service
	// answered; returning true kills the service as its answer leaves.
	afterPrepare func(ids []concord.TxID) bool
	// prepareGate, when set, holds every PREPARE until it is closed.
	prepareGate chan struct{}
	// onKill, when set, is called once kill has dropped the service.
	onKill func()
}

func (n *mixedNode) serve(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	hook, gate := n.afterPrepare, n.prepareGate
	n.mu.Unlock()
	if gate != nil && r.URL.Path == wire.PathPrepare {
		select {
		case <-gate:
		case <-r.Context().Done():
		}
	}
	if hook == nil || r.URL.Path != wire.PathPrepare {
		n.sw.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	n.sw.ServeHTTP(rec, r)
	var resp wire.PrepareResponse
	_ = json.Unmarshal(rec.Body.Bytes(), &resp)
	var ids []concord.TxID
	for _, v := range resp.Votes {
		ids = append(ids, v.ID)
	}
	if hook(ids) {
		n.kill() // before the answer leaves, so no decision can reach the old process
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

func (n *mixedNode) start(t testing.TB, coordURL string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := OpenStore(ctx, StoreConfig{Service: n.name, URL: n.storeURL, Dir: n.dir, Stock: n.stock})
	if err != nil {
		t.Fatalf("%s: %v", n.name, err)
	}
	svc, err := New(Options{Name: n.name, Store: st, Server: participant.Options{
		Coordinator:  coordURL,
		InDoubtAfter: 200 * time.Millisecond,
		QueryMin:     20 * time.Millisecond,
		QueryMax:     200 * time.Millisecond,
		TickInterval: 20 * time.Millisecond,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	n.mu.Lock()
	n.svc, n.store = svc, st
	n.mu.Unlock()
	n.sw.set(svc.Handler())
}

// kill stops answering and drops the service and its store connections
// without deciding anything: what the database prepared stays prepared.
func (n *mixedNode) kill() {
	n.sw.set(nil)
	n.mu.Lock()
	svc, onKill := n.svc, n.onKill
	n.svc, n.store, n.onKill = nil, nil, nil
	n.mu.Unlock()
	if svc != nil {
		svc.Close()
	}
	if onKill != nil {
		onKill()
	}
}

func (n *mixedNode) current() Store {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.store
}

// mixedCluster is a coordinator (its log on a crashable in-memory disk) and
// the three services, one per kind of store.
type mixedCluster struct {
	t      testing.TB
	pg, my testdb.TestDB
	nodes  map[string]*mixedNode
	urls   map[string]string
	fs     *memfs.FS
	csw    swappable
	csrv   *httptest.Server
	coord  *coordinator.Coordinator
	hook   func(p coordinator.CrashPoint, id concord.TxID) error
}

func newMixedCluster(t testing.TB, stock map[string][]Stock) *mixedCluster {
	t.Helper()
	cl := &mixedCluster{t: t, pg: testdb.Postgres(t), my: testdb.MySQL(t), nodes: map[string]*mixedNode{}, urls: map[string]string{}, fs: memfs.New()}
	cl.csrv = httptest.NewServer(&cl.csw)
	t.Cleanup(cl.csrv.Close)
	stores := map[string]string{Flights: cl.pg.URL, Hotels: mysqlURL(t, cl.my.URL), Cars: ""}
	for _, name := range ServiceNames() {
		n := &mixedNode{name: name, storeURL: stores[name], dir: t.TempDir(), stock: stock[name]}
		n.srv = httptest.NewServer(http.HandlerFunc(n.serve))
		t.Cleanup(func() {
			n.srv.CloseClientConnections()
			n.srv.Close()
			n.kill()
		})
		cl.nodes[name], cl.urls[name] = n, n.srv.URL
	}
	cl.startCoordinator()
	t.Cleanup(func() {
		if cl.coord != nil {
			cl.coord.Close()
		}
	})
	for _, n := range cl.nodes {
		n.start(t, cl.csrv.URL)
	}
	return cl
}

func (cl *mixedCluster) startCoordinator() {
	cl.t.Helper()
	c, err := coordinator.New(coordinator.Options{
		Dir:            "/coordinator/wal",
		FS:             cl.fs,
		Participants:   cl.urls,
		AdvertiseURL:   cl.csrv.URL,
		DefaultTimeout: 5 * time.Second,
		AnswerGrace:    time.Second,
		RetryMin:       10 * time.Millisecond,
		RetryMax:       100 * time.Millisecond,
		CrashHook:      cl.hook,
	})
	if err != nil {
		cl.t.Fatal(err)
	}
	cl.coord = c
	cl.csw.set(c.Handler())
}

// crashCoordinator kills the coordinator as a power loss would (unsynced
// log writes are lost) and starts a new one on what its disk kept.
func (cl *mixedCluster) crashCoordinator() {
	cl.t.Helper()
	cl.csw.set(nil)
	cl.fs.Crash()
	cl.coord.Close()
	cl.hook = nil
	cl.startCoordinator()
}

func (cl *mixedCluster) submit(ctx context.Context, id concord.TxID, trip map[string]Request) (wire.SubmitResponse, error) {
	req := wire.SubmitRequest{ID: id}
	for _, name := range ServiceNames() {
		if r, ok := trip[name]; ok {
			req.Branches = append(req.Branches, wire.Branch{Participant: name, Payload: r.Payload()})
		}
	}
	return cl.coord.Submit(ctx, req)
}

func (cl *mixedCluster) mustSubmit(id concord.TxID, trip map[string]Request, want concord.Outcome) wire.SubmitResponse {
	cl.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := cl.submit(ctx, id, trip)
	if err != nil {
		cl.t.Fatalf("submit %s: %v", id, err)
	}
	if resp.Outcome != want {
		cl.t.Fatalf("%s: %+v, want %s", id, resp, want)
	}
	return resp
}

// wantReservation checks id's reservation at service name.
func (cl *mixedCluster) wantReservation(name string, id concord.TxID, want State) {
	cl.t.Helper()
	r, err := cl.nodes[name].current().Reservation(context.Background(), id)
	if want == "" {
		if err == nil && r.State != StateAborted {
			cl.t.Errorf("%s at %s: %+v, want none or aborted", id, name, r)
		}
		return
	}
	if err != nil || r.State != want {
		cl.t.Errorf("%s at %s: %+v, %v; want %s", id, name, r, err, want)
	}
}

// conserved checks every store's inventory: available + held + confirmed =
// capacity, nothing held once all is decided, and confirmed equal to what
// the committed trips booked.
func (cl *mixedCluster) conserved(confirmed map[string]map[string]int64) {
	cl.t.Helper()
	for _, name := range ServiceNames() {
		items, err := cl.nodes[name].current().Items(context.Background())
		if err != nil {
			cl.t.Fatal(err)
		}
		for _, it := range items {
			if it.Available+it.Held+it.Confirmed != it.Capacity || it.Held != 0 || it.Available < 0 {
				cl.t.Errorf("%s %s not conserved or still held: %+v", name, it.SKU, it)
			}
			if confirmed != nil && it.Confirmed != confirmed[name][it.SKU] {
				cl.t.Errorf("%s %s: confirmed %d, committed trips booked %d", name, it.SKU, it.Confirmed, confirmed[name][it.SKU])
			}
		}
	}
}

// preparedInDatabases lists what the two databases hold prepared for id,
// read directly from pg_prepared_xacts and XA RECOVER.
func (cl *mixedCluster) preparedInDatabases(id concord.TxID) (pg, my bool) {
	cl.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, cl.pg.URL)
	if err != nil {
		cl.t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE '%/' || $1 || '/flights/' || $2",
		cl.pg.Name, string(id)).Scan(&n); err != nil {
		cl.t.Fatal(err)
	}
	db, err := sql.Open("mysql", cl.my.URL)
	if err != nil {
		cl.t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("XA RECOVER")
	if err != nil {
		cl.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var f, gl, bl int
		var data []byte
		if err := rows.Scan(&f, &gl, &bl, &data); err != nil {
			cl.t.Fatal(err)
		}
		if string(data) == string(id)+cl.my.Name+"/"+Hotels {
			my = true
		}
	}
	return n == 1, my
}

// waitFor polls cond until it holds, failing after timeout. Real sockets,
// databases and retries leave no event to wait on instead.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
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

// settled waits until the coordinator has nothing pending and no store
// holds a prepared reservation.
func (cl *mixedCluster) settled() {
	cl.t.Helper()
	waitFor(cl.t, 30*time.Second, "everything decided", func() (bool, string) {
		l, err := cl.coord.List(coordinator.ListPending, 10)
		if err != nil || len(l.Transactions) > 0 {
			return false, fmt.Sprintf("coordinator pending: %+v %v", l.Transactions, err)
		}
		for _, n := range cl.nodes {
			st := n.current()
			if st == nil {
				return false, n.name + " is down"
			}
			p, err := st.Reservations(context.Background(), StatePrepared)
			if err != nil || len(p) > 0 {
				return false, fmt.Sprintf("%s holds %+v %v", n.name, p, err)
			}
		}
		return true, ""
	})
}

var fullTrip = map[string]Request{
	Flights: {SKU: "FL100", Quantity: 1},
	Hotels:  {SKU: "H-PARIS", Quantity: 2},
	Cars:    {SKU: "C-ECON", Quantity: 1},
}

func tripWith(name string, r Request) map[string]Request {
	trip := map[string]Request{}
	for k, v := range fullTrip {
		trip[k] = v
	}
	trip[name] = r
	return trip
}

// One transaction spans a flight on PostgreSQL, a hotel on MariaDB and a car
// on the file store: it commits at all three, or a no vote at any one aborts
// it at all three and releases every hold.
func TestMixedStoresCommitAndAbort(t *testing.T) {
	cl := newMixedCluster(t, mixedStock)
	cl.mustSubmit("mixed-commit", fullTrip, concord.OutcomeCommitted)
	cl.mustSubmit("mixed-no-car", tripWith(Cars, Request{SKU: "C-VAN", Quantity: 6}), concord.OutcomeAborted)
	cl.mustSubmit("mixed-no-hotel", tripWith(Hotels, Request{SKU: "H-NOPE", Quantity: 1}), concord.OutcomeAborted)
	cl.mustSubmit("mixed-no-flight", tripWith(Flights, Request{SKU: "FL300", Quantity: 9}), concord.OutcomeAborted)
	cl.settled()
	for _, name := range ServiceNames() {
		cl.wantReservation(name, "mixed-commit", StateCommitted)
		for _, id := range []concord.TxID{"mixed-no-car", "mixed-no-hotel", "mixed-no-flight"} {
			cl.wantReservation(name, id, "")
		}
	}
	cl.conserved(map[string]map[string]int64{
		Flights: {"FL100": 1}, Hotels: {"H-PARIS": 2}, Cars: {"C-ECON": 1},
	})
	if pg, my := cl.preparedInDatabases("mixed-commit"); pg || my {
		t.Fatalf("prepared transactions left in the databases: postgres %v, mariadb %v", pg, my)
	}
}

// The flight (PostgreSQL) and hotel (MariaDB) services die right after
// voting yes. The databases keep the prepared transactions; the coordinator
// keeps retrying; the restarted services recover them and resolve them to
// the coordinator's decision: commit for one trip, abort (the car said no,
// and the lost ABORT is never resent) for the other.
func TestMixedStoresParticipantKilledAfterPrepare(t *testing.T) {
	for _, c := range []struct {
		id    concord.TxID
		trip  map[string]Request
		final State
	}{
		{"killed-commit", fullTrip, StateCommitted},
		{"killed-abort", tripWith(Cars, Request{SKU: "C-VAN", Quantity: 6}), StateAborted},
	} {
		t.Run(string(c.id), func(t *testing.T) {
			cl := newMixedCluster(t, mixedStock)
			// The car answers only once both database services are dead,
			// so that no decision reaches them before they die.
			gate := make(chan struct{})
			car := cl.nodes[Cars]
			car.mu.Lock()
			car.prepareGate = gate
			car.mu.Unlock()
			var dead atomic.Int32
			for _, name := range []string{Flights, Hotels} {
				n := cl.nodes[name]
				n.mu.Lock()
				n.afterPrepare = func(ids []concord.TxID) bool {
					if len(ids) != 1 || ids[0] != c.id {
						return false
					}
					n.mu.Lock() // the hook is called with n.mu unheld
					defer n.mu.Unlock()
					n.afterPrepare = nil
					n.onKill = func() {
						if dead.Add(1) == 2 {
							close(gate)
						}
					}
					return true
				}
				n.mu.Unlock()
			}
			want := concord.OutcomeCommitted
			if c.final == StateAborted {
				want = concord.OutcomeAborted
			}
			cl.mustSubmit(c.id, c.trip, want)
			select {
			case <-gate: // both database services are down
			case <-time.After(10 * time.Second):
				t.Fatal("the database services were never killed")
			}
			if pg, my := cl.preparedInDatabases(c.id); !pg || !my {
				t.Fatalf("with the services down the databases must keep the prepared transactions: postgres %v, mariadb %v", pg, my)
			}
			for _, name := range []string{Flights, Hotels} {
				cl.nodes[name].start(t, cl.csrv.URL)
			}
			cl.settled()
			for _, name := range ServiceNames() {
				if name == Cars && c.final == StateAborted {
					cl.wantReservation(name, c.id, "")
					continue
				}
				cl.wantReservation(name, c.id, c.final)
			}
			if pg, my := cl.preparedInDatabases(c.id); pg || my {
				t.Fatalf("still prepared after recovery: postgres %v, mariadb %v", pg, my)
			}
			cl.conserved(nil)
		})
	}
}

// The coordinator dies right after its COMMIT decision is durable, before
// any COMMIT is sent. The databases hold the prepared transactions; the
// restarted coordinator re-drives the commit and they end committed.
func TestMixedStoresCoordinatorKilledAfterDecision(t *testing.T) {
	cl := newMixedCluster(t, mixedStock)
	const id = concord.TxID("coord-crash")
	fired := make(chan struct{})
	cl.hook = func(p coordinator.CrashPoint, tx concord.TxID) error {
		if p == coordinator.AfterLogCommit && tx == id {
			close(fired)
			return fmt.Errorf("killed at %s", p)
		}
		return nil
	}
	cl.coord.Close()
	cl.startCoordinator() // with the hook installed

	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cl.submit(ctx, id, fullTrip) // answered or not: the crash decides nothing
	}()
	select {
	case <-fired:
	case <-time.After(20 * time.Second):
		t.Fatal("the coordinator never reached its commit decision")
	}
	if pg, my := cl.preparedInDatabases(id); !pg || !my {
		t.Fatalf("before the restart the databases must hold the prepared transactions: postgres %v, mariadb %v", pg, my)
	}
	cl.crashCoordinator()
	cl.settled()
	for _, name := range ServiceNames() {
		cl.wantReservation(name, id, StateCommitted)
	}
	if pg, my := cl.preparedInDatabases(id); pg || my {
		t.Fatalf("still prepared after the restart: postgres %v, mariadb %v", pg, my)
	}
	st, err := cl.coord.Status(id)
	if err != nil || st.State != "committed" {
		t.Fatalf("coordinator status after restart: %+v, %v", st, err)
	}
	cl.conserved(map[string]map[string]int64{
		Flights: {"FL100": 1}, Hotels: {"H-PARIS": 2}, Cars: {"C-ECON": 1},
	})
}

// Many trips at once compete for the same scarce SKU in every store
// (8 seats, 10 rooms, 5 vans): every trip is in the same state at every
// service, and every inventory is conserved with confirmed equal to what the
// committed trips booked.
func TestMixedStoresConcurrentSameSKU(t *testing.T) {
	cl := newMixedCluster(t, mixedStock)
	const trips, workers = 60, 12
	type result struct {
		trip map[string]Request
		resp wire.SubmitResponse
	}
	results := make([]result, trips)
	var wg sync.WaitGroup
	next := make(chan int)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(7, uint64(w)))
			for i := range next {
				trip := map[string]Request{}
				for _, name := range ServiceNames() {
					if rng.IntN(4) > 0 {
						trip[name] = Request{SKU: mixedStock[name][1].SKU, Quantity: int64(1 + rng.IntN(2))}
					}
				}
				if len(trip) == 0 {
					trip[Flights] = Request{SKU: "FL300", Quantity: 1}
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				resp, err := cl.submit(ctx, concord.TxID(fmt.Sprintf("race-%02d", i)), trip)
				cancel()
				if err != nil {
					t.Errorf("trip %d: %v", i, err)
				}
				results[i] = result{trip, resp}
			}
		}()
	}
	for i := range trips {
		next <- i
	}
	close(next)
	wg.Wait()
	cl.settled()

	confirmed := map[string]map[string]int64{Flights: {}, Hotels: {}, Cars: {}}
	var committed, aborted int
	for _, r := range results {
		st, err := cl.coord.Status(r.resp.ID)
		if err != nil {
			t.Errorf("%s: %v", r.resp.ID, err)
			continue
		}
		for name, req := range r.trip {
			switch st.State {
			case "committed":
				cl.wantReservation(name, r.resp.ID, StateCommitted)
				confirmed[name][req.SKU] += req.Quantity
			default:
				cl.wantReservation(name, r.resp.ID, "")
			}
		}
		if st.State == "committed" {
			committed++
		} else {
			aborted++
		}
	}
	cl.conserved(confirmed)
	if committed == 0 || aborted == 0 {
		t.Fatalf("%d committed, %d aborted: the workload should sell out and refuse", committed, aborted)
	}
	t.Logf("%d trips: %d committed, %d aborted", trips, committed, aborted)
}

// BenchmarkMixedTrips books three-service trips (PostgreSQL, MariaDB, file
// store) through the coordinator from 4×GOMAXPROCS goroutines.
func BenchmarkMixedTrips(b *testing.B) {
	cl := newMixedCluster(b, map[string][]Stock{
		Flights: {{"FL100", MaxCapacity}}, Hotels: {{"H-PARIS", MaxCapacity}}, Cars: {{"C-ECON", MaxCapacity}},
	})
	var n atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			resp, err := cl.submit(context.Background(), concord.TxID(fmt.Sprintf("bench-%d", i)), fullTrip)
			if err != nil || resp.Outcome != concord.OutcomeCommitted {
				b.Errorf("trip %d: %+v %v", i, resp, err)
				return
			}
		}
	})
}
