package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// Environment variables that point the database tests at other servers, or
// (set to Throwaway) at a throwaway server even when the default one serves.
const (
	EnvPostgres = "CONCORD_TEST_POSTGRES" // a postgres:// URL or "throwaway"; default DefaultPostgresURL
	EnvMySQL    = "CONCORD_TEST_MYSQL"    // a go-sql-driver DSN or "throwaway"; default DefaultMySQLDSN
)

// The local servers the database tests use by default.
const (
	DefaultPostgresURL = "postgres://root@127.0.0.1:5432/test?sslmode=disable"
	DefaultMySQLDSN    = "root@tcp(127.0.0.1:3306)/test"
)

// TestDB is a private namespace on a real database server for one test:
// a schema on PostgreSQL, a database on MySQL/MariaDB.
type TestDB struct {
	// Name is the schema or database, unique to this test run. Participant
	// names used in the test should start with it, so that the cleanup
	// finds their prepared transactions.
	Name string
	// URL connects to the namespace: a postgres:// URL whose search_path is
	// the schema, or a go-sql-driver DSN whose database is Name.
	URL string
	// Addr is the server's host:port (a throwaway server's port is not the
	// default one).
	Addr string
}

// namePrefix starts every test namespace; the creation time follows, so
// that namespaces left behind by a killed test run can be swept.
const namePrefix = "concord_t"

// staleAfter is how old a left-behind namespace must be before a later test
// run sweeps it (no test runs that long).
const staleAfter = time.Hour

func uniqueName(t testing.TB) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random name: %v", err)
	}
	return fmt.Sprintf("%s%d_%s", namePrefix, time.Now().Unix(), hex.EncodeToString(b))
}

// stale reports whether name is a test namespace created over staleAfter ago.
func stale(name string) bool {
	rest, ok := strings.CutPrefix(name, namePrefix)
	if !ok {
		return false
	}
	secs, _, ok := strings.Cut(rest, "_")
	if !ok {
		return false
	}
	n, err := strconv.ParseInt(secs, 10, 64)
	return err == nil && time.Since(time.Unix(n, 0)) > staleAfter
}

var sweepPostgresOnce, sweepMySQLOnce sync.Once

// Postgres creates a fresh schema on the test PostgreSQL server and drops it,
// with every prepared transaction whose gid names it, when the test ends.
// The first call in a process also sweeps schemas a killed run left behind.
//
// The server is the one EnvPostgres names, else the one at
// DefaultPostgresURL if it is up with prepared transactions on, else a
// throwaway cluster started once per test binary from the installed server
// binaries (the package's TestMain must call Main, which removes it). The
// test is skipped, saying why, only when there is no server and no binary
// to start one; under CI=true it fails instead.
func Postgres(t testing.TB) TestDB {
	t.Helper()
	pgChosen.Do(func() { pgTarget = choosePostgres() })
	base := use(t, &pgTarget, &pgNoted)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("PostgreSQL at %s: %v", redact(base), err)
	}
	defer conn.Close(context.Background())
	sweepPostgresOnce.Do(func() {
		rows, err := conn.Query(ctx, "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)", namePrefix)
		if err != nil {
			return
		}
		names, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, n := range names {
			if stale(n) {
				dropPostgres(t.Logf, base, n) // another run's leftovers: report, do not fail
			}
		}
	})
	name := uniqueName(t)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("create schema %s: %v", name, err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvPostgres, err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	t.Cleanup(func() { dropPostgres(t.Errorf, base, name) })
	return TestDB{Name: name, URL: u.String(), Addr: pgTarget.addr}
}

func dropPostgres(report func(format string, args ...any), base, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		report("cleanup: connect: %v", err)
		return
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT gid FROM pg_prepared_xacts
		WHERE database = current_database() AND strpos(gid, '/'||$1) > 0`, name)
	if err != nil {
		report("cleanup: list prepared transactions: %v", err)
		return
	}
	gids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		report("cleanup: list prepared transactions: %v", err)
		return
	}
	for _, g := range gids {
		if _, err := conn.Exec(ctx, "ROLLBACK PREPARED '"+strings.ReplaceAll(g, "'", "''")+"'"); err != nil {
			report("cleanup: rollback prepared %s: %v", g, err)
		}
	}
	if _, err := conn.Exec(ctx, "SET lock_timeout = 10000; DROP SCHEMA "+name+" CASCADE"); err != nil {
		report("cleanup: drop schema %s: %v", name, err)
	}
}

// MySQL creates a fresh database on the test MySQL/MariaDB server and drops
// it, with every prepared XA transaction whose branch names it, when the test
// ends. The first call in a process also sweeps databases a killed run left
// behind. The server is chosen as Postgres chooses its own: EnvMySQL, else
// DefaultMySQLDSN if it is up, else a throwaway MariaDB.
func MySQL(t testing.TB) TestDB {
	t.Helper()
	myChosen.Do(func() { myTarget = chooseMySQL() })
	base := use(t, &myTarget, &myNoted)
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvMySQL, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := sql.Open("mysql", base)
	if err != nil {
		t.Fatalf("open %s: %v", redact(base), err)
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("MySQL/MariaDB at %s: %v", cfg.Addr, err)
	}
	sweepMySQLOnce.Do(func() {
		rows, err := db.QueryContext(ctx, "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE ?", namePrefix+"%")
		if err != nil {
			return
		}
		var names []string
		for rows.Next() {
			var n string
			if rows.Scan(&n) == nil && stale(n) {
				names = append(names, n)
			}
		}
		rows.Close()
		for _, n := range names {
			dropMySQL(t.Logf, base, n) // another run's leftovers: report, do not fail
		}
	})
	name := uniqueName(t)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	cfg.DBName = name
	t.Cleanup(func() { dropMySQL(t.Errorf, base, name) })
	return TestDB{Name: name, URL: cfg.FormatDSN(), Addr: myTarget.addr}
}

func dropMySQL(report func(format string, args ...any), base, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sql.Open("mysql", base)
	if err != nil {
		report("cleanup: %v", err)
		return
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one session, so the lock wait set below applies to the drop
	rows, err := db.QueryContext(ctx, "XA RECOVER")
	if err != nil {
		report("cleanup: XA RECOVER: %v", err)
		return
	}
	var xids []string
	for rows.Next() {
		var format, gl, bl int
		var data []byte
		if err := rows.Scan(&format, &gl, &bl, &data); err != nil {
			report("cleanup: XA RECOVER: %v", err)
			break
		}
		if gl+bl > len(data) || !strings.Contains(string(data[gl:gl+bl]), name) {
			continue
		}
		xids = append(xids, fmt.Sprintf("X'%x',X'%x',%d", data[:gl], data[gl:gl+bl], format))
	}
	rows.Close()
	for _, x := range xids {
		if _, err := db.ExecContext(ctx, "XA ROLLBACK "+x); err != nil {
			report("cleanup: XA ROLLBACK %s: %v", x, err)
		}
	}
	if _, err := db.ExecContext(ctx, "SET SESSION lock_wait_timeout = 10, innodb_lock_wait_timeout = 10"); err != nil {
		report("cleanup: %v", err)
	}
	if _, err := db.ExecContext(ctx, "DROP DATABASE "+name); err != nil {
		report("cleanup: drop database %s: %v", name, err)
	}
}

// redact hides a password in a URL for messages.
func redact(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return u.Redacted()
	}
	return s
}
