package sim

import (
	"flag"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	flagSeeds    = flag.Int("seeds", 2000, "how many seeds TestSimulation runs")
	flagFirst    = flag.Uint64("first", 1, "first seed TestSimulation runs")
	flagSeed     = flag.Int64("seed", -1, "replay this one seed and print its trace")
	flagDuration = flag.Duration("duration", 0, "run seeds for this long instead of -seeds (soak)")
	flagStore    = flag.String("store", "filestore", "participants' resource: filestore (participant/filestore) or sim (the simulator's own)")
)

// baseOptions are the options the flags select, for every seed.
func baseOptions(t *testing.T) Options {
	switch *flagStore {
	case "filestore":
		return Options{Store: FileStore}
	case "sim":
		return Options{Store: SimStore}
	}
	t.Fatalf("-store %q: want filestore or sim", *flagStore)
	return Options{}
}

// batch is the sum of many runs.
type batch struct {
	seeds, transactions, committed, unfaulted, crashes, partitions int
	messages, dropped, duplicated                                  int
	failed                                                         []Result // runs with a violation, by seed
}

func (b *batch) add(r Result) {
	b.seeds++
	b.transactions += r.Transactions
	b.committed += r.Committed
	b.unfaulted += r.Unfaulted
	b.crashes += r.Crashes
	b.partitions += r.Partitions
	b.messages += r.Messages
	b.dropped += r.Dropped
	b.duplicated += r.Duplicated
	if len(r.Violations) > 0 {
		b.failed = append(b.failed, r)
	}
}

func (b *batch) String() string {
	return fmt.Sprintf("%d seeds, %d transactions (%d committed, %d untouched by faults), %d crashes, %d partitions, %d messages, %d dropped, %d duplicated, %d violations",
		b.seeds, b.transactions, b.committed, b.unfaulted, b.crashes, b.partitions, b.messages, b.dropped, b.duplicated, len(b.failed))
}

// runSeeds runs seeds first, first+1, ... on every CPU (each run is one
// goroutine) until n have run or, with a positive duration, until it is
// spent. opts gives everything but the seed. progress, if set, is called
// now and then with the batch so far.
func runSeeds(t *testing.T, opts Options, first uint64, n int, duration time.Duration, progress func(*batch)) *batch {
	t.Helper()
	var (
		mu     sync.Mutex
		b      batch
		next   = first
		start  = time.Now()
		report = start
	)
	take := func() (uint64, bool) {
		mu.Lock()
		defer mu.Unlock()
		if duration > 0 {
			if time.Since(start) >= duration {
				return 0, false
			}
		} else if next >= first+uint64(n) {
			return 0, false
		}
		next++
		return next - 1, true
	}
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				seed, ok := take()
				if !ok {
					return
				}
				o := opts
				o.Seed = seed
				r, err := Run(o)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				b.add(r)
				if progress != nil && time.Since(report) > 10*time.Second {
					report = time.Now()
					progress(&b)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.SortFunc(b.failed, func(x, y Result) int { return int(x.Seed) - int(y.Seed) })
	return &b
}

// replayCommand is the command that replays one seed with its trace.
func replayCommand(seed uint64, opts Options) string {
	cmd := fmt.Sprintf("go test ./internal/sim -run 'TestSimulation$' -seed %d", seed)
	if opts.Store != FileStore {
		cmd += " -store " + opts.Store.String()
	}
	return cmd
}

// traceTail reruns seed with a trace and returns its last lines, up to and
// including the violation.
func traceTail(t *testing.T, opts Options, seed uint64, lines int) string {
	opts.Seed, opts.Trace = seed, true
	r, err := Run(opts)
	if err != nil {
		return err.Error()
	}
	tr := r.Trace
	if len(tr) > lines {
		tr = tr[len(tr)-lines:]
	}
	return strings.Join(tr, "\n")
}

// TestSimulation runs -seeds seeds (or seeds for -duration) with faults
// drawn from each seed, and fails on any violated invariant, printing the
// command that replays the first failing seed and the trace that led to
// its violation. With -seed it replays one seed and prints its trace.
func TestSimulation(t *testing.T) {
	if *flagSeed >= 0 {
		opts := baseOptions(t)
		opts.Seed, opts.Trace = uint64(*flagSeed), true
		r, err := Run(opts)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println(strings.Join(r.Trace, "\n"))
		fmt.Printf("seed %d: faults %+v\n", r.Seed, r.Faults)
		fmt.Printf("seed %d: %d transactions (%d committed), %d crashes, %d partitions, %d messages, %d dropped, %d duplicated, %d events, %s simulated\n",
			r.Seed, r.Transactions, r.Committed, r.Crashes, r.Partitions, r.Messages, r.Dropped, r.Duplicated, r.Events, r.SimTime)
		for _, v := range r.Violations {
			t.Errorf("seed %d: %s", r.Seed, v)
		}
		return
	}
	start := time.Now()
	opts := baseOptions(t)
	b := runSeeds(t, opts, *flagFirst, *flagSeeds, *flagDuration, func(b *batch) {
		fmt.Printf("sim: ... %s after %s\n", b, time.Since(start).Round(time.Second))
	})
	fmt.Printf("sim: %s in %s\n", b, time.Since(start).Round(time.Millisecond))
	for i, r := range b.failed {
		if i == 5 {
			t.Errorf("... and %d more failing seeds", len(b.failed)-i)
			break
		}
		t.Errorf("seed %d: %s\nreplay: %s", r.Seed, r.Violations[0], replayCommand(r.Seed, opts))
	}
	if len(b.failed) > 0 {
		seed := b.failed[0].Seed
		t.Logf("trace of seed %d up to its violation:\n%s", seed, traceTail(t, opts, seed, 80))
	}
	if b.seeds < *flagSeeds && *flagDuration == 0 {
		t.Errorf("ran %d seeds, want %d", b.seeds, *flagSeeds)
	}
}
