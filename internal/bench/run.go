package bench

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/concordtx/concord/wire"
)

// Run measures the floor, starts the system unless opts names a running
// one, runs every phase (each Concurrency for each Participants count) one
// after another, and returns the figures. Started processes are stopped
// before it returns, whatever happens.
func Run(ctx context.Context, opts Options) (*Result, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	res := &Result{LoadAverage: loadAverage(), AbortRatio: opts.AbortRatio}
	if opts.FloorSamples > 0 {
		fmt.Fprintf(opts.Progress, "measuring the floor (%d fsyncs, %d round trips)\n", opts.FloorSamples, opts.FloorSamples)
		f, err := measureFloor(ctx, opts.Dir, opts.FloorSamples)
		if err != nil {
			return nil, err
		}
		res.Floor = &f
	}
	c := &cluster{coordURL: opts.CoordinatorURL, services: opts.ParticipantURLs}
	if opts.CoordinatorURL == "" {
		fmt.Fprintf(opts.Progress, "starting the coordinator and %d services under %s\n", len(Services), opts.Dir)
		c, err = startCluster(ctx, opts)
		if err != nil {
			return nil, err
		}
		defer c.stop()
		res.Started = true
		res.ServiceProcs = max(0, opts.ServiceProcs)
	}
	hc := newClient(16)
	defer hc.CloseIdleConnections()
	first := readStats(ctx, hc, c)
	for _, parts := range opts.Participants {
		for _, conc := range opts.Concurrency {
			p := phase{concurrency: conc, participants: parts, duration: opts.Duration, count: opts.Count,
				abortRatio: opts.AbortRatio, skus: opts.SKUs, timeoutMS: opts.TimeoutMS, clientIDs: opts.ClientIDs}
			pr, err := runPhase(ctx, hc, c, p, res, opts)
			if err != nil {
				return res, err
			}
			res.Phases = append(res.Phases, pr)
			if err := c.exited(); err != nil {
				return res, err
			}
		}
	}
	last := readStats(ctx, hc, c)
	res.Runtime = map[string]ProcessRuntime{}
	for name, s := range first {
		if e, ok := last[name]; ok {
			res.Runtime[name] = ProcessRuntime{Start: s.Runtime, End: e.Runtime}
		}
	}
	return res, nil
}

// runPhase runs one phase and turns the tallies and the processes' counter
// deltas into its figures.
func runPhase(ctx context.Context, hc *http.Client, c *cluster, p phase, res *Result, opts Options) (PhaseResult, error) {
	floor := res.Floor
	index := len(res.Phases)
	var nextSample time.Duration
	what := fmt.Sprintf("%d clients, %d participant(s)", p.concurrency, p.participants)
	if p.count > 0 {
		fmt.Fprintf(opts.Progress, "phase: %s, %d transactions\n", what, p.count)
	} else {
		fmt.Fprintf(opts.Progress, "phase: %s, %v\n", what, p.duration)
	}
	before := readStats(ctx, hc, c)
	cpuBefore := cpuTimes(c)
	var lastN int64
	var lastT time.Duration
	progress := func(el time.Duration, t *tally) {
		n := t.committed.Load() + t.aborted.Load()
		rate := float64(n-lastN) / (el - lastT).Seconds()
		lastN, lastT = n, el
		slowest := time.Duration(t.maxNanos.Swap(0))
		fmt.Fprintf(opts.Progress, "  %5.1fs  committed %d  aborted %d  errors %d  (%.0f/s now, slowest %.1f ms)\n",
			el.Seconds(), t.committed.Load(), t.aborted.Load(), t.errors.Load(), rate, ms(slowest))
		if el >= nextSample {
			nextSample += opts.SampleEvery
			sm := RuntimeSample{Phase: index, Seconds: el.Seconds(), Processes: map[string]wire.RuntimeStats{}}
			for name, st := range readStats(ctx, hc, c) {
				sm.Processes[name] = st.Runtime
			}
			res.Samples = append(res.Samples, sm)
		}
	}
	profDone := make(chan struct{})
	pctx, stopProfile := context.WithCancel(ctx)
	go func() {
		defer close(profDone)
		if opts.ProfileDir != "" && p.count == 0 {
			label := fmt.Sprintf("c%d-p%d", p.concurrency, p.participants)
			profilePhase(pctx, c, opts.ProfileDir, label, p.duration, opts.Progress)
		}
	}()
	t, lats, elapsed, err := load(ctx, c.coordURL, p, opts.ProgressEvery, progress)
	stopProfile()
	<-profDone
	if err != nil {
		return PhaseResult{}, err
	}
	cpuAfter := cpuTimes(c)
	after := readStats(ctx, hc, c)
	secs := elapsed.Seconds()
	pr := PhaseResult{Concurrency: p.concurrency, Participants: p.participants, Seconds: secs, LoadAverage: loadAverage(),
		Committed: t.committed.Load(), Aborted: t.aborted.Load(), Errors: t.errors.Load(),
		Latency: summarize(lats)}
	if e := t.firstErr.Load(); e != nil {
		pr.FirstError = *e
	}
	pr.CommittedPerSec = float64(pr.Committed) / secs
	pr.AbortedPerSec = float64(pr.Aborted) / secs
	txs := float64(pr.Committed + pr.Aborted)
	per := func(v float64) float64 {
		if txs == 0 {
			return 0
		}
		return v / txs
	}
	pr.RequestsPerTx, pr.FsyncsPerTx = -1, Fsyncs{-1, -1, -1}
	if b, ok := before[coordinatorName]; ok {
		if a, ok := after[coordinatorName]; ok {
			pr.RequestsPerTx = per(float64(a.Requests - b.Requests))
			pr.FsyncsPerTx.Coordinator = per(float64(a.Log.Syncs - b.Log.Syncs))
		}
	}
	var partSyncs int64
	partsRead := 0
	for _, name := range Services {
		b, okb := before[name]
		a, oka := after[name]
		if okb && oka {
			partSyncs += a.Log.Syncs - b.Log.Syncs
			partsRead++
		}
	}
	if partsRead == len(Services) {
		pr.FsyncsPerTx.Participants = per(float64(partSyncs))
		if pr.FsyncsPerTx.Coordinator >= 0 {
			pr.FsyncsPerTx.Total = pr.FsyncsPerTx.Coordinator + pr.FsyncsPerTx.Participants
		}
	}
	if txs > 0 && len(cpuAfter) > 0 {
		pr.CPUPerTx = map[string]float64{}
		var total float64
		for name, a := range cpuAfter {
			if b, ok := cpuBefore[name]; ok {
				us := float64(a-b) / float64(time.Microsecond) / txs
				pr.CPUPerTx[name] = us
				total += us
			}
		}
		pr.CPUPerTx["total"] = total
	}
	if p.concurrency == 1 && floor != nil && pr.Latency.P50 > 0 {
		f := floor.Commit
		if p.participants == 1 {
			f = floor.OnePhase
		}
		pr.FloorRatio = pr.Latency.P50 / ms(f)
		if p.participants == 3 {
			pr.FloorRatioSharedDisk = pr.Latency.P50 / ms(floor.CommitSharedDisk)
		}
	}
	fmt.Fprintf(opts.Progress, "  done: %.0f committed/s, %.0f aborted/s, %d errors, p50 %.2f ms, p99 %.2f ms\n",
		pr.CommittedPerSec, pr.AbortedPerSec, pr.Errors, pr.Latency.P50, pr.Latency.P99)
	return pr, nil
}
