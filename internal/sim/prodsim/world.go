package prodsim

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/client"
	"github.com/concordtx/concord/coordinator"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/filestore"
	"github.com/concordtx/concord/travel"
	"github.com/concordtx/concord/wal/memfs"
	"github.com/concordtx/concord/wire"
)

const coordName = "coordinator"

// services are the participants a run may have, in order.
var services = []string{travel.Flights, travel.Hotels, travel.Cars}

// Faults are the faults of one run while its fault window lasts.
type Faults struct {
	Net NetFaults
	// CrashEvery is the mean time between process crashes (0: none); a
	// crashed process restarts after up to RestartMax.
	CrashEvery, RestartMax time.Duration
	// PartitionEvery is the mean time between partitions of the
	// coordinator from one participant (0: none), each up to PartitionMax.
	PartitionEvery, PartitionMax time.Duration
	// DamageAtRest is the probability that a crash also flips a bit or
	// loses a sector of the crashed process's log, at rest: a process may
	// then refuse to start, which is reported, not a violation.
	DamageAtRest float64
}

// Options configure one run; zero fields are drawn from the seed.
type Options struct {
	Seed         uint64
	Transactions int           // submitted (drawn: 10 to 59, one seed in 100 1,000 to 2,499)
	Participants int           // 1 to 3 (drawn)
	FaultWindow  time.Duration // simulated time with faults, then everything heals (drawn)
	Faults       *Faults       // nil: drawn
	Bugs         Bugs
	// Trace keeps a readable line per event in Result.Trace; the trace's
	// hash (Result.TraceHash) is kept either way.
	Trace bool
}

// Bugs plant known defects through the production code's test hooks, to
// prove that the checker catches them. All off is the system as it is.
type Bugs struct {
	// BatchAnswersBeforeSync makes the file store's batches (PrepareBatch,
	// CommitBatch, CommitOnePhaseBatch) answer without waiting for their
	// records to be durable (filestore.Options.BatchWait); the single calls
	// still sync.
	BatchAnswersBeforeSync bool
	// FirstVoteWins makes the coordinator count the first of several votes
	// an answer holds on one transaction (coordinator.Options.VotesHook),
	// the defect of issue 16 that let a malformed answer commit.
	FirstVoteWins bool
}

// Result is what one run did and found.
type Result struct {
	Seed                          uint64
	Faults                        Faults
	Transactions, Participants    int
	Committed, Aborted, Unknown   int // by the coordinator's final answer
	Crashes, Partitions           int
	Resubmissions, Conflicts      int // same-id submissions after the first; 409s to a changed body
	Compactions, Snapshots, Rolls int
	Messages, Dropped, Duplicated int
	Refused                       []string // processes that refused to start after damage at rest, with why
	SimTime                       time.Duration
	Violations                    []Violation
	Trace                         []string
	TraceHash                     uint64
}

// Violation is a broken invariant.
type Violation struct {
	Invariant string
	Tx        concord.TxID
	Detail    string
}

func (v Violation) String() string {
	if v.Tx != "" {
		return fmt.Sprintf("%s: %s: %s", v.Invariant, v.Tx, v.Detail)
	}
	return v.Invariant + ": " + v.Detail
}

// world is one run: processes, network, clients and history.
type world struct {
	opts   Options
	faults Faults
	start  time.Time

	rmu sync.Mutex
	rng *rand.Rand

	net   *network
	coord *coordProc
	parts []*partProc

	mu         sync.Mutex // guards what follows
	healed     bool
	txs        map[concord.TxID]*txRecord
	order      []*txRecord
	violations []Violation
	trace      []string
	hash       uint64
	res        Result
}

func (w *world) intn(n int) int {
	w.rmu.Lock()
	defer w.rmu.Unlock()
	return w.rng.IntN(n)
}

func (w *world) float() float64 {
	w.rmu.Lock()
	defer w.rmu.Unlock()
	return w.rng.Float64()
}

func (w *world) dur(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	w.rmu.Lock()
	defer w.rmu.Unlock()
	return time.Duration(w.rng.Int64N(int64(max) + 1))
}

// childRand is a generator for one crash's choices.
func (w *world) childRand() *rand.Rand {
	w.rmu.Lock()
	defer w.rmu.Unlock()
	return rand.New(rand.NewPCG(w.rng.Uint64(), w.rng.Uint64()))
}

func (w *world) tracef(who, format string, args ...any) {
	line := fmt.Sprintf("%10s %-11s %s", time.Since(w.start).String(), who, fmt.Sprintf(format, args...))
	w.mu.Lock()
	defer w.mu.Unlock()
	h := fnv.New64a()
	io.WriteString(h, line)
	w.hash = w.hash*31 + h.Sum64()
	if w.opts.Trace {
		w.trace = append(w.trace, line)
	}
}

func (w *world) violate(v Violation) {
	w.tracef("CHECKER", "VIOLATION %s", v)
	w.mu.Lock()
	w.violations = append(w.violations, v)
	w.mu.Unlock()
}

// drawFaults picks a fault profile from r: about one run in ten is calm.
func drawFaults(r *rand.Rand) Faults {
	pick := func(v ...float64) float64 { return v[r.IntN(len(v))] }
	pickD := func(v ...time.Duration) time.Duration { return v[r.IntN(len(v))] }
	f := Faults{Net: NetFaults{MaxDelay: pickD(time.Millisecond, 5*time.Millisecond, 20*time.Millisecond)}}
	if r.IntN(10) == 0 {
		return f
	}
	f.Net.Drop = pick(0, 0.01, 0.05, 0.2)
	f.Net.Duplicate = pick(0, 0.05, 0.2)
	f.Net.Slow = pick(0, 0.02, 0.1)
	f.Net.SlowDelay = pickD(100*time.Millisecond, time.Second, 3*time.Second)
	f.Net.Malformed = pick(0, 0, 0.02)
	f.CrashEvery = pickD(0, 300*time.Millisecond, time.Second, 3*time.Second)
	f.RestartMax = pickD(10*time.Millisecond, 300*time.Millisecond, 2*time.Second)
	if r.IntN(2) == 0 {
		f.PartitionEvery = pickD(200*time.Millisecond, time.Second)
		f.PartitionMax = pickD(100*time.Millisecond, 2*time.Second)
	}
	if r.IntN(8) == 0 {
		f.DamageAtRest = pick(0.1, 0.5)
	}
	return f
}

// Run simulates one seed. It must run inside a synctest bubble
// (synctest.Test): the coordinator's and participants' timers, the
// network's delays and the clients' waits are then virtual, and a run of
// minutes of simulated time takes milliseconds.
func Run(opts Options) Result {
	w := &world{
		opts:  opts,
		start: time.Now(),
		rng:   rand.New(rand.NewPCG(opts.Seed, 0x9e0d)),
		txs:   map[concord.TxID]*txRecord{},
	}
	fr := rand.New(rand.NewPCG(opts.Seed, 0xfa17))
	if opts.Faults != nil {
		w.faults = *opts.Faults
	} else {
		w.faults = drawFaults(fr)
	}
	if w.opts.Transactions == 0 {
		switch fr.IntN(100) {
		case 0:
			w.opts.Transactions = 1000 + fr.IntN(1500)
		default:
			w.opts.Transactions = 10 + fr.IntN(50)
		}
	}
	if w.opts.Participants == 0 {
		w.opts.Participants = 1 + fr.IntN(len(services))
	}
	if w.opts.FaultWindow == 0 {
		w.opts.FaultWindow = time.Duration(1+fr.IntN(5)) * time.Second
	}
	w.res.Seed, w.res.Faults = opts.Seed, w.faults
	w.res.Transactions, w.res.Participants = w.opts.Transactions, w.opts.Participants
	w.net = newNetwork(w, w.faults.Net)
	w.run()
	w.res.Messages, w.res.Dropped, w.res.Duplicated = w.net.sent, w.net.dropped, w.net.duplicated
	w.res.SimTime = time.Since(w.start)
	w.res.Violations, w.res.Trace, w.res.TraceHash = w.violations, w.trace, w.hash
	return w.res
}

// procs lists every process.
func (w *world) procs() []proc {
	ps := []proc{w.coord}
	for _, p := range w.parts {
		ps = append(ps, p)
	}
	return ps
}

func (w *world) run() {
	w.coord = &coordProc{w: w, procState: procState{fs: memfs.New()}, rfs: vfs.NewStrictMem()}
	for i := range w.opts.Participants {
		p := &partProc{w: w, name: services[i], procState: procState{fs: memfs.New()}, stock: w.drawStock()}
		// Small segments and frequent snapshots, so that rolls, snapshots
		// and compaction happen within a run.
		p.fopts = filestore.Options{
			SegmentSize:   int64(4<<10) << w.intn(4),
			Preallocate:   4 << 10,
			SnapshotEvery: 20 + w.intn(200),
			Logger:        discard,
		}
		if w.opts.Bugs.BatchAnswersBeforeSync {
			p.fopts.BatchWait = func(uint64, uint64) uint64 { return 0 }
		}
		w.parts = append(w.parts, p)
	}
	w.coord.segSize = int64(4<<10) << w.intn(4)
	for _, p := range w.procs() {
		if err := p.start(); err != nil {
			w.violate(Violation{Invariant: "start", Detail: fmt.Sprintf("%s: %v", p.procName(), err)})
			return
		}
	}
	stop := make(chan struct{})
	var nem sync.WaitGroup
	nem.Go(func() { w.crasher(stop) })
	nem.Go(func() { w.partitioner(stop) })
	var clients sync.WaitGroup
	w.workload(&clients)
	time.Sleep(w.opts.FaultWindow)
	close(stop)
	nem.Wait()
	w.heal()
	clients.Wait()
	w.settle()
	w.check()
	w.shutdown()
	w.net.dups.Wait()
}

var discard = slog.New(slog.DiscardHandler)

// drawStock picks a participant's inventory: large SKUs that rarely run
// out and one small one, so that some transactions are voted no.
func (w *world) drawStock() []travel.Stock {
	return []travel.Stock{{SKU: "BIG", Capacity: 100_000}, {SKU: "MID", Capacity: 500}, {SKU: "TINY", Capacity: int64(1 + w.intn(10))}}
}

// heal ends every fault and restarts every process that is down.
func (w *world) heal() {
	w.tracef("network", "HEAL: every fault ends, every process restarts")
	w.mu.Lock()
	w.healed = true
	w.mu.Unlock()
	w.net.heal()
	for _, p := range w.procs() {
		p.lock()
		if !p.isUp() && !p.isRefused() {
			w.restart(p)
		}
		p.unlock()
	}
}

func (w *world) isHealed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.healed
}

// crasher crashes a random process every CrashEvery on average and
// restarts it after up to RestartMax.
func (w *world) crasher(stop chan struct{}) {
	if w.faults.CrashEvery <= 0 {
		return
	}
	var restarts sync.WaitGroup
	defer restarts.Wait()
	for {
		t := time.NewTimer(w.dur(2 * w.faults.CrashEvery))
		select {
		case <-stop:
			t.Stop()
			return
		case <-t.C:
		}
		ps := w.procs()
		p := ps[w.intn(len(ps))]
		p.lock()
		if !p.isUp() {
			p.unlock()
			continue
		}
		w.crash(p)
		p.unlock()
		down := w.dur(w.faults.RestartMax)
		restarts.Go(func() {
			time.Sleep(down)
			p.lock()
			defer p.unlock()
			if !p.isUp() && !p.isRefused() {
				w.restart(p)
			}
		})
	}
}

// crash kills p: it leaves the network, its disk loses what was not
// synced (in one of memfs's crash modes), perhaps damage at rest follows,
// and then what is left of the process is closed (every write of it fails).
func (w *world) crash(p proc) {
	w.net.down(p.procName())
	c, isCoord := p.(*coordProc)
	if isCoord {
		// Both disks die at once: what the dead process still writes and
		// syncs to the remembered set is lost with what it had not synced.
		c.rfs.SetIgnoreSyncs(true)
	}
	r := w.childRand()
	fs := p.disk()
	mode := r.IntN(4)
	switch mode {
	case 0:
		fs.Crash()
	case 1:
		fs.CrashPartial(r)
	default:
		fs.CrashSectors(r, mode == 3)
	}
	w.mu.Lock()
	w.res.Crashes++
	w.mu.Unlock()
	damage := ""
	if w.faults.DamageAtRest > 0 && r.Float64() < w.faults.DamageAtRest {
		damage = damageAtRest(r, fs, p.walDir())
		if damage != "" {
			p.setDamaged()
		}
	}
	w.tracef(p.procName(), "CRASH (mode %d)%s", mode, damage)
	if isCoord {
		p.kill()
		c.rfs.ResetToSyncedState()
		c.rfs.SetIgnoreSyncs(false)
		return
	}
	p.kill()
}

// damageAtRest flips a bit or loses a sector of one of the log's segments.
func damageAtRest(r *rand.Rand, fs *memfs.FS, dir string) string {
	names, err := fs.ReadDir(dir)
	if err != nil {
		return ""
	}
	var segs []string
	for _, n := range names {
		if strings.HasSuffix(n, ".wal") {
			segs = append(segs, path.Join(dir, n))
		}
	}
	if len(segs) == 0 {
		return ""
	}
	sort.Strings(segs)
	name := segs[r.IntN(len(segs))]
	data, err := fs.ReadFile(name)
	if err != nil || len(data) == 0 {
		return ""
	}
	off := r.Int64N(int64(len(data)))
	if r.IntN(2) == 0 {
		bit := uint(r.IntN(8))
		if fs.FlipBit(name, off, bit) != nil {
			return ""
		}
		return fmt.Sprintf(", then bit %d of byte %d of %s flipped", bit, off, name)
	}
	if fs.LoseSector(name, off) != nil {
		return ""
	}
	return fmt.Sprintf(", then the sector at %d of %s lost", off/memfs.SectorSize*memfs.SectorSize, name)
}

// restart starts p again from its disk. A process that refuses to start
// after damage at rest is reported; one that refuses otherwise breaks the
// invariant that a power loss never stops a process for good.
func (w *world) restart(p proc) {
	err := p.start()
	if err == nil {
		w.tracef(p.procName(), "RESTART")
		return
	}
	if p.isDamaged() {
		w.tracef(p.procName(), "REFUSES to start after damage at rest: %v", err)
		p.setRefused()
		w.mu.Lock()
		w.res.Refused = append(w.res.Refused, fmt.Sprintf("%s: %v", p.procName(), err))
		w.mu.Unlock()
		return
	}
	w.violate(Violation{Invariant: "durability", Detail: fmt.Sprintf("%s refuses to start after a crash with no damage at rest: %v", p.procName(), err)})
	p.setRefused()
}

// partitioner cuts the coordinator from one participant now and then.
func (w *world) partitioner(stop chan struct{}) {
	if w.faults.PartitionEvery <= 0 {
		return
	}
	for {
		t := time.NewTimer(w.dur(2 * w.faults.PartitionEvery))
		select {
		case <-stop:
			t.Stop()
			return
		case <-t.C:
		}
		p := w.parts[w.intn(len(w.parts))]
		d := w.dur(w.faults.PartitionMax)
		w.net.partition(coordName, p.name, true)
		w.mu.Lock()
		w.res.Partitions++
		w.mu.Unlock()
		w.tracef("network", "PARTITION coordinator | %s for %s", p.name, d)
		t = time.NewTimer(d)
		select {
		case <-stop:
		case <-t.C:
		}
		t.Stop()
		w.net.partition(coordName, p.name, false)
		w.tracef("network", "MEND coordinator | %s", p.name)
	}
}

// settle waits, everything healed and up, until no transaction is live at
// the coordinator and none is prepared at any participant: a reservation
// held past that is held forever.
func (w *world) settle() {
	if w.anyRefused() {
		// A process that refused to start blocks what it took part in,
		// as it would in production until an operator salvages its log.
		return
	}
	const limit = time.Minute
	deadline := time.Now().Add(limit)
	for {
		what := w.unsettled()
		if what == "" {
			return
		}
		if time.Now().After(deadline) {
			w.violate(Violation{Invariant: "liveness", Detail: fmt.Sprintf("not settled %s after every fault healed: %s", limit, what)})
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (w *world) unsettled() string {
	var out []string
	if c := w.coord.c; c != nil && !w.coord.isRefused() {
		if n := c.Stats().Live; n > 0 {
			out = append(out, fmt.Sprintf("coordinator has %d live transactions", n))
		}
	}
	for _, p := range w.parts {
		if p.store == nil || p.isRefused() {
			continue
		}
		if n := p.store.Stats().Prepared; n > 0 {
			out = append(out, fmt.Sprintf("%s holds %d prepared", p.name, n))
		}
	}
	return strings.Join(out, "; ")
}

// anyRefused reports whether a process refused to start.
func (w *world) anyRefused() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.res.Refused) > 0
}

// shutdown closes every process, as at the end of a run.
func (w *world) shutdown() {
	for _, p := range w.procs() {
		p.lock()
		if p.isUp() {
			w.net.down(p.procName())
			p.kill()
		}
		p.unlock()
	}
}

// proc is a simulated process.
type proc interface {
	procName() string
	disk() *memfs.FS
	walDir() string
	start() error
	kill()
	isUp() bool
	lock()
	unlock()
	setDamaged()
	isDamaged() bool
	setRefused()
	isRefused() bool
}

// procState is what every process keeps.
type procState struct {
	mu                   sync.Mutex
	fs                   *memfs.FS
	inc                  uint64
	up, damaged, refused bool
}

func (s *procState) disk() *memfs.FS { return s.fs }
func (s *procState) lock()           { s.mu.Lock() }
func (s *procState) unlock()         { s.mu.Unlock() }
func (s *procState) isUp() bool      { return s.up }
func (s *procState) setDamaged()     { s.damaged = true }
func (s *procState) isDamaged() bool { return s.damaged }
func (s *procState) setRefused()     { s.refused = true }
func (s *procState) isRefused() bool { return s.refused }

// coordProc is the coordinator process: the production
// coordinator.Coordinator on its memfs disk, its HTTP handler on the
// network and its HTTP transport to the participants over it.
type coordProc struct {
	procState
	w       *world
	segSize int64
	c       *coordinator.Coordinator
	// rfs is the remembered set's disk: Pebble's strict in-memory file
	// system, which a crash resets to what was synced.
	rfs *vfs.MemFS
}

func (p *coordProc) procName() string { return coordName }
func (p *coordProc) walDir() string   { return "/coordinator/wal" }

func (p *coordProc) start() error {
	w := p.w
	p.inc++
	urls := map[string]string{}
	for _, pp := range w.parts {
		urls[pp.name] = baseURL(pp.name)
	}
	hc := w.net.client(coordName, p.inc)
	c, err := coordinator.New(coordinator.Options{
		Dir: p.walDir(), FS: p.fs, SegmentSize: p.segSize,
		RememberFS: p.rfs, RememberPath: "/remembered",
		Participants: urls, Transport: coordinator.NewHTTPTransport(urls, hc),
		AdvertiseURL:    baseURL(coordName),
		DefaultTimeout:  time.Second,
		MaxTimeout:      2 * time.Second,
		RetryMin:        20 * time.Millisecond,
		RetryMax:        500 * time.Millisecond,
		RequestTimeout:  500 * time.Millisecond,
		CompactInterval: 100 * time.Millisecond,
		RefreshAfter:    time.Second,
		AnswerGrace:     time.Second,
		ShutdownTimeout: time.Second,
		Logger:          discard,
		VotesHook:       p.votesHook(),
	})
	if err != nil {
		return err
	}
	p.c, p.up = c, true
	w.net.up(coordName, p.inc, c.Handler())
	return nil
}

// votesHook is nil unless a bug is planted in how votes are counted.
func (p *coordProc) votesHook() func([]wire.VoteReply) []wire.VoteReply {
	if !p.w.opts.Bugs.FirstVoteWins {
		return nil
	}
	return func(vs []wire.VoteReply) []wire.VoteReply {
		if len(vs) > 1 {
			return vs[:1]
		}
		return vs
	}
}

func (p *coordProc) kill() {
	p.up = false
	p.c.Close()
	st := p.c.Stats()
	p.w.mu.Lock()
	p.w.res.Compactions += int(st.Compactions)
	p.w.mu.Unlock()
}

// partProc is a participant process: the production participant.Server
// over travel's file store (participant/filestore) on its memfs disk.
type partProc struct {
	procState
	w     *world
	name  string
	stock []travel.Stock
	fopts filestore.Options
	store *travel.FileStore
	srv   *participant.Server
}

func (p *partProc) procName() string { return p.name }
func (p *partProc) walDir() string   { return "/data/store/wal" }

func (p *partProc) start() error {
	w := p.w
	p.inc++
	fo := p.fopts
	// Decisions are remembered for seconds, not minutes, so that
	// forgetting happens within a run (the coordinator's MaxTimeout is 2s).
	st, err := travel.OpenFileStore(travel.StoreConfig{Service: p.name, Dir: "/data", FS: p.fs, Stock: p.stock, FileStore: &fo,
		Remember: participant.Retention{MaxLifetime: 2 * time.Second, ClockSkew: time.Second}})
	if err != nil {
		return err
	}
	srv, err := participant.NewServer(participant.Options{
		Resource:     st,
		Coordinator:  baseURL(coordName),
		HTTPClient:   w.net.client(p.name, p.inc),
		InDoubtAfter: 300 * time.Millisecond,
		QueryMin:     50 * time.Millisecond,
		QueryMax:     time.Second,
		CallTimeout:  2 * time.Second,
		TickInterval: 50 * time.Millisecond,
		Retain:       64,
		Shards:       4,
	})
	if err != nil {
		st.Close()
		return err
	}
	if err := srv.Start(context.Background()); err != nil {
		st.Close()
		return err
	}
	p.store, p.srv, p.up = st, srv, true
	w.net.up(p.name, p.inc, srv.Handler())
	return nil
}

func (p *partProc) kill() {
	p.up = false
	p.srv.Close()
	s := p.store.Stats()
	p.store.Close()
	p.w.mu.Lock()
	p.w.res.Snapshots += s.Snapshots
	p.w.mu.Unlock()
}

// errNotUp stands for a process that is down at a check.
var errNotUp = errors.New("process is down")

var _ = wire.PathTransactions
var _ = client.ErrConflict
