package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/concordtx/concord/participant"
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
	logs := addLogFlags(fs)
	tlsf := addTLSFlags(fs, "the service")
	coordID := fs.String("coordinator-identity", "coordinator", "with TLS, the certificate `identity` (CN) whose prepare, commit and abort are accepted")
	inDoubt := fs.Duration("in-doubt-after", participant.DefaultOptions.InDoubtAfter, "how long a prepared reservation waits for the decision before the coordinator is asked")
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
	cfg := travel.StoreConfig{Service: *service, URL: *store, Dir: *data}
	if *store == "file" {
		cfg.URL = ""
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
		HTTPClient: sec.HTTPClient, CoordinatorIdentity: sec.CoordinatorIdentity,
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
	scheme := "http"
	if srvTLS != nil {
		ln, scheme = tls.NewListener(ln, srvTLS), "https"
	} else {
		warnPlainHTTP(say, *service, ln.Addr().String())
	}
	hs := &http.Server{Handler: svc.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug)} // as the coordinator's: a stranger's failed handshake is no news
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
