package sim

import (
	"flag"
	"fmt"
	"testing"
	"time"
)

var (
	flagSeeds    = flag.Int("seeds", 2000, "number of seeds TestSimulation runs")
	flagSeed     = flag.Int64("seed", -1, "replay this one seed, with its trace")
	flagDuration = flag.Duration("duration", 0, "run seeds for this long instead of -seeds (soak)")
	flagFirst    = flag.Uint64("first", 1, "first seed of the batch")
)

func TestSimulation(t *testing.T) {
	if *flagSeed >= 0 {
		r, err := Run(Options{Seed: uint64(*flagSeed), Trace: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range r.Trace {
			fmt.Println(l)
		}
		fmt.Printf("seed %d: %+v\n", r.Seed, r.Faults)
		if len(r.Violations) > 0 {
			t.Fatalf("seed %d: %v", r.Seed, r.Violations[0])
		}
		return
	}
	start := time.Now()
	var tot Result
	n := 0
	for seed := *flagFirst; ; seed++ {
		if *flagDuration > 0 {
			if time.Since(start) > *flagDuration {
				break
			}
		} else if n >= *flagSeeds {
			break
		}
		n++
		r, err := Run(Options{Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		tot.Transactions += r.Transactions
		tot.Committed += r.Committed
		tot.Crashes += r.Crashes
		tot.Dropped += r.Dropped
		tot.Duplicated += r.Duplicated
		tot.Messages += r.Messages
		if len(r.Violations) > 0 {
			t.Errorf("seed %d: %v\nreplay: go test ./internal/sim -run TestSimulation -seed %d", seed, r.Violations[0], seed)
			tot.Violations = append(tot.Violations, r.Violations[0])
		}
	}
	fmt.Printf("sim: %d seeds, %d transactions (%d committed), %d crashes, %d messages, %d dropped, %d duplicated, %d violations in %s\n",
		n, tot.Transactions, tot.Committed, tot.Crashes, tot.Messages, tot.Dropped, tot.Duplicated, len(tot.Violations), time.Since(start).Round(time.Millisecond))
}
