package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/client"
	"github.com/concordtx/concord/internal/failpoint"
	"github.com/concordtx/concord/internal/procs"
	"github.com/concordtx/concord/internal/testutil/testdb"
	"github.com/concordtx/concord/travel"
	"github.com/concordtx/concord/wire"
)

// front is a fixed loopback address for a process that listens on a fresh
// port (127.0.0.1:0) at every start: it forwards every request to the
// process's current address. A port picked free in advance and bound later
// by the child can be taken in between by any other listener on the
// machine; the front's own port is held by this test for its whole run.
type front struct {
	target atomic.Pointer[url.URL]
	srv    *httptest.Server
	// gate, when it returns a message, refuses the request with 503.
	gate func(r *http.Request) string
}

func newFront(t *testing.T, gate func(r *http.Request) string) *front {
	t.Helper()
	f := &front{gate: gate}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(f.target.Load()) },
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			wire.WriteError(w, http.StatusBadGateway, err.Error()) // the process is down: say so
		},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.target.Load() == nil {
			wire.WriteError(w, http.StatusBadGateway, "not started yet")
			return
		}
		if f.gate != nil {
			if msg := f.gate(r); msg != "" {
				wire.WriteError(w, http.StatusServiceUnavailable, msg)
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// point makes the front forward to base, a process's URL.
func (f *front) point(t *testing.T, base string) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	f.target.Store(u)
}

// decisionGate stands between the coordinator and one service: it forwards
// everything, except that while hold is set it refuses COMMIT and ABORT
// (503), so that a decision cannot reach the service and only the service's
// own recovery (asking the coordinator) can resolve what it prepared.
type decisionGate struct {
	hold atomic.Bool
	*front
}

func newDecisionGate(t *testing.T) *decisionGate {
	t.Helper()
	g := &decisionGate{}
	g.front = newFront(t, func(r *http.Request) string {
		if g.hold.Load() && (r.URL.Path == wire.PathCommit || r.URL.Path == wire.PathAbort) {
			return "decision held back by the test"
		}
		return ""
	})
	return g
}

// dbProcCluster is a coordinator process and the three travel services as
// processes: flights on PostgreSQL, hotels on MariaDB, cars on the file
// store. Every process listens on a fresh port at each start and is
// reached through a front of fixed address (the coordinator's is the one it
// advertises), so that the others still reach it across restarts.
type dbProcCluster struct {
	t         *testing.T
	pg, my    testdb.TestDB
	coordURL  string // the coordinator's front
	coordFr   *front
	coordArgs []string
	coord     *exec.Cmd
	cl        *client.Client
	svcURL    map[string]string // each service's current address
	svcArgs   map[string][]string
	svc       map[string]*exec.Cmd
	gates     map[string]*decisionGate
}

var dbProcStock = map[string]string{travel.Flights: "FL100=10", travel.Hotels: "H-PARIS=10", travel.Cars: "C-ECON=10"}

var dbProcTrip = map[string]travel.Request{
	travel.Flights: {SKU: "FL100", Quantity: 1},
	travel.Hotels:  {SKU: "H-PARIS", Quantity: 2},
	travel.Cars:    {SKU: "C-ECON", Quantity: 3},
}

// newDBProcCluster makes the test's PostgreSQL schema and MariaDB database
// and picks every process's address and arguments; start starts them. Every
// service is reached through its own decisionGate.
func newDBProcCluster(t *testing.T) *dbProcCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts processes")
	}
	c := &dbProcCluster{t: t, pg: testdb.Postgres(t), my: testdb.MySQL(t),
		svcURL: map[string]string{}, svcArgs: map[string][]string{}, svc: map[string]*exec.Cmd{}, gates: map[string]*decisionGate{}}
	c.coordFr = newFront(t, nil)
	c.coordURL = c.coordFr.srv.URL
	store := map[string]string{travel.Flights: c.pg.URL, travel.Hotels: mysqlStoreURL(t, c.my.URL), travel.Cars: "file"}
	c.coordArgs = []string{"--advertise", c.coordURL, "--data", t.TempDir(), "--default-timeout", "10s"}
	for _, name := range travel.ServiceNames() {
		// Asked only after an hour: before a restart nothing resolves a
		// prepared reservation but a decision delivered to the service.
		c.svcArgs[name] = []string{"--service", name, "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--store", store[name],
			"--coordinator", c.coordURL, "--inventory", dbProcStock[name], "--in-doubt-after", "1h"}
		c.gates[name] = newDecisionGate(t)
		c.coordArgs = append(c.coordArgs, "--participant", name+"="+c.gates[name].srv.URL)
	}
	return c
}

// mysqlStoreURL turns a go-sql-driver DSN into the mysql:// URL --store
// takes.
func mysqlStoreURL(t *testing.T, dsn string) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u := url.URL{Scheme: "mysql", User: url.User(cfg.User), Host: cfg.Addr, Path: "/" + cfg.DBName}
	if cfg.Passwd != "" {
		u.User = url.UserPassword(cfg.User, cfg.Passwd)
	}
	return u.String()
}

// start starts the services, arming spec (CONCORD_FAILPOINTS) in victim
// only, then the coordinator with coordFailpoints.
func (c *dbProcCluster) start(victim, spec, coordFailpoints string) {
	c.t.Helper()
	for _, name := range travel.ServiceNames() {
		if name == victim {
			c.t.Setenv(failpoint.EnvVar, spec) // inherited by this child only
		}
		var u string
		c.svc[name], u = startParticipantProcess(c.t, c.svcArgs[name]...)
		c.t.Setenv(failpoint.EnvVar, "")
		c.svcURL[name] = u
		c.gates[name].point(c.t, u)
	}
	c.startCoordinator(coordFailpoints)
}

func (c *dbProcCluster) startCoordinator(failpoints string) {
	c.t.Helper()
	// The coordinator prints the URL it advertises (its front's), so its
	// own port is picked here, just before it binds it, and not seconds
	// earlier with the services' starts in between.
	addr, err := procs.FreeAddr()
	if err != nil {
		c.t.Fatal(err)
	}
	c.coordFr.point(c.t, "http://"+addr)
	var u string
	c.coord, u = startCoordinatorProcessEnv(c.t, failpoints, append([]string{"--listen", addr}, c.coordArgs...)...)
	if u != c.coordURL {
		c.t.Fatalf("coordinator advertises %s, want its front %s", u, c.coordURL)
	}
	if c.cl, err = client.New(client.Options{URL: u, Timeout: 15 * time.Second}); err != nil {
		c.t.Fatal(err)
	}
}

// restartService starts name again on its store and data, asking
// the coordinator about what it holds prepared soon after.
func (c *dbProcCluster) restartService(name string) {
	c.t.Helper()
	args := append([]string(nil), c.svcArgs[name]...)
	args[len(args)-1] = "50ms"
	var u string
	c.svc[name], u = startParticipantProcess(c.t, args...)
	c.svcURL[name] = u
	c.gates[name].point(c.t, u)
}

func (c *dbProcCluster) submit(ctx context.Context, id concord.TxID) (wire.SubmitResponse, error) {
	req := wire.SubmitRequest{ID: id}
	for _, name := range travel.ServiceNames() {
		req.Branches = append(req.Branches, wire.Branch{Participant: name, Payload: dbProcTrip[name].Payload()})
	}
	return c.cl.Submit(ctx, req)
}

// reservation is name's reservation for id ("" state if it holds none).
func (c *dbProcCluster) reservation(name string, id concord.TxID) (travel.Reservation, error) {
	var r travel.ReservationResponse
	err := wire.Do(context.Background(), http.DefaultClient, http.MethodGet, c.svcURL[name]+travel.PathReservations+"/"+string(id), nil, &r)
	var se *wire.StatusError
	if errors.As(err, &se) && se.Code == http.StatusNotFound {
		return travel.Reservation{ID: id}, nil
	}
	return r.Reservation, err
}

// prepared lists the prepared transactions of this run's namespaces, read
// from pg_prepared_xacts and XA RECOVER: PostgreSQL gids and MariaDB
// gtrid/bqual pairs.
func (c *dbProcCluster) prepared() (pg, my []string) {
	c.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.pg.URL)
	if err != nil {
		c.t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT gid FROM pg_prepared_xacts WHERE database = current_database() AND strpos(gid, '/' || $1 || '/') > 0", c.pg.Name)
	if err != nil {
		c.t.Fatal(err)
	}
	if pg, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		c.t.Fatal(err)
	}
	db, err := sql.Open("mysql", c.my.URL)
	if err != nil {
		c.t.Fatal(err)
	}
	defer db.Close()
	xrows, err := db.QueryContext(ctx, "XA RECOVER")
	if err != nil {
		c.t.Fatal(err)
	}
	defer xrows.Close()
	for xrows.Next() {
		var format, gl, bl int
		var data []byte
		if err := xrows.Scan(&format, &gl, &bl, &data); err != nil {
			c.t.Fatal(err)
		}
		if gl+bl <= len(data) && strings.HasPrefix(string(data[gl:gl+bl]), c.my.Name+"/") {
			my = append(my, string(data[:gl])+" "+string(data[gl:gl+bl]))
		}
	}
	if err := xrows.Err(); err != nil {
		c.t.Fatal(err)
	}
	return pg, my
}

// preparedFor reports whether the flights (PostgreSQL) and hotels (MariaDB)
// transactions of id are prepared in their databases.
func (c *dbProcCluster) preparedFor(id concord.TxID) (pg, my bool) {
	pgs, mys := c.prepared()
	for _, g := range pgs {
		pg = pg || strings.HasSuffix(g, "/"+c.pg.Name+"/"+travel.Flights+"/"+string(id))
	}
	for _, x := range mys {
		my = my || x == string(id)+" "+c.my.Name+"/"+travel.Hotels
	}
	return pg, my
}

// pollUntil checks cond until it holds, failing after a generous deadline:
// real processes and databases leave nothing else to wait on.
func pollUntil(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s; last: %s", what, last)
		}
		time.Sleep(10 * time.Millisecond) // a real process: poll it
	}
}

// settledAt waits until every service holds id in the state the
// coordinator decided and nothing of this run is prepared in either
// database, then checks every inventory: nothing held, the trip confirmed
// only if committed, nothing lost.
func (c *dbProcCluster) settledAt(id concord.TxID, outcome concord.Outcome, victim string) {
	c.t.Helper()
	want := travel.StateAborted
	if outcome == concord.OutcomeCommitted {
		want = travel.StateCommitted
	}
	pollUntil(c.t, "every service and database resolved to "+outcome.String(), func() (bool, string) {
		for _, name := range travel.ServiceNames() {
			r, err := c.reservation(name, id)
			if err != nil {
				return false, fmt.Sprintf("%s: %v", name, err)
			}
			if r.State == travel.StatePrepared || (r.State == "" && (name == victim || want == travel.StateCommitted)) {
				return false, fmt.Sprintf("%s: %+v", name, r)
			}
			if r.State != "" && r.State != want {
				c.t.Fatalf("%s resolved %s against the coordinator's %s: %+v", name, id, outcome, r)
			}
		}
		if pg, my := c.prepared(); len(pg)+len(my) > 0 {
			return false, fmt.Sprintf("still prepared: postgres %q, mariadb %q", pg, my)
		}
		return true, ""
	})
	for _, name := range travel.ServiceNames() {
		var inv travel.InventoryResponse
		if err := wire.Do(context.Background(), http.DefaultClient, http.MethodGet, c.svcURL[name]+travel.PathInventory, nil, &inv); err != nil {
			c.t.Fatal(err)
		}
		confirmed := int64(0)
		if want == travel.StateCommitted {
			confirmed = dbProcTrip[name].Quantity
		}
		if len(inv.Items) != 1 || inv.Items[0].Held != 0 || inv.Items[0].Confirmed != confirmed ||
			inv.Items[0].Available+inv.Items[0].Confirmed != inv.Items[0].Capacity {
			c.t.Fatalf("%s inventory: %+v, want nothing held and %d confirmed", name, inv.Items, confirmed)
		}
	}
}

// killedBySignal reports whether cmd ended by a signal (SIGKILL: the
// failpoint's or the test's), not by exiting.
func killedBySignal(cmd *exec.Cmd) bool {
	cmd.Wait()
	return cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == -1
}

// A database-backed service process dies (SIGKILL) after its PREPARE is
// durable in the database and before the decision reaches it: either at
// the participant.after-prepare-sync failpoint, before its yes vote leaves
// (the coordinator aborts), or killed by the test after voting yes while
// its COMMIT is held back (the coordinator commits). While it is down the
// database keeps the prepared transaction; restarted on the same store, and
// with decisions still held back from it, it resolves the transaction by
// asking the coordinator, to the coordinator's decision, and nothing stays
// prepared.
func TestDBParticipantProcessKilledBeforeDecision(t *testing.T) {
	for _, tc := range []struct {
		victim    string
		failpoint bool
		outcome   concord.Outcome
	}{
		{travel.Flights, true, concord.OutcomeAborted},
		{travel.Hotels, true, concord.OutcomeAborted},
		{travel.Flights, false, concord.OutcomeCommitted},
		{travel.Hotels, false, concord.OutcomeCommitted},
	} {
		how := "killed-after-vote"
		if tc.failpoint {
			how = "failpoint-after-prepare-sync"
		}
		t.Run(tc.victim+"/"+how, func(t *testing.T) {
			c := newDBProcCluster(t)
			spec := ""
			if tc.failpoint {
				spec = failpoint.ParticipantAfterPrepareSync + "=crash"
			}
			c.start(tc.victim, spec, "")
			gate := c.gates[tc.victim]
			gate.hold.Store(true)
			const id = concord.TxID("db-kill-participant")
			resp, err := c.submit(t.Context(), id)
			if err != nil || resp.Outcome != tc.outcome {
				t.Fatalf("submit: %+v, %v; want %s", resp, err, tc.outcome)
			}
			proc := c.svc[tc.victim]
			if !tc.failpoint {
				if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
			if !killedBySignal(proc) {
				t.Fatalf("%s was not killed: %v", tc.victim, proc.ProcessState)
			}
			pg, my := c.preparedFor(id)
			if inDB := map[string]bool{travel.Flights: pg, travel.Hotels: my}[tc.victim]; !inDB {
				pgs, mys := c.prepared()
				t.Fatalf("with %s down its database must keep the prepared transaction: postgres %q, mariadb %q", tc.victim, pgs, mys)
			}
			if st, err := c.cl.Get(t.Context(), id); err != nil || st.State != tc.outcome.String() {
				t.Fatalf("coordinator: %+v, %v; want %s", st, err, tc.outcome)
			}

			c.restartService(tc.victim)
			c.settledAt(id, tc.outcome, tc.victim)
			if o, err := c.cl.Outcome(t.Context(), id); err != nil || o != tc.outcome {
				t.Fatalf("coordinator outcome after recovery: %v, %v", o, err)
			}
			// Let the held-back decision through: the service acknowledges
			// what it already resolved, and the coordinator is done.
			gate.hold.Store(false)
			pollUntil(t, "the coordinator done with "+string(id), func() (bool, string) {
				st, err := c.cl.Get(t.Context(), id)
				return err == nil && st.Done, fmt.Sprintf("%+v %v", st, err)
			})
			c.settledAt(id, tc.outcome, tc.victim)
		})
	}
}

// The coordinator process dies (coordinator.after-decision-sync=crash)
// right after its COMMIT decision is durable, before any COMMIT leaves:
// both databases hold their prepared transactions while it is down.
// Restarted on the same data directory it re-drives the commit (the
// services would ask only after an hour), and every service ends committed
// with nothing prepared in either database.
func TestDBCoordinatorProcessKilledAfterDecision(t *testing.T) {
	c := newDBProcCluster(t)
	c.start("", "", failpoint.CoordinatorAfterDecisionSync+"=crash")
	const id = concord.TxID("db-kill-coordinator")
	if resp, err := c.submit(t.Context(), id); err == nil {
		t.Fatalf("the client heard %+v from a coordinator that died before answering", resp)
	}
	if !killedBySignal(c.coord) {
		t.Fatalf("the coordinator was not killed: %v", c.coord.ProcessState)
	}
	if pg, my := c.preparedFor(id); !pg || !my {
		t.Fatalf("with the coordinator down both databases must hold the prepared transactions: postgres %v, mariadb %v", pg, my)
	}
	for _, name := range travel.ServiceNames() {
		if r, err := c.reservation(name, id); err != nil || r.State != travel.StatePrepared {
			t.Fatalf("%s before the restart: %+v, %v; want prepared", name, r, err)
		}
	}

	c.startCoordinator("")
	pollUntil(t, "the restarted coordinator done with "+string(id), func() (bool, string) {
		st, err := c.cl.Get(t.Context(), id)
		return err == nil && st.Done, fmt.Sprintf("%+v %v", st, err)
	})
	if o, err := c.cl.Outcome(t.Context(), id); err != nil || o != concord.OutcomeCommitted {
		t.Fatalf("outcome after restart: %v, %v", o, err)
	}
	c.settledAt(id, concord.OutcomeCommitted, "")
}
