package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/security"
	"github.com/concordtx/concord/travel"
	"github.com/go-sql-driver/mysql"
)

func init() {
	register("participant", "run a travel service (flights, hotels or cars) as a participant", func(args []string, stdout, stderr io.Writer) int {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return runParticipant(ctx, args, stdout, stderr)
	})
}

// defaultServicePorts are the loopback ports the travel services listen on
// unless told otherwise.
var defaultServicePorts = map[string]string{travel.Flights: "7071", travel.Hotels: "7072", travel.Cars: "7073"}

// runParticipant serves one travel service until ctx ends (SIGINT or
// SIGTERM), then shuts down gracefully. Exit status 2 for bad flags, 1 when
// it cannot start or stops on an error.
func runParticipant(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("concord participant", flag.ContinueOnError)
	fs.SetOutput(stderr)
	service := fs.String("service", "", "the service to run: "+strings.Join(travel.ServiceNames(), ", "))
	listen := fs.String("listen", "", "`address` to serve on (default 127.0.0.1:7071, 7072, 7073 for flights, hotels, cars)")
	data := fs.String("data", "", "data `directory` of the file store (default data/SERVICE)")
	coord := fs.String("coordinator", "http://127.0.0.1:7070", "coordinator base `URL`, asked about transactions in doubt after a restart")
	inventory := fs.String("inventory", "", "stock as `SKU=CAPACITY,...`, e.g. FL100=120,FL200=40 (default: the service's own; a store keeps the stock it was created with)")
	store := fs.String("store", "file", "where the inventory lives: file, memory (lost on exit), or a database URL ("+strings.Join(travel.StoreKinds()[2:], ", ")+")")
	pwFile := fs.String("store-password-file", "", "`file` holding the database password of a --store URL (first line); the "+StorePasswordEnvVar+" environment variable works too. Either keeps it off the command line, which other users see in ps")
	logs := addLogFlags(fs)
	tlsf := addTLSFlags(fs, "the service")
	coordID := fs.String("coordinator-identity", "coordinator", "with TLS, the certificate `identity` (CN) whose prepare, commit and abort are accepted")
	inDoubt := fs.Duration("in-doubt-after", participant.DefaultOptions.InDoubtAfter, "how long a prepared reservation waits for the decision before the coordinator is asked")
	maxLife := fs.Duration("max-lifetime", participant.DefaultRetention.MaxLifetime, "the coordinator's maximum transaction timeout (its --max-timeout): how long an abort that came before its prepare is remembered, and the lifetime of a prepare without a deadline")
	skew := fs.Duration("clock-skew", participant.DefaultRetention.ClockSkew, "allowance for clock differences: a decision is remembered until its deadline plus this")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: concord participant --service flights|hotels|cars [--listen ADDR] [--data DIR] [--coordinator URL] [--inventory SKU=N,...] [--store file|memory|URL]")
		fmt.Fprintln(stderr, "Runs one travel service as a Concord participant until SIGINT or SIGTERM.")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	usageErr := usageError(fs, stderr)
	port, ok := defaultServicePorts[*service]
	if !ok {
		if *service == "" {
			return usageErr("--service is required: one of %s", strings.Join(travel.ServiceNames(), ", "))
		}
		return usageErr("--service %q: want one of %s", *service, strings.Join(travel.ServiceNames(), ", "))
	}
	if *listen == "" {
		*listen = "127.0.0.1:" + port
	}
	if *data == "" {
		*data = filepath.Join("data", *service)
	}
	coordURL, err := travelURL(*coord)
	if err != nil {
		return usageErr("--coordinator: %v", err)
	}
	if *inDoubt <= 0 {
		return usageErr("--in-doubt-after %v: want a positive duration", *inDoubt)
	}
	if *maxLife <= 0 || *skew <= 0 {
		return usageErr("--max-lifetime %v and --clock-skew %v: want positive durations", *maxLife, *skew)
	}
	base, err := logs.logger(stderr)
	if err != nil {
		return usageErr("%v", err)
	}
	say := logs.announcer(stdout, stderr)
	usageErr = say.usageError(fs)
	sec := participant.Options{Coordinator: coordURL}
	srvTLS, err := participantSecurity(&sec, tlsf, *coordID)
	if err != nil {
		return usageErr("%v", err)
	}
	cfg := travel.StoreConfig{Service: *service, URL: *store, Dir: *data,
		Remember: participant.Retention{MaxLifetime: *maxLife, ClockSkew: *skew}}
	if *store == "file" {
		cfg.URL = ""
	}
	warnReadableSecret(stderr, "--tls-key", *tlsf.key)
	warnReadableSecret(stderr, "--store-password-file", *pwFile)
	if cfg.URL, err = storeURLWithPassword(cfg.URL, *pwFile, os.Getenv(StorePasswordEnvVar)); err != nil {
		return usageErr("%v", err)
	}
	if *inventory != "" {
		if cfg.Stock, err = travel.ParseInventory(*inventory); err != nil {
			return usageErr("--inventory: %v", err)
		}
	}
	fail := func(format string, a ...any) int {
		say.error(fmt.Sprintf("concord participant: %s: "+format, append([]any{*service}, a...)...))
		return 1
	}

	if say.json && strings.HasPrefix(cfg.URL, "mysql:") {
		// The MySQL driver logs on its own (stderr, text) unless told.
		mysql.SetLogger(slog.NewLogLogger(base.With("service", *service, "driver", "mysql").Handler(), slog.LevelWarn))
	}
	participantGC.apply()
	st, err := travel.OpenStore(ctx, cfg)
	if err != nil {
		if errors.Is(err, travel.ErrUnknownStore) || errors.Is(err, travel.ErrBadOptions) {
			return usageErr("--store: %v", err)
		}
		return fail("%v", err)
	}
	st = withFailpoints(st)
	logger := base.With("service", *service)
	svc, err := travel.New(travel.Options{Name: *service, Store: st, Server: participant.Options{
		Coordinator: coordURL, Logger: logger, InDoubtAfter: *inDoubt,
		HTTPClient: sec.HTTPClient, CoordinatorIdentity: sec.CoordinatorIdentity, Retention: cfg.Remember,
	}})
	if err != nil {
		st.Close()
		return fail("%v", err)
	}
	defer svc.Close()
	if err := svc.Start(ctx); err != nil {
		return fail("%v", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fail("listen on %s: %v", *listen, err)
	}
	// Only the coordinator and operators' tools call a participant: a
	// bound on connections keeps strangers' from exhausting descriptors,
	// and their failed handshakes are logged a few a second at most.
	ln = security.LimitListener(ln, security.ConnLimits{Max: participantMaxConns})
	scheme := "http"
	if srvTLS != nil {
		ln, scheme = tls.NewListener(ln, srvTLS), "https"
	} else {
		warnPlainHTTP(say, *service, ln.Addr().String())
	}
	var errLog security.LogLimiter
	hs := &http.Server{Handler: svc.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10, ErrorLog: log.New(errLog.Writer(logger), "", 0)}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()

	items, _ := st.Items(ctx)
	where := "file store in " + *data
	switch cfg.URL {
	case "":
	case "memory":
		where = "memory store: nothing survives this process"
	default:
		where = redactStoreURL(cfg.URL) + " store"
	}
	inDoubtNow := svc.Server().Status().InDoubt
	say.info(fmt.Sprintf("%s serving on %s://%s (%s; %d SKUs; %d reservations in doubt; coordinator %s)",
		*service, scheme, ln.Addr(), where, len(items), inDoubtNow, coordURL),
		"service", *service, "url", fmt.Sprintf("%s://%s", scheme, ln.Addr()), "store", where, "skus", len(items), "in_doubt", inDoubtNow, "coordinator", coordURL)

	select {
	case <-ctx.Done():
	case err := <-served:
		svc.Close()
		return fail("serve: %v", err)
	}
	say.info(*service+" shutting down: finishing requests in flight, closing the store", "service", *service)
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	herr := hs.Shutdown(sctx)
	if err := errors.Join(herr, svc.Close()); err != nil {
		return fail("shut down: %v", err)
	}
	say.info(*service+" stopped", "service", *service)
	return 0
}

// redactStoreURL shows a database URL's scheme and host only.
func redactStoreURL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return "?"
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = rest[i+1:]
	}
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	return scheme + "://" + rest
}

// participantMaxConns bounds the connections a participant keeps open.
const participantMaxConns = 4096

// StorePasswordEnvVar names the environment variable that may hold the
// database password of a participant's --store URL.
const StorePasswordEnvVar = "CONCORD_STORE_PASSWORD"

// storeURLWithPassword puts the password read from pwFile (its first line)
// or else env into the database URL raw; with neither, raw is returned
// unchanged. Errors never show the password.
func storeURLWithPassword(raw, pwFile, env string) (string, error) {
	pw := env
	if pwFile != "" {
		b, err := os.ReadFile(pwFile)
		if err != nil {
			return "", fmt.Errorf("--store-password-file: %v", err)
		}
		pw, _, _ = strings.Cut(string(b), "\n")
		pw = strings.TrimRight(pw, "\r")
		if pw == "" {
			return "", fmt.Errorf("--store-password-file %s: the first line is empty", pwFile)
		}
	}
	if pw == "" {
		return raw, nil
	}
	if !strings.Contains(raw, "://") {
		return "", fmt.Errorf("a store password is given (--store-password-file or %s) but --store is not a database URL", StorePasswordEnvVar)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("--store %s: not a valid URL", redactStoreURL(raw))
	}
	if _, set := u.User.Password(); set {
		return "", fmt.Errorf("--store %s: the URL holds a password too; give it in one place only", redactStoreURL(raw))
	}
	u.User = url.UserPassword(u.User.Username(), pw)
	return u.String(), nil
}
