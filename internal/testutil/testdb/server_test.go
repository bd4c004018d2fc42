package testdb

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

// unusedAddr is a loopback host:port nothing listens on.
func unusedAddr(t *testing.T) string {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// requireStarted fails the test unless tg is a throwaway server, skipping
// (failing under CI=true) where no server binaries are installed.
func requireStarted(t *testing.T, tg target) {
	t.Helper()
	if tg.skip != "" {
		use(t, &tg, new(sync.Once))
	}
	if tg.err != nil {
		t.Fatal(tg.err)
	}
	if tg.srv == nil {
		t.Fatalf("no throwaway server started: %+v", tg)
	}
	t.Log(tg.note)
}

// checkRemoved stops srv and checks that its directory is gone.
func checkRemoved(t *testing.T, srv *server) {
	t.Helper()
	stopServer(srv)
	if _, err := os.Stat(srv.dir); !os.IsNotExist(err) {
		t.Errorf("%s still there after the server stopped (%v)", srv.dir, err)
	}
}

// With nothing at the default address the helper starts a throwaway
// cluster that can prepare transactions, and removes it when stopped.
func TestThrowawayPostgresWhenDefaultIsDown(t *testing.T) {
	t.Setenv(EnvPostgres, "")
	tg := choosePostgresAt("postgres://root@" + unusedAddr(t) + "/test?sslmode=disable")
	requireStarted(t, tg)
	defer checkRemoved(t, tg.srv)
	if !strings.Contains(tg.note, "is unreachable") {
		t.Errorf("note %q does not say why the default was not used", tg.note)
	}
	if why := postgresCannotServe(tg.base); why != "" {
		t.Fatalf("the throwaway cluster cannot serve: it %s", why)
	}
	// The check that made the helper start it: too few prepared
	// transactions is reported, with the figures.
	if why := postgresCannotServeWith(tg.base, 100000); !strings.Contains(why, "max_prepared_transactions = 200 (the tests need 100000)") {
		t.Errorf("too few prepared transactions reported as %q", why)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, tg.base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{"CREATE TABLE t (k int)", "BEGIN", "INSERT INTO t VALUES (1)",
		"PREPARE TRANSACTION 'testdb-1'", "COMMIT PREPARED 'testdb-1'"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if tg.addr == "" || !strings.Contains(tg.base, tg.addr) {
		t.Errorf("addr %q is not the base URL's %q", tg.addr, tg.base)
	}
}

// With nothing at the default address the helper starts a throwaway
// MariaDB that takes XA transactions as root without a password.
func TestThrowawayMariaDBWhenDefaultIsDown(t *testing.T) {
	t.Setenv(EnvMySQL, "")
	tg := chooseMySQLAt("root@tcp(" + unusedAddr(t) + ")/test")
	requireStarted(t, tg)
	defer checkRemoved(t, tg.srv)
	if !strings.Contains(tg.note, "is unreachable") {
		t.Errorf("note %q does not say why the default was not used", tg.note)
	}
	db, err := sql.Open("mysql", tg.base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one session for the XA statements
	for _, q := range []string{"CREATE TABLE t (k int) ENGINE=InnoDB", "XA START 'testdb-1'", "INSERT INTO t VALUES (1)",
		"XA END 'testdb-1'", "XA PREPARE 'testdb-1'", "XA COMMIT 'testdb-1'"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// recorder is a testing.TB that records how a test ended.
type recorder struct {
	testing.TB
	mu      sync.Mutex
	skipped string
	failed  string
}

func (r *recorder) Helper()    {}
func (r *recorder) Log(...any) {}
func (r *recorder) Skipf(format string, a ...any) {
	r.mu.Lock()
	r.skipped = fmt.Sprintf(format, a...)
	r.mu.Unlock()
	runtime.Goexit()
}
func (r *recorder) Fatalf(format string, a ...any) {
	r.mu.Lock()
	r.failed = fmt.Sprintf(format, a...)
	r.mu.Unlock()
	runtime.Goexit()
}
func (r *recorder) Fatal(a ...any) { r.Fatalf("%s", fmt.Sprint(a...)) }

// runUse runs use on tg as a test would, and reports how it ended.
func runUse(t *testing.T, tg target) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		use(r, &tg, new(sync.Once))
	}()
	<-done
	return r
}

// No server and no binaries: skipped with the reason outside CI, failed
// under CI=true; a server that failed to start always fails.
func TestNoServerSkipsOrFailsUnderCI(t *testing.T) {
	tg := target{skip: "PostgreSQL at x is unreachable, and no throwaway cluster can be started: no initdb"}
	t.Setenv("CI", "")
	if r := runUse(t, tg); r.failed != "" || !strings.Contains(r.skipped, "no initdb") {
		t.Errorf("outside CI: skipped %q, failed %q; want a skip naming the reason", r.skipped, r.failed)
	}
	t.Setenv("CI", "true")
	if r := runUse(t, tg); r.skipped != "" || !strings.Contains(r.failed, "no initdb") || !strings.Contains(r.failed, "CI=true") {
		t.Errorf("under CI: skipped %q, failed %q; want a failure naming the reason", r.skipped, r.failed)
	}
	t.Setenv("CI", "")
	if r := runUse(t, target{err: fmt.Errorf("initdb: boom")}); !strings.Contains(r.failed, "boom") {
		t.Errorf("a server that did not start: skipped %q, failed %q; want a failure", r.skipped, r.failed)
	}
}

// A throwaway server's directory left by a killed test binary is removed by
// a later one; a fresh one, or one whose server runs, is kept.
func TestSweepLeftovers(t *testing.T) {
	parent := t.TempDir()
	now := time.Now()
	mk := func(name, pid string, age time.Duration) string {
		d := filepath.Join(parent, name)
		if err := os.MkdirAll(filepath.Join(d, "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		if pid != "" {
			if err := os.WriteFile(filepath.Join(d, "data", "postmaster.pid"), []byte(pid+"\n/tmp/x\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chtimes(d, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
		return d
	}
	dead := mk("concord-pg-dead", "", time.Hour)
	deadPid := mk("concord-pg-deadpid", "2147483600", time.Hour) // above any pid_max: no such process
	live := mk("concord-pg-live", strconv.Itoa(os.Getpid()), time.Hour)
	fresh := mk("concord-pg-fresh", "", time.Second)
	other := mk("something-else", "", time.Hour)
	sweepLeftovers(parent, "concord-pg-", filepath.Join("data", "postmaster.pid"), now)
	for d, keep := range map[string]bool{dead: false, deadPid: false, live: true, fresh: true, other: true} {
		_, err := os.Stat(d)
		if kept := err == nil; kept != keep {
			t.Errorf("%s: kept %v, want %v", filepath.Base(d), kept, keep)
		}
	}
}
