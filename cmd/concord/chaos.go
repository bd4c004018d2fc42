package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/concordtx/concord/internal/chaos"
)

func init() {
	register("chaos", "run the system as real processes under kill -9, failpoints and network faults, then check it", runChaos)
}

// Exit statuses of concord chaos.
const (
	chaosPass      = 0
	chaosViolation = 1
	chaosError     = 2
)

func runChaos(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("concord chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	binary := fs.String("binary", "", "concord `executable` to run as every process (default: this one)")
	duration := fs.Duration("duration", 60*time.Second, "how long to book and inject faults before healing and checking")
	seedFlag := fs.String("seed", "", "`seed` of the bookings and faults (default: random, printed to rerun)")
	clients := fs.Int("clients", 8, "concurrent booking clients")
	rate := fs.Float64("rate", 60, "bookings started per second, at most")
	faultEvery := fs.Duration("fault-every", 1500*time.Millisecond, "mean time between two faults")
	settle := fs.Duration("settle-timeout", 60*time.Second, "how long to wait, once healed, for every transaction to finish")
	dir := fs.String("dir", "", "`directory` for data and logs (default: a new temporary directory)")
	keep := fs.Bool("keep", false, "keep the data and logs of a passing run (a failing run always keeps them)")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: concord chaos [--duration 60s] [--seed N] [--binary PATH] [--json] [flags]")
		fmt.Fprintln(stderr, "Runs a coordinator and the flights, hotels and cars services as separate processes on")
		fmt.Fprintln(stderr, "loopback ports, books trips concurrently while killing processes (kill -9), arming")
		fmt.Fprintln(stderr, "failpoints and cutting, delaying, duplicating and resetting their traffic; then heals")
		fmt.Fprintln(stderr, "everything and checks every transaction and inventory through the public APIs.")
		fmt.Fprintln(stderr, "Exit status: 0 no violation, 1 violations, 2 error.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return chaosPass
		}
		return chaosError
	}
	failed := failer("concord chaos", asJSON, stdout, stderr)
	fail := func(format string, a ...any) int { return failed(chaosError, format, a...) }
	if fs.NArg() > 0 {
		return fail("unexpected argument %q", fs.Arg(0))
	}
	seed := rand.Uint64() % 1_000_000_000
	if *seedFlag != "" {
		s, err := strconv.ParseUint(*seedFlag, 10, 64)
		if err != nil {
			return fail("--seed %q is not an unsigned integer", *seedFlag)
		}
		seed = s
	}
	if *binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fail("find the running executable (give --binary): %v", err)
		}
		*binary = exe
	}
	runDir, made := *dir, false
	if runDir == "" {
		d, err := os.MkdirTemp("", "concord-chaos-")
		if err != nil {
			return fail("temporary directory: %v", err)
		}
		runDir, made = d, true
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, err := chaos.Run(ctx, chaos.Options{
		Binary: *binary, Dir: runDir, Seed: seed, Duration: *duration, Clients: *clients, Rate: *rate,
		FaultEvery: *faultEvery, SettleTimeout: *settle, Progress: stderr,
	})
	if err != nil {
		if made {
			// Removes the directory only if nothing was started in it.
			if os.Remove(runDir) != nil {
				fmt.Fprintf(stderr, "concord chaos: logs kept in %s\n", runDir)
			}
		}
		return fail("%v (seed %d)", err, seed)
	}
	rerun := fmt.Sprintf("concord chaos --seed %d --duration %v", seed, *duration)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			return fail("encode summary: %v", err)
		}
	} else {
		sum.WriteText(stdout, rerun)
	}
	if sum.Interrupted {
		return chaosError
	}
	if !sum.Pass {
		return chaosViolation
	}
	if made && !*keep {
		os.RemoveAll(runDir)
	}
	return chaosPass
}
