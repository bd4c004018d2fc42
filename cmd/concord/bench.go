package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/concordtx/concord/internal/bench"
)

func init() {
	register("bench", "measure throughput and latency (starts its own system unless given addresses)", func(args []string, stdout, stderr io.Writer) int {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return runBench(ctx, args, stdout, stderr)
	})
}

// intList is a comma-separated list of integers flag.
type intList []int

func (l *intList) String() string {
	parts := make([]string, len(*l))
	for i, v := range *l {
		parts[i] = strconv.Itoa(v)
	}
	return strings.Join(parts, ",")
}

func (l *intList) Set(s string) error {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("%q is not a whole number", f)
		}
		out = append(out, v)
	}
	*l = out
	return nil
}

// runBench runs the bench and prints a table (or, with --json, one JSON
// object). Exit status 2 for bad flags, 1 when the run fails or any
// transaction got an error.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("concord bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	coord := fs.String("coordinator", "", "base `URL` of a running coordinator (default: start one and three services)")
	parts := participantFlags{}
	fs.Var(parts, "participant", "a running service as `name=URL`, read for its counters; repeat for each one")
	conc := intList{bench.DefaultConcurrency}
	fs.Var(&conc, "concurrency", "concurrent `clients`; a comma-separated list runs one phase each")
	nparts := intList{3}
	fs.Var(&nparts, "participants", "participants per transaction, 1 to 3; a `list` runs one phase each")
	duration := fs.Duration("duration", bench.DefaultDuration, "length of each phase")
	count := fs.Int("count", 0, "transactions per phase (instead of --duration)")
	abortRatio := fs.Float64("abort-ratio", 0, "share of transactions that ask for an unknown SKU and abort, 0 to 1")
	clientIDs := fs.Bool("client-ids", false, "give each transaction an id of the client's, as the Go client does (the coordinator then keeps it for its idempotency window)")
	skus := fs.Int("skus", bench.DefaultSKUs, "SKUs per started service, each with 1,000,000 units")
	jsonOut := fs.Bool("json", false, "print one JSON object instead of the table")
	dir := fs.String("dir", "", "`directory` for the started processes' data and logs (default: a temporary one, removed after)")
	binary := fs.String("binary", "", "concord `executable` to start (default: this one)")
	floor := fs.Int("floor-samples", bench.DefaultFloorSamples, "fsyncs and round trips timed for the floor; 0 skips it")
	pprofDir := fs.String("pprof", "", "`directory` for CPU profiles of the started processes and the bench, taken mid-phase")
	sampleEvery := fs.Duration("sample-every", bench.DefaultSampleEvery, "how often the processes' heap and goroutines are recorded during a phase")
	timeoutMS := fs.Int64("timeout-ms", 0, "each transaction's prepare timeout in ms (default: the coordinator's)")
	serviceProcs := fs.Int("service-procs", bench.DefaultServiceProcs, "GOMAXPROCS of each started service; 0 leaves Go's default (one per core)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: concord bench [--concurrency N[,N...]] [--participants 1..3[,...]] [--duration D | --count N] [--abort-ratio R] [--json]")
		fmt.Fprintln(stderr, "       concord bench --coordinator URL [--participant NAME=URL ...] ...")
		fmt.Fprintln(stderr, "Drives Concord with concurrent clients and reports throughput, latency, requests and fsyncs per transaction.")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	fail := failer("concord bench", jsonOut, stdout, stderr)
	usageErr := func(format string, a ...any) int { return fail(2, format, a...) }
	opts := bench.Options{
		CoordinatorURL: *coord, ParticipantURLs: parts, Binary: *binary, Dir: *dir,
		Concurrency: conc, Participants: nparts, Duration: *duration, Count: *count,
		AbortRatio: *abortRatio, ClientIDs: *clientIDs, SKUs: *skus, TimeoutMS: *timeoutMS, FloorSamples: *floor,
		ProfileDir: *pprofDir, SampleEvery: *sampleEvery, Progress: stderr,
	}
	if *floor == 0 {
		opts.FloorSamples = -1
	}
	opts.ServiceProcs = *serviceProcs
	switch {
	case *serviceProcs < 0:
		return usageErr("--service-procs %d: want 0 (Go's default) or more", *serviceProcs)
	case *serviceProcs == 0:
		opts.ServiceProcs = -1
	}
	if *coord == "" && opts.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fail(1, "find this executable: %v", err)
		}
		opts.Binary = exe
	}
	if opts.Dir == "" {
		tmp, err := os.MkdirTemp("", "concord-bench-")
		if err != nil {
			return fail(1, "%v", err)
		}
		defer os.RemoveAll(tmp)
		opts.Dir = tmp
	}
	start := time.Now()
	res, err := bench.Run(ctx, opts)
	if err != nil {
		if errors.Is(err, bench.ErrBadOptions) {
			return usageErr("%v", err)
		}
		return fail(1, "%v", err)
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
	} else {
		fmt.Fprintln(stdout)
		res.WriteTable(stdout)
		fmt.Fprintf(stdout, "run took %v\n", time.Since(start).Round(time.Millisecond))
	}
	if !res.OK() {
		fmt.Fprintln(stderr, "concord bench: some transactions failed (errors column)")
		return 1
	}
	return 0
}
