package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/concordtx/concord/internal/failpoint"
	"github.com/concordtx/concord/internal/faultproxy"
)

// tally counts what the nemesis did; it is read by progress lines while the
// run goes on.
type tally struct {
	mu            sync.Mutex
	kills         map[string]int // SIGKILLs sent by the runner, per process
	gracefulStops int
	restarts      int
	armed         map[string]int // failpoints armed, per name
	fired         map[string]int // failpoints that killed their process, per name
	episodes      map[string]int // network fault episodes, per kind
	crashes       []string       // unexpected exits not caused by a failpoint
	events        []string       // every action, for the run's event log
}

func newTally() *tally {
	return &tally{kills: map[string]int{}, armed: map[string]int{}, fired: map[string]int{}, episodes: map[string]int{}}
}

func (t *tally) event(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.events = append(t.events, time.Now().UTC().Format("15:04:05.000")+" "+fmt.Sprintf(format, args...))
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// nemesis injects faults into a cluster: kills, failpoints and network
// faults, drawn from one seeded random source.
type nemesis struct {
	c     *cluster
	rng   *rand.Rand
	seed  uint64
	tally *tally
	heal  map[string]time.Time // proxy name -> when its fault episode ends
}

func newNemesis(c *cluster, seed uint64) *nemesis {
	return &nemesis{c: c, rng: rand.New(rand.NewPCG(seed, 7)), seed: seed, tally: newTally(), heal: map[string]time.Time{}}
}

// nextDelay is the wait before the next fault: uniform around the mean.
func (n *nemesis) nextDelay(mean time.Duration) time.Duration {
	return mean/2 + time.Duration(n.rng.Int64N(int64(mean)+1))
}

// act injects one fault.
func (n *nemesis) act(ctx context.Context) error {
	switch r := n.rng.IntN(100); {
	case r < 22:
		return n.crash(ctx, n.c.coord)
	case r < 45:
		return n.crash(ctx, n.c.services[n.rng.IntN(len(n.c.services))])
	case r < 65:
		return n.armFailpoint(ctx)
	default:
		n.networkFault()
		return nil
	}
}

// crash kills p with SIGKILL and restarts it after a short outage.
func (n *nemesis) crash(ctx context.Context, p *process) error {
	if p.stop(syscall.SIGKILL, 0) {
		n.tally.mu.Lock()
		n.tally.kills[p.name]++
		n.tally.mu.Unlock()
		n.tally.event("kill -9 %s", p.name)
	}
	if !sleep(ctx.Done(), time.Duration(n.rng.Int64N(int64(300*time.Millisecond)))) {
		return ctx.Err()
	}
	return n.restart(ctx, p, nil)
}

func (n *nemesis) restart(ctx context.Context, p *process, armed []failpoint.Term) error {
	n.tally.mu.Lock()
	n.tally.restarts++
	n.tally.mu.Unlock()
	if err := n.c.launch(ctx, p, armed, n.rng.Uint64()); err != nil {
		return fmt.Errorf("%s did not come back on its data directory: %w (log %s)", p.name, err, p.logPath)
	}
	return nil
}

// armFailpoint stops a process (SIGKILL or a graceful SIGTERM) and restarts
// it with one failpoint armed; the process dies when it reaches it.
func (n *nemesis) armFailpoint(ctx context.Context) error {
	points := failpoint.Points()
	pt := points[n.rng.IntN(len(points))]
	p := n.c.coord
	if strings.HasPrefix(pt.Name, "participant.") {
		p = n.c.services[n.rng.IntN(len(n.c.services))]
	}
	term := failpoint.Term{Name: pt.Name, Nth: 1 + uint64(n.rng.IntN(8))}
	if n.rng.IntN(3) == 0 {
		term = failpoint.Term{Name: pt.Name, Percent: float64(2 + n.rng.IntN(9))}
	}
	if n.rng.IntN(2) == 0 {
		if p.stop(syscall.SIGKILL, 0) {
			n.tally.mu.Lock()
			n.tally.kills[p.name]++
			n.tally.mu.Unlock()
			n.tally.event("kill -9 %s to arm %s", p.name, term)
		}
	} else if p.stop(syscall.SIGTERM, 10*time.Second) {
		n.tally.mu.Lock()
		n.tally.gracefulStops++
		n.tally.mu.Unlock()
		n.tally.event("SIGTERM %s to arm %s", p.name, term)
	}
	n.tally.mu.Lock()
	n.tally.armed[term.Name]++
	n.tally.mu.Unlock()
	return n.restart(ctx, p, []failpoint.Term{term})
}

// networkFault starts a fault episode on one proxy that has none.
func (n *nemesis) networkFault() {
	name := n.c.links[n.rng.IntN(len(n.c.links))]
	if _, busy := n.heal[name]; busy {
		return
	}
	var f faultproxy.Faults
	var kind string
	length := time.Duration(500+n.rng.IntN(2500)) * time.Millisecond
	switch n.rng.IntN(4) {
	case 0:
		kind, f = "partition", faultproxy.Faults{Partitioned: true}
	case 1:
		lo := time.Duration(n.rng.IntN(50)) * time.Millisecond
		kind, f = "delay", faultproxy.Faults{DelayMin: lo, DelayMax: lo + time.Duration(1+n.rng.IntN(150))*time.Millisecond}
	case 2:
		kind, f = "duplicate", faultproxy.Faults{Duplicate: 0.2 + 0.6*n.rng.Float64(), ReplayDelayMax: time.Duration(n.rng.IntN(500)) * time.Millisecond}
	default:
		kind, f = "reset", faultproxy.Faults{ResetBefore: 0.3 * n.rng.Float64(), ResetAfter: 0.3 * n.rng.Float64()}
	}
	if err := n.c.proxies[name].SetFaults(f); err != nil {
		panic(fmt.Sprintf("chaos: built invalid faults %+v: %v", f, err))
	}
	n.heal[name] = time.Now().Add(length)
	n.tally.mu.Lock()
	n.tally.episodes[kind]++
	n.tally.mu.Unlock()
	n.tally.event("%s: %s for %v", name, f, length)
}

// expire ends the network fault episodes whose time is up.
func (n *nemesis) expire(now time.Time) {
	for name, at := range n.heal {
		if now.After(at) {
			n.c.proxies[name].Heal()
			delete(n.heal, name)
			n.tally.event("%s: healed", name)
		}
	}
}

// onExit handles a process that died without the runner stopping it: a
// failpoint that fired, or a crash of the system under test. Either way the
// process comes back disarmed.
func (n *nemesis) onExit(ctx context.Context, e exit) error {
	armed := ""
	if len(e.armed) > 0 {
		armed = e.armed[0].Name
	}
	killed := false
	if ws, ok := e.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		killed = true
	}
	switch {
	case e.fired != "" && e.fired == armed && killed:
		n.tally.mu.Lock()
		n.tally.fired[e.fired]++
		n.tally.mu.Unlock()
		n.tally.event("%s died at failpoint %s", e.p.name, e.fired)
	default:
		msg := fmt.Sprintf("%s exited by itself (%v, failpoint armed: %q); log: %s",
			e.p.name, e.state, armed, lastLines(e.tail, 6))
		n.tally.mu.Lock()
		n.tally.crashes = append(n.tally.crashes, msg)
		n.tally.mu.Unlock()
		n.tally.event("%s", msg)
	}
	if e.p.running() {
		return nil // a later fault already restarted it
	}
	return n.restart(ctx, e.p, nil)
}
