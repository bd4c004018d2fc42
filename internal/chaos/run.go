package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/concordtx/concord/internal/faultproxy"
)

// Run performs one chaos run: it starts the processes, drives bookings while
// injecting faults for opts.Duration, heals everything, waits for the system
// to settle and checks it. Violations are reported in the Summary (Pass is
// true only with none); the error is for a run that could not be carried out,
// such as a process that would not start. Every process is killed before Run
// returns, also when ctx is cancelled.
func Run(ctx context.Context, opts Options) (*Summary, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	c, err := newCluster(opts)
	if err != nil {
		return nil, err
	}
	defer c.close()
	fmt.Fprintf(opts.Progress, "chaos: seed %d; coordinator and %d services from %s; data and logs in %s\n",
		opts.Seed, len(c.services), opts.Binary, opts.Dir)
	if err := c.startAll(ctx); err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	nem := newNemesis(c, opts.Seed)
	defer writeEvents(filepath.Join(opts.Dir, "events.log"), nem.tally)
	wl := newWorkload(c.coordURL, opts.Seed, opts.Clients, opts.Rate)
	stop := make(chan struct{})
	clients := wl.run(stop)
	stopClients := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
	}
	// Processes go first, so requests in flight fail at once.
	defer func() { stopClients(); c.close(); clients.Wait() }()

	start := time.Now()
	end := start.Add(opts.Duration)
	faults := time.NewTimer(nem.nextDelay(opts.FaultEvery))
	defer faults.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	progress := time.NewTicker(opts.ProgressEvery)
	defer progress.Stop()
	interrupted := false
	var restartErr error // a process that would not come back: a finding, not a harness error
loop:
	for {
		select {
		case <-ctx.Done():
			interrupted = true
			break loop
		case e := <-c.exits:
			if err := nem.onExit(ctx, e); err != nil {
				restartErr = err
				break loop
			}
		case <-faults.C:
			if err := nem.act(ctx); err != nil {
				if ctx.Err() != nil {
					interrupted = true
					break loop
				}
				restartErr = err
				break loop
			}
			faults.Reset(nem.nextDelay(opts.FaultEvery))
		case now := <-tick.C:
			nem.expire(now)
			if now.After(end) {
				break loop
			}
		case now := <-progress.C:
			fmt.Fprintln(opts.Progress, progressLine(now.Sub(start), opts.Duration, wl.hist, nem.tally, c))
		}
	}
	stopClients()
	if restartErr != nil && ctx.Err() != nil {
		interrupted, restartErr = true, nil
	}
	s := &Summary{Seed: opts.Seed, DurationSeconds: time.Since(start).Seconds(), Dir: opts.Dir, Interrupted: interrupted}
	if interrupted {
		fmt.Fprintln(opts.Progress, "chaos: interrupted; stopping every process")
		fill(s, wl.hist, nem.tally, c)
		return s, nil
	}
	if restartErr == nil {
		fmt.Fprintln(opts.Progress, "chaos: faults over; healing the network and restarting every process disarmed")
		restartErr = heal(ctx, c, nem, clients)
	}
	if restartErr != nil && ctx.Err() != nil {
		fill(s, wl.hist, nem.tally, c)
		s.Interrupted = true
		return s, nil
	}
	if restartErr != nil {
		// A process that cannot restart on its own data is a failure of the
		// system under test: report it, check nothing more.
		fmt.Fprintf(opts.Progress, "chaos: %v\n", restartErr)
		fill(s, wl.hist, nem.tally, c)
		s.Violations = append(s.Violations, restartErr.Error())
		return s, nil
	}
	settled, err := c.settle(ctx, time.Now().Add(opts.SettleTimeout))
	s.SettleSeconds, s.Settled = settled.Seconds(), err == nil
	var settleErr string
	if err != nil {
		settleErr = fmt.Sprintf("did not settle within %v: %v", opts.SettleTimeout, err)
	}
	if err == nil {
		comp, cerr := c.awaitCompaction(ctx, time.Now().Add(15*time.Second))
		s.Compaction = comp
		if cerr != nil {
			s.Violations = append(s.Violations, fmt.Sprintf("coordinator log not compacted once settled: %v", cerr))
		}
	}
	fmt.Fprintf(opts.Progress, "chaos: settled in %.1fs; checking %d transactions through the public APIs\n", settled.Seconds(), len(wl.hist.snapshot()))
	v := check(c.observe(ctx, wl.hist.snapshot()))
	fill(s, wl.hist, nem.tally, c)
	if settleErr != "" {
		s.Violations = append(s.Violations, settleErr)
	}
	s.Violations = append(s.Violations, v.violations...)
	s.Forgotten, s.InexactStock = v.forgotten, v.inexactStock
	s.CoordinatorLog = segmentUsage(c.walDir)
	s.Pass = len(s.Violations) == 0
	return s, nil
}

// heal ends every fault: proxies healed, armed processes killed, every
// process running disarmed; then it waits for the clients' last requests.
func heal(ctx context.Context, c *cluster, nem *nemesis, clients interface{ Wait() }) error {
	c.healNetwork()
	clear(nem.heal)
	for _, p := range c.processes() {
		p.mu.Lock()
		armed := len(p.armed) > 0
		p.mu.Unlock()
		if armed && p.stop(syscall.SIGKILL, 0) {
			nem.tally.mu.Lock()
			nem.tally.kills[p.name]++
			nem.tally.mu.Unlock()
			nem.tally.event("kill -9 %s to disarm it", p.name)
		}
	}
	done := make(chan struct{})
	go func() { clients.Wait(); close(done) }()
	for {
		// Exits queued before the kills above are failpoints that fired.
		for drained := false; !drained; {
			select {
			case e := <-c.exits:
				if err := nem.onExit(ctx, e); err != nil {
					return err
				}
			default:
				drained = true
			}
		}
		for _, p := range c.processes() {
			if !p.running() {
				if err := nem.restart(ctx, p, nil); err != nil {
					return err
				}
			}
		}
		select {
		case <-done:
			return nil
		case e := <-c.exits:
			if err := nem.onExit(ctx, e); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// fill copies the counters into the summary.
func fill(s *Summary, h *history, t *tally, c *cluster) {
	s.Transactions, s.Committed, s.Aborted, s.Unanswered = h.counts()
	s.AbortedNo = h.votedNo()
	s.Resubmitted = h.resubmitted()
	t.mu.Lock()
	s.Kills, s.KillsTotal = copyMap(t.kills), sum(t.kills)
	s.GracefulStops, s.Restarts = t.gracefulStops, t.restarts
	s.FailpointsArmed, s.FailpointsFired, s.FiredTotal = copyMap(t.armed), copyMap(t.fired), sum(t.fired)
	s.NetworkFaults, s.Partitions = copyMap(t.episodes), t.episodes["partition"]
	for _, crash := range t.crashes {
		s.Violations = append(s.Violations, "process crash: "+crash)
	}
	t.mu.Unlock()
	for _, px := range c.proxies {
		st := px.Stats()
		s.Proxy.Requests += st.Requests
		s.Proxy.Forwarded += st.Forwarded
		s.Proxy.Dropped += st.Dropped
		s.Proxy.Delayed += st.Delayed
		s.Proxy.Duplicated += st.Duplicated
		s.Proxy.ResetsBefore += st.ResetsBefore
		s.Proxy.ResetsAfter += st.ResetsAfter
		s.Proxy.UpstreamErrors += st.UpstreamErrors
	}
}

func copyMap(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// progressLine is one line of progress for people.
func progressLine(elapsed, total time.Duration, h *history, t *tally, c *cluster) string {
	n, committed, aborted, unanswered := h.counts()
	var down []string
	for _, p := range c.processes() {
		if !p.running() {
			down = append(down, p.name)
		}
	}
	state := "all up"
	if len(down) > 0 {
		state = "down: " + strings.Join(down, ", ")
	}
	for _, name := range sortedKeys(c.proxies) {
		if f := c.proxies[name].Faults(); f != (faultproxy.Faults{}) {
			state += "; " + name + " " + f.String()
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return fmt.Sprintf("chaos %3.0fs/%.0fs  tx %d (%d committed, %d aborted, %d open)  kills %d  failpoints %d/%d fired  partitions %d  %s",
		elapsed.Seconds(), total.Seconds(), n, committed, aborted, unanswered,
		sum(t.kills), sum(t.fired), sum(t.armed), t.episodes["partition"], state)
}

func writeEvents(path string, t *tally) {
	t.mu.Lock()
	defer t.mu.Unlock()
	_ = os.WriteFile(path, []byte(strings.Join(t.events, "\n")+"\n"), 0o644)
}
