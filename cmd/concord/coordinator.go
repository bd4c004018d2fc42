package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/coordinator"
	"github.com/concordtx/concord/internal/failpoint"
	"github.com/concordtx/concord/wal"
)

func init() {
	register("coordinator", "run the transaction coordinator", func(args []string, stdout, stderr io.Writer) int {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return runCoordinator(ctx, args, stdout, stderr)
	})
}

// failpoints maps the driver's crash points to the failpoints that
// CONCORD_FAILPOINTS may arm (internal/failpoint), so that a coordinator
// process can be killed at them.
var failpoints = map[coordinator.CrashPoint]string{
	coordinator.AfterLogBegin:     failpoint.CoordinatorAfterBeginLog,
	coordinator.AfterSendPrepare:  failpoint.CoordinatorAfterPrepareSent,
	coordinator.BeforeLogDecision: failpoint.CoordinatorAfterVotes,
	coordinator.AfterLogCommit:    failpoint.CoordinatorAfterDecisionSync,
	coordinator.AfterSendCommit:   failpoint.CoordinatorAfterCommitSent,
}

// hitFailpoint is the coordinator's CrashHook in the binary: an armed
// failpoint kills the process there; disarmed it costs one atomic load.
func hitFailpoint(p coordinator.CrashPoint, _ concord.TxID) error {
	if name, ok := failpoints[p]; ok {
		failpoint.Hit(name)
	}
	return nil
}

// participantFlags collects repeated --participant name=URL flags.
type participantFlags map[string]string

func (p participantFlags) String() string {
	names := make([]string, 0, len(p))
	for n, u := range p {
		names = append(names, n+"="+u)
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

func (p participantFlags) Set(s string) error {
	name, u, ok := strings.Cut(s, "=")
	if !ok || name == "" || u == "" {
		return fmt.Errorf("%q: want name=URL, e.g. flights=http://127.0.0.1:7071", s)
	}
	if _, dup := p[name]; dup {
		return fmt.Errorf("participant %q given twice", name)
	}
	p[name] = u
	return nil
}

// runCoordinator serves until ctx ends (SIGINT or SIGTERM), then shuts down
// gracefully. Exit status 2 for bad flags, 1 when it cannot start.
func runCoordinator(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("concord coordinator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", coordinator.DefaultListen, "`address` to serve the HTTP API on")
	data := fs.String("data", "data/coordinator", "data `directory`; the log is in its wal/ subdirectory")
	advertise := fs.String("advertise", "", "`URL` participants use to reach this coordinator (default: http:// and --listen, https:// with TLS; with TLS it must be https://)")
	parts := participantFlags{}
	fs.Var(parts, "participant", "a participant as `name=URL`; repeat for each one")
	defTimeout := fs.Duration("default-timeout", coordinator.DefaultTimeout, "prepare deadline of a transaction that gives none")
	maxTimeout := fs.Duration("max-timeout", coordinator.DefaultMaxTimeout, "longest prepare deadline a client may ask for")
	segmentSize := fs.Int64("segment-size", wal.DefaultSegmentSize, "log segment size in `bytes`; compaction deletes whole segments, so smaller ones free space sooner")
	maxBranches := fs.Int("max-branches", coordinator.DefaultMaxBranches, "most participants in one transaction")
	logs := addLogFlags(fs)
	tlsf := addTLSFlags(fs, "the coordinator")
	tokens := fs.String("client-tokens", "", "`file` of client bearer tokens, lines of \"name token [operator]\" (needs TLS)")
	operators := fs.String("operators", "", "comma-separated `identities` (certificate or token names) that may see and act on every transaction")
	probeEvery := fs.Duration("probe-interval", 5*time.Second, "how often each participant's /healthz is probed, apart from traffic (backing off to a minute while it fails); 0 probes nothing")
	maxInFlight := fs.Int("max-in-flight", coordinator.DefaultMaxLive, "most transactions in flight; past it a submission is answered 503 with Retry-After")
	window := fs.Duration("idempotency-window", coordinator.DefaultIdempotencyWindow,
		"how long a finished transaction is remembered (its id answered as the first time, never run again); kept in remembered/ of --data")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: concord coordinator --listen ADDR --data DIR --participant NAME=URL [--participant NAME=URL ...]")
		fmt.Fprintln(stderr, "Runs the two-phase-commit coordinator until SIGINT or SIGTERM.")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	usageErr := usageError(fs, stderr)
	if len(parts) == 0 {
		return usageErr("no --participant given: name each participant, e.g. --participant flights=http://127.0.0.1:7071")
	}
	if *data == "" {
		return usageErr("--data is empty")
	}
	if *segmentSize < 4096 {
		return usageErr("--segment-size %d: want at least 4096 bytes", *segmentSize)
	}
	logger, err := logs.logger(stderr)
	if err != nil {
		return usageErr("%v", err)
	}
	say := logs.announcer(stdout, stderr)
	usageErr = say.usageError(fs)
	fail := func(format string, a ...any) int {
		say.error(fmt.Sprintf("concord coordinator: "+format, a...))
		return 1
	}
	opts := coordinator.Options{
		Dir:            filepath.Join(*data, "wal"),
		SegmentSize:    *segmentSize,
		Participants:   parts,
		Listen:         *listen,
		AdvertiseURL:   *advertise,
		DefaultTimeout: *defTimeout,
		MaxTimeout:     *maxTimeout,
		MaxBranches:    *maxBranches,
		CrashHook:      hitFailpoint,
		Logger:         logger,
		MaxLive:        *maxInFlight,
		ProbeInterval:  *probeEvery,
		RememberPath:   filepath.Join(*data, "remembered"),
		// Checked here too, as New takes 0 for the default.
		IdempotencyWindow: *window,
	}
	if *window <= 0 {
		return usageErr("--idempotency-window %v: want a positive duration, e.g. 24h", *window)
	}
	if err := coordinatorSecurity(&opts, tlsf, *tokens, *operators); err != nil {
		return usageErr("%v", err)
	}
	warnReadableSecret(stderr, "--tls-key", *tlsf.key)
	warnReadableSecret(stderr, "--client-tokens", *tokens)
	coordinatorGC.apply()
	c, err := coordinator.New(opts)
	if err != nil {
		if errors.Is(err, coordinator.ErrInvalidOptions) {
			return usageErr("%v", err)
		}
		return fail("%v", err)
	}
	if err := c.Start(nil); err != nil {
		c.Close()
		return fail("%v", err)
	}
	if opts.TLS == nil {
		warnPlainHTTP(say, "coordinator", c.URL())
	}
	st := c.Stats()
	say.info(fmt.Sprintf("coordinator serving on %s (log %s; participants %s; %d transactions recovered to finish; finished ones remembered for %v in %s)",
		c.URL(), opts.Dir, parts, st.Live, opts.IdempotencyWindow, opts.RememberPath),
		"url", c.URL(), "log", opts.Dir, "participants", map[string]string(parts), "recovered", st.Live,
		"idempotency_window", opts.IdempotencyWindow.String(), "remembered", opts.RememberPath)
	say.info(fmt.Sprintf("console at %s/ui/, metrics at %s/metrics", c.URL(), c.URL()), "console", c.URL()+"/ui/", "metrics", c.URL()+"/metrics")
	select {
	case <-ctx.Done():
	case <-c.Done(): // halted on its own: the log failed
	}
	if err := c.Halted(); err != nil {
		c.Close()
		return fail("stopped: %v", err)
	}
	say.info("coordinator shutting down: finishing requests in flight, closing the log")
	if err := c.Close(); err != nil {
		return fail("%v", err)
	}
	say.info("coordinator stopped")
	return 0
}
