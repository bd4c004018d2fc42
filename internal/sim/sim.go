package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/concordtx/concord"
)

// errCrashed stops a call whose node crashed in the middle of it.
var errCrashed = errors.New("sim: node crashed")

// Faults are the faults of one run. Options.Faults nil draws them from the
// seed, so that a batch of seeds covers calm runs, lossy ones, crash storms
// and partitions.
type Faults struct {
	Net NetFaults
	// Crash is the probability that a node crashes at each crash point: a
	// record appended and not synced, a record synced and nothing sent, a
	// message about to be sent, a resource call done and not reported.
	Crash float64
	// RestartMax bounds how long a crashed node stays down.
	RestartMax time.Duration
	// PartitionEvery is the mean time between partitions (zero: none);
	// each lasts up to PartitionMax.
	PartitionEvery, PartitionMax time.Duration
}

// Bugs switch on deliberately broken behaviour in the simulator's drivers,
// to prove that the checker catches it. All off is the correct system.
type Bugs struct {
	// CommitBeforeDurable sends COMMIT and answers the client before the
	// commit decision is synced.
	CommitBeforeDurable bool
	// ForgetPreparedOnRestart makes a participant drop its prepared
	// transactions when it restarts instead of keeping them in doubt.
	ForgetPreparedOnRestart bool
	// AbortAfterCommitTimeout makes the coordinator abort a transaction
	// whose deadline passes after its commit decision, before every
	// acknowledgement is in.
	AbortAfterCommitTimeout bool
	// ForgetCommittedEarly makes the coordinator end, forget and compact a
	// committed transaction as soon as its decision is out, so that an
	// outcome query is answered "aborted" by presumption.
	ForgetCommittedEarly bool
	// AcceptPrepareAfterAbort makes a participant acknowledge an ABORT
	// that arrives before its PREPARE without remembering it, so the late
	// PREPARE is accepted.
	AcceptPrepareAfterAbort bool
	// UnforcedStore makes the simulator's own store (Store: SimStore)
	// vote yes and acknowledge commits without syncing their records.
	UnforcedStore bool
}

// Options configure one run. Zero fields take the defaults in parentheses.
type Options struct {
	Seed         uint64
	Transactions int           // transactions submitted (24)
	Participants int           // participant services, 1 to 4 (drawn from the seed: 2 to 4)
	FaultWindow  time.Duration // simulated time with faults; then all heal (3s)
	SettleLimit  time.Duration // simulated time allowed to settle once healed (2m)
	Faults       *Faults       // nil: drawn from the seed
	Store        StoreKind     // the participants' resource (FileStore)
	Bugs         Bugs
	// Trace keeps a readable line per event in Result.Trace.
	Trace bool
}

func (o Options) withDefaults() (Options, error) {
	if o.Transactions == 0 {
		o.Transactions = 24
	}
	if o.FaultWindow == 0 {
		o.FaultWindow = 3 * time.Second
	}
	if o.SettleLimit == 0 {
		o.SettleLimit = 2 * time.Minute
	}
	return o, o.validate()
}

func (o Options) validate() error {
	switch {
	case o.Transactions < 0:
		return fmt.Errorf("sim: Transactions %d is negative", o.Transactions)
	case o.Participants < 0 || o.Participants > len(serviceNames):
		return fmt.Errorf("sim: Participants %d is outside 1..%d", o.Participants, len(serviceNames))
	case o.FaultWindow < 0 || o.SettleLimit < 0:
		return fmt.Errorf("sim: negative FaultWindow or SettleLimit")
	case o.Store > SimStore:
		return fmt.Errorf("sim: unknown Store %d", o.Store)
	case o.Bugs.UnforcedStore && o.Store != SimStore:
		return fmt.Errorf("sim: Bugs.UnforcedStore breaks the simulator's own store: it needs Store SimStore")
	}
	if f := o.Faults; f != nil {
		probs := []struct {
			name string
			p    float64
		}{{"Net.Drop", f.Net.Drop}, {"Net.Duplicate", f.Net.Duplicate}, {"Net.Slow", f.Net.Slow}, {"Net.Refuse", f.Net.Refuse}, {"Crash", f.Crash}}
		for _, p := range probs {
			if p.p < 0 || p.p > 1 {
				return fmt.Errorf("sim: Faults.%s %v is outside 0..1", p.name, p.p)
			}
		}
		switch {
		case f.Net.MinDelay < 0 || f.Net.MaxDelay < f.Net.MinDelay:
			return fmt.Errorf("sim: Faults.Net delays %s..%s: want 0 <= MinDelay <= MaxDelay", f.Net.MinDelay, f.Net.MaxDelay)
		case f.Net.SlowDelay < 0 || f.RestartMax < 0 || f.PartitionEvery < 0 || f.PartitionMax < 0:
			return fmt.Errorf("sim: negative duration in Faults")
		}
	}
	return nil
}

// Result is what one run did and found.
type Result struct {
	Seed         uint64
	Faults       Faults
	Transactions int // submitted and begun
	Committed    int // transactions whose outcome is commit
	Aborted      int
	Unfaulted    int // transactions no fault touched: non-triviality was asked of them
	Crashes      int
	Partitions   int
	Messages     int // sent
	Dropped      int
	Duplicated   int
	Events       int
	SimTime      time.Duration
	Violations   []Violation // empty when every invariant held; the run stops at the first
	Trace        []string    // with Options.Trace
}

// node is a simulated process on the network.
type node interface {
	up() bool
	start()
	receive(message)
	crash(where string)
}

// sim is one run.
type sim struct {
	opts   Options
	rng    *rand.Rand
	sched  *scheduler
	net    *network
	hist   *history
	bugs   Bugs
	faults Faults

	coord *coordNode
	parts []*partNode
	nodes map[string]node

	crashProb    float64
	replyTimeout time.Duration
	healed       bool
	stopped      bool
	onSend       func(message)

	transactions, crashes, partitions int
	violations                        []Violation
	trace                             []string
}

// Run simulates one seed and checks every invariant. Bad options are
// reported as an error; a broken invariant is a Violation in the result.
func Run(opts Options) (Result, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return Result{}, err
	}
	s := newSim(opts)
	s.run()
	r := Result{
		Seed:         opts.Seed,
		Faults:       s.faults,
		Transactions: s.transactions,
		Crashes:      s.crashes,
		Partitions:   s.partitions,
		Messages:     s.net.sent,
		Dropped:      s.net.dropped,
		Duplicated:   s.net.duplicated,
		Events:       s.sched.events,
		SimTime:      s.sched.elapsed(),
		Violations:   s.violations,
		Trace:        s.trace,
	}
	for _, t := range s.hist.order {
		if t.decidedCommit() {
			r.Committed++
		} else {
			r.Aborted++
		}
		if !t.faulted {
			r.Unfaulted++
		}
	}
	return r, nil
}

func newSim(opts Options) *sim {
	// Two PCG streams from one seed: one drives the run, one only draws the
	// fault profile, so a profile given in Options leaves the run's
	// other choices as they were.
	s := &sim{
		opts:         opts,
		rng:          rand.New(rand.NewPCG(opts.Seed, 0x5eed)),
		sched:        newScheduler(),
		bugs:         opts.Bugs,
		nodes:        make(map[string]node),
		replyTimeout: 100 * time.Millisecond,
	}
	if opts.Faults != nil {
		s.faults = *opts.Faults
	} else {
		s.faults = drawFaults(rand.New(rand.NewPCG(opts.Seed, 0xfa17)))
	}
	s.crashProb = s.faults.Crash
	s.net = &network{s: s, faults: s.faults.Net, cut: make(map[[2]string]bool)}
	s.hist = newHistory(s)
	s.coord = newCoordNode(s)
	s.nodes[coordinatorName] = s.coord
	n := opts.Participants
	if n == 0 {
		n = 2 + s.rng.IntN(3)
	}
	for i := range n {
		name := serviceNames[i]
		p := newPartNode(s, name, drawStock(s.rng))
		s.parts = append(s.parts, p)
		s.nodes[name] = p
	}
	return s
}

// drawFaults picks a fault profile: about one run in ten is calm, the
// others mix loss, duplication, reordering, crashes and partitions at
// different rates.
func drawFaults(r *rand.Rand) Faults {
	pick := func(v ...float64) float64 { return v[r.IntN(len(v))] }
	pickD := func(v ...time.Duration) time.Duration { return v[r.IntN(len(v))] }
	f := Faults{
		Net:        NetFaults{MinDelay: time.Millisecond, MaxDelay: pickD(2*time.Millisecond, 10*time.Millisecond, 20*time.Millisecond), Refuse: 0.5},
		RestartMax: pickD(50*time.Millisecond, 500*time.Millisecond, 2*time.Second),
	}
	if r.IntN(10) == 0 {
		return f
	}
	f.Net.Drop = pick(0, 0.02, 0.1, 0.25)
	f.Net.Duplicate = pick(0, 0.05, 0.2)
	f.Net.Slow = pick(0, 0.05, 0.2)
	f.Net.SlowDelay = pickD(200*time.Millisecond, time.Second, 3*time.Second)
	f.Crash = pick(0, 0.003, 0.01, 0.03)
	if r.IntN(2) == 0 {
		f.PartitionEvery = pickD(300*time.Millisecond, time.Second)
		f.PartitionMax = pickD(200*time.Millisecond, 2*time.Second)
	}
	return f
}

func (s *sim) node(name string) node { return s.nodes[name] }

// shouldCrash draws whether a node dies at the crash point it is at.
func (s *sim) shouldCrash() bool {
	return s.crashProb > 0 && s.rng.Float64() < s.crashProb
}

// scheduleRestart brings n back after a random time down (at once, once
// everything is healed).
func (s *sim) scheduleRestart(n node) {
	d := time.Millisecond
	if !s.healed && s.faults.RestartMax > 0 {
		d += time.Duration(s.rng.Int64N(int64(s.faults.RestartMax)))
	}
	s.sched.after(d, func() {
		if !n.up() {
			n.start()
		}
	})
}

// touchTx marks a transaction as hit by a fault.
func (s *sim) touchTx(id concord.TxID) {
	if t := s.hist.txs[id]; t != nil {
		t.faulted = true
	}
}

// touchAll marks every transaction begun so far as hit by a fault (a crash
// or a partition).
func (s *sim) touchAll() {
	for _, t := range s.hist.order {
		t.faulted = true
	}
}

func (s *sim) violate(v Violation) {
	s.tracef("CHECKER", "VIOLATION %s", v)
	s.violations = append(s.violations, v)
	s.stopped = true
}

func (s *sim) tracef(who, format string, args ...any) {
	if !s.opts.Trace {
		return
	}
	s.trace = append(s.trace, fmt.Sprintf("%12s %-11s %s", "+"+s.sched.elapsed().String(), who, fmt.Sprintf(format, args...)))
}
