package testdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// Throwaway, as the value of EnvPostgres or EnvMySQL, makes the tests use a
// throwaway server even when the one at the default address could serve.
const Throwaway = "throwaway"

// minPreparedTransactions is the max_prepared_transactions a PostgreSQL
// must have to serve the tests (what .ci/run used to set): the tests of
// several packages prepare transactions at once.
const minPreparedTransactions = 64

// mainInstalled is set by Main: only then is there someone to stop a
// throwaway server when the test binary ends.
var mainInstalled atomic.Bool

// Main runs a test binary's tests, then stops the throwaway servers they
// started. Every package whose tests call Postgres or MySQL has
//
//	func TestMain(m *testing.M) { testdb.Main(m) }
func Main(m *testing.M) {
	mainInstalled.Store(true)
	code := m.Run()
	stopServers()
	os.Exit(code)
}

// target is the server a kind of test database lives on, chosen once per
// test binary.
type target struct {
	base string  // URL or DSN of the server's test database
	addr string  // its host:port
	note string  // how it was chosen, for the first test's log
	skip string  // no server can be had: why (skipped, or failed under CI)
	err  error   // a throwaway server failed to start: the tests fail
	srv  *server // the throwaway server, if one was started
}

var (
	pgTarget, myTarget target
	pgChosen, myChosen sync.Once
	pgNoted, myNoted   sync.Once
	serversMu          sync.Mutex
	servers            []*server
	errNoMain          = errors.New("a throwaway server is needed, and only testdb.Main stops it: add func TestMain(m *testing.M) { testdb.Main(m) } to this package's tests")
	probeTimeout       = 5 * time.Second
)

// use returns tg's base URL for a test, or ends the test: it fails when the
// server failed to start, and when none can be had it skips, or fails
// under CI=true (where the servers must be available).
func use(t testing.TB, tg *target, noted *sync.Once) string {
	t.Helper()
	noted.Do(func() {
		if tg.note != "" {
			t.Log(tg.note)
		}
	})
	if tg.err != nil {
		t.Fatal(tg.err)
	}
	if tg.skip != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s; CI=true, so this test may not be skipped", tg.skip)
		}
		t.Skipf("skipping: %s (in CI this fails)", tg.skip)
	}
	return tg.base
}

// choosePostgres picks the PostgreSQL server: the one EnvPostgres names, or
// the default one if it serves (up, prepared transactions on), or else a
// throwaway cluster started from the installed server binaries.
func choosePostgres() target { return choosePostgresAt(DefaultPostgresURL) }

// choosePostgresAt is choosePostgres with the default server at def.
func choosePostgresAt(def string) target {
	env := os.Getenv(EnvPostgres)
	if env != "" && env != Throwaway {
		addr, err := postgresAddr(env)
		if err != nil {
			return target{err: fmt.Errorf("%s: %w", EnvPostgres, err)}
		}
		if why := postgresCannotServe(env); why != "" {
			return target{skip: fmt.Sprintf("PostgreSQL at %s (%s) %s; start it or change %s", redact(env), EnvPostgres, why, EnvPostgres)}
		}
		return target{base: env, addr: addr}
	}
	why := EnvPostgres + "=" + Throwaway
	if env == "" {
		why = postgresCannotServe(def)
		if why == "" {
			addr, _ := postgresAddr(def)
			return target{base: def, addr: addr}
		}
		why = "PostgreSQL at " + redact(def) + " " + why
	}
	if !mainInstalled.Load() {
		return target{err: errNoMain}
	}
	bin, err := postgresBinaries()
	if err != nil {
		return target{skip: fmt.Sprintf("%s, and no throwaway cluster can be started: %v", why, err)}
	}
	srv, base, err := startPostgres(bin)
	if err != nil {
		return target{err: fmt.Errorf("%s, and the throwaway cluster from %s did not start: %w", why, bin, err)}
	}
	addServer(srv)
	addr, _ := postgresAddr(base)
	return target{base: base, addr: addr, srv: srv, note: fmt.Sprintf("%s: using a throwaway cluster from %s at %s (data in %s)", why, bin, addr, srv.dir)}
}

// postgresCannotServe says why the PostgreSQL at url cannot serve the
// tests, or "" if it can.
func postgresCannotServe(url string) string {
	return postgresCannotServeWith(url, minPreparedTransactions)
}

// postgresCannotServeWith is postgresCannotServe needing min prepared
// transactions.
func postgresCannotServeWith(url string, min int) string {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Sprintf("is unreachable (%v)", err)
	}
	defer conn.Close(context.Background())
	var mpt int
	if err := conn.QueryRow(ctx, "SELECT current_setting('max_prepared_transactions')::int").Scan(&mpt); err != nil {
		return fmt.Sprintf("does not say its max_prepared_transactions (%v)", err)
	}
	if mpt < min {
		return fmt.Sprintf("has max_prepared_transactions = %d (the tests need %d)", mpt, min)
	}
	return ""
}

func postgresAddr(url string) (string, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), nil
}

// chooseMySQL picks the MySQL/MariaDB server as choosePostgres does.
func chooseMySQL() target { return chooseMySQLAt(DefaultMySQLDSN) }

// chooseMySQLAt is chooseMySQL with the default server at def.
func chooseMySQLAt(def string) target {
	env := os.Getenv(EnvMySQL)
	if env != "" && env != Throwaway {
		cfg, err := mysql.ParseDSN(env)
		if err != nil {
			return target{err: fmt.Errorf("%s: %w", EnvMySQL, err)}
		}
		if why := mysqlCannotServe(env); why != "" {
			return target{skip: fmt.Sprintf("MySQL/MariaDB at %s (%s) %s; start it or change %s", cfg.Addr, EnvMySQL, why, EnvMySQL)}
		}
		return target{base: env, addr: cfg.Addr}
	}
	why := EnvMySQL + "=" + Throwaway
	if env == "" {
		why = mysqlCannotServe(def)
		if why == "" {
			cfg, _ := mysql.ParseDSN(def)
			return target{base: def, addr: cfg.Addr}
		}
		why = "MariaDB at " + def + " " + why
	}
	if !mainInstalled.Load() {
		return target{err: errNoMain}
	}
	install, server, err := mariadbBinaries()
	if err != nil {
		return target{skip: fmt.Sprintf("%s, and no throwaway MariaDB can be started: %v", why, err)}
	}
	srv, base, err := startMariaDB(install, server)
	if err != nil {
		return target{err: fmt.Errorf("%s, and the throwaway MariaDB (%s) did not start: %w", why, server, err)}
	}
	addServer(srv)
	cfg, _ := mysql.ParseDSN(base)
	return target{base: base, addr: cfg.Addr, srv: srv, note: fmt.Sprintf("%s: using a throwaway MariaDB (%s) at %s (data in %s)", why, server, cfg.Addr, srv.dir)}
}

// mysqlCannotServe says why the MySQL/MariaDB at dsn cannot serve the
// tests, or "" if it can.
func mysqlCannotServe(dsn string) string {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return fmt.Sprintf("has a bad DSN (%v)", err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		return fmt.Sprintf("is unreachable (%v)", err)
	}
	return ""
}

// server is a throwaway database server process and its directory.
type server struct {
	dir    string
	log    string
	cmd    *exec.Cmd
	stop   os.Signal // the signal that ends it at once
	exited chan struct{}
}

func addServer(s *server) {
	serversMu.Lock()
	defer serversMu.Unlock()
	servers = append(servers, s)
}

// stopServers ends every throwaway server and removes its directory. The
// data is thrown away, so the servers are stopped without ceremony.
func stopServers() {
	serversMu.Lock()
	defer serversMu.Unlock()
	for _, s := range servers {
		s.kill()
	}
	servers = nil
}

// stopServer ends one throwaway server and removes its directory.
func stopServer(s *server) {
	serversMu.Lock()
	defer serversMu.Unlock()
	for i, o := range servers {
		if o == s {
			servers = append(servers[:i], servers[i+1:]...)
		}
	}
	s.kill()
}

func (s *server) kill() {
	if s.cmd.Process != nil {
		s.cmd.Process.Signal(s.stop)
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	}
	os.RemoveAll(s.dir)
}

// logTail is the end of the server's log, for error messages.
func (s *server) logTail() string {
	b, _ := os.ReadFile(s.log)
	const max = 2000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return strings.TrimSpace(string(b))
}

// postgresBinaries finds the directory of the newest installed PostgreSQL
// server binaries (initdb and postgres).
func postgresBinaries() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errors.New("no initdb and postgres in /usr/lib/postgresql/*/bin or on PATH")
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// mariadbBinaries finds mariadb-install-db and mariadbd (or their MySQL
// names).
func mariadbBinaries() (install, server string, err error) {
	find := func(names ...string) string {
		for _, n := range names {
			if p, err := exec.LookPath(n); err == nil {
				return p
			}
			for _, d := range []string{"/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"} {
				if p := filepath.Join(d, n); isExecutable(p) {
					return p
				}
			}
		}
		return ""
	}
	install = find("mariadb-install-db", "mysql_install_db")
	server = find("mariadbd", "mysqld")
	if install == "" || server == "" {
		return "", "", errors.New("no mariadb-install-db and mariadbd (or mysql_install_db and mysqld) on PATH or in /usr/sbin")
	}
	return install, server, nil
}

// freePort picks a loopback port nobody listens on now. Another process
// may take it before the server binds it; the caller retries then.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// cred is a user and group a server process runs as.
type cred struct{ uid, gid uint32 }

// unprivileged is the user a PostgreSQL server runs as when the tests run
// as root (initdb and postgres refuse root): postgres if it exists, else
// nobody. It is nil when the tests do not run as root.
func unprivileged() (*cred, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 == nil && err2 == nil {
			return &cred{uid: uint32(uid), gid: uint32(gid)}, nil
		}
	}
	return nil, errors.New("running as root, and there is neither a postgres nor a nobody user to run PostgreSQL as")
}

// run runs a setup command (initdb, mariadb-install-db) to completion.
func run(c *cred, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = procAttr(c)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v\n%s", filepath.Base(name), err, out)
	}
	return nil
}

// startProcess starts a server process logging to s.log and waits until
// ready reports nil. It gives up when the process exits (bindFailed then
// says whether another process took the port) or after a minute.
func (s *server) startProcess(c *cred, ready func(context.Context) error, name string, args ...string) error {
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	s.cmd = exec.Command(name, args...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = procAttr(c)
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.exited = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := ready(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("%s exited before it was ready: %s", filepath.Base(name), s.logTail())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			s.cmd.Process.Kill()
			<-s.exited
			return fmt.Errorf("%s not ready after a minute (%v): %s", filepath.Base(name), err, s.logTail())
		}
	}
}

// bindFailed reports whether a server's log says its port was taken.
func (s *server) bindFailed() bool {
	l := strings.ToLower(s.logTail())
	return strings.Contains(l, "address already in use") || strings.Contains(l, "could not bind") || strings.Contains(l, "can't start server: bind")
}

// startPostgres initdbs a cluster in a fresh temporary directory and starts
// it on a free loopback port, with prepared transactions on and fsync off
// (the data is thrown away). Its superuser is root, trusted, with a
// database test: DefaultPostgresURL at another port.
func startPostgres(bin string) (*server, string, error) {
	cred, err := unprivileged()
	if err != nil {
		return nil, "", err
	}
	sweepLeftovers(os.TempDir(), "concord-pg-", filepath.Join("data", "postmaster.pid"), time.Now())
	dir, err := os.MkdirTemp("", "concord-pg-")
	if err != nil {
		return nil, "", err
	}
	s := &server{dir: dir, log: filepath.Join(dir, "server.log"), stop: syscall.SIGQUIT}
	fail := func(err error) (*server, string, error) {
		if s.cmd != nil && s.exited != nil {
			s.kill()
		} else {
			os.RemoveAll(dir)
		}
		return nil, "", err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.uid), int(cred.gid)); err != nil {
			return fail(err)
		}
	}
	data := filepath.Join(dir, "data")
	if err := run(cred, filepath.Join(bin, "initdb"), "-D", data, "-U", "root", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"); err != nil {
		return fail(err)
	}
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return fail(err)
		}
		admin := fmt.Sprintf("postgres://root@127.0.0.1:%d/postgres?sslmode=disable", port)
		ready := func(ctx context.Context) error {
			conn, err := pgx.Connect(ctx, admin)
			if err != nil {
				return err
			}
			return conn.Close(ctx)
		}
		err = s.startProcess(cred, ready, filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port),
			"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+dir,
			"-c", "max_prepared_transactions=200", "-c", "max_connections=300",
			"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
		if err != nil {
			if attempt < 3 && s.bindFailed() {
				continue
			}
			return fail(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			return fail(err)
		}
		_, err = conn.Exec(ctx, "CREATE DATABASE test")
		conn.Close(ctx)
		if err != nil {
			return fail(fmt.Errorf("create database test: %w", err))
		}
		return s, fmt.Sprintf("postgres://root@127.0.0.1:%d/test?sslmode=disable", port), nil
	}
}

// startMariaDB installs a MariaDB data directory in a fresh temporary
// directory and starts it on a free loopback port, its socket in that
// directory. root has no password, as on the default server, and there is a
// database test: DefaultMySQLDSN at another port.
func startMariaDB(install, bin string) (*server, string, error) {
	sweepLeftovers(os.TempDir(), "concord-my-", "mysqld.pid", time.Now())
	dir, err := os.MkdirTemp("", "concord-my-")
	if err != nil {
		return nil, "", err
	}
	s := &server{dir: dir, log: filepath.Join(dir, "server.log"), stop: syscall.SIGKILL}
	fail := func(err error) (*server, string, error) {
		if s.cmd != nil && s.exited != nil {
			s.kill()
		} else {
			os.RemoveAll(dir)
		}
		return nil, "", err
	}
	data := filepath.Join(dir, "data")
	// --user=root: the tests may run as root, which mariadbd refuses unless
	// told; as another user it is ignored with a warning.
	if err := run(nil, install, "--no-defaults", "--datadir="+data, "--user=root",
		"--auth-root-authentication-method=normal", "--skip-test-db"); err != nil {
		return fail(err)
	}
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return fail(err)
		}
		admin := fmt.Sprintf("root@tcp(127.0.0.1:%d)/", port)
		ready := func(ctx context.Context) error {
			db, err := sql.Open("mysql", admin)
			if err != nil {
				return err
			}
			defer db.Close()
			return db.PingContext(ctx)
		}
		err = s.startProcess(nil, ready, bin, "--no-defaults", "--datadir="+data, "--user=root",
			"--port="+strconv.Itoa(port), "--bind-address=127.0.0.1", "--socket="+filepath.Join(dir, "mysqld.sock"),
			"--pid-file="+filepath.Join(dir, "mysqld.pid"), "--log-error="+s.log, "--skip-log-bin",
			"--innodb-buffer-pool-size=64M", "--innodb-log-file-size=16M", "--innodb-flush-log-at-trx-commit=0",
			"--max-connections=500")
		if err != nil {
			if attempt < 3 && s.bindFailed() {
				continue
			}
			return fail(err)
		}
		db, err := sql.Open("mysql", admin)
		if err != nil {
			return fail(err)
		}
		_, err = db.Exec("CREATE DATABASE IF NOT EXISTS test")
		db.Close()
		if err != nil {
			return fail(fmt.Errorf("create database test: %w", err))
		}
		return s, fmt.Sprintf("root@tcp(127.0.0.1:%d)/test", port), nil
	}
}

// leftoverAge is how old a throwaway server's directory must be before a
// later test binary may remove it (one is being set up for seconds only).
const leftoverAge = 10 * time.Minute

// sweepLeftovers removes, under parent, the directories named prefix* that
// a test binary killed before Main returned left behind: older than
// leftoverAge, and whose server (the pid in pidFile, relative to the
// directory) is not running. The server itself died with that binary
// (procAttr), but its directory stayed.
func sweepLeftovers(parent, prefix, pidFile string, now time.Time) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		fi, err := e.Info()
		if err != nil || now.Sub(fi.ModTime()) < leftoverAge || serverRunning(filepath.Join(dir, pidFile)) {
			continue
		}
		os.RemoveAll(dir)
	}
}

// serverRunning reports whether the pid in pidFile (its first line) names a
// live process.
func serverRunning(pidFile string) bool {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, syscall.EPERM)
}
