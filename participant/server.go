package participant

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/security"
	"github.com/concordtx/concord/tpc"
	"github.com/concordtx/concord/wire"
)

// ErrBadRequest wraps every refusal of a malformed request: an empty or
// oversized batch, a bad transaction id, a bad coordinator URL.
var ErrBadRequest = errors.New("bad request")

// ErrNotStarted is returned for requests that arrive before Start has
// recovered the resource's prepared transactions.
var ErrNotStarted = errors.New("participant: server not started")

// ErrClosed is returned for requests that arrive after (or wait across)
// Close.
var ErrClosed = errors.New("participant: server closed")

// Server speaks the participant protocol on top of a Resource. It owns the
// protocol (the state machine in package tpc): duplicate requests are
// answered the same, an ABORT that arrives before its PREPARE is remembered
// and the late PREPARE refused, a COMMIT for an unknown transaction fails
// (unless it is past its deadline plus the clock skew allowance: see
// CommitRequest),
// an ABORT for a transaction committed in one phase fails with outcome
// committed, no two resource calls for one transaction run at once, and a
// prepared transaction left without a decision is resolved by asking the
// coordinator, forever, never by aborting on its own.
//
// Create it with NewServer, call Start (which recovers prepared transactions
// first), serve Handler, and Close when done. Its methods are safe for
// concurrent use.
type Server struct {
	opts Options
	res  Resource
	// onePhase, batch and onePhaseBatch are res as the optional
	// interfaces, each nil unless res is one.
	onePhase      OnePhaseResource
	batch         BatchResource
	onePhaseBatch OnePhaseBatchResource
	shards        []*shard
	seed          maphash.Seed
	sem           chan struct{}
	log           *slog.Logger

	nextReq atomic.Uint64
	started atomic.Bool
	startMu sync.Mutex

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup // the in-doubt loop and every call in flight
	closeMu sync.RWMutex   // orders wg.Add against Close's wg.Wait
	closed  bool

	stats serverStats
	// refusedLog throttles the log lines of refused requests.
	refusedLog security.LogLimiter
	metrics    *metrics
	// lastRef caches the coordinator of the latest PREPARE, which is
	// usually the coordinator of every PREPARE.
	lastRef atomic.Pointer[refEntry]
}

type shard struct {
	mu      sync.Mutex
	m       *tpc.Participant
	waiting map[uint64]waitSlot
}

// waitSlot is where the reply to one request number goes: w.slots[i].
type waitSlot struct {
	w *waiter
	i int
}

// waiter collects the replies to one protocol request, one per
// transaction, delivered by whichever goroutine steps the machine.
type waiter struct {
	slots []pendingReq
	left  atomic.Int64  // replies still missing
	done  chan struct{} // closed once left is 0
}

// pendingReq is one transaction of a waiter: where it waits (to give up)
// and its reply, less the request number and the transaction id, which
// the request has.
type pendingReq struct {
	sh      *shard
	req     uint64
	kind    tpc.ReplyKind
	vote    concord.Vote
	outcome concord.Outcome
	reason  string
	// forgotten: an acknowledged COMMIT of a transaction the resource
	// holds no record of, past its forget time.
	forgotten bool
}

// deliver puts reply r in slot i.
func (w *waiter) deliver(i int, r *tpc.ParticipantReply) {
	p := &w.slots[i]
	p.kind, p.vote, p.outcome, p.reason, p.forgotten = r.Kind, r.Vote, r.Outcome, r.Reason, r.Forgotten
}

func newWaiter(n int) *waiter {
	w := &waiter{slots: make([]pendingReq, n), done: make(chan struct{})}
	w.left.Store(int64(n))
	return w
}

// shardAction is an action a machine asked for, with its machine's shard.
type shardAction struct {
	sh *shard
	a  tpc.ParticipantAction
}

// actsPool recycles the lists in which a request collects the actions its
// steps ask for (getActs, putActs). A request hands its list to run, which
// makes the batch calls before it returns and copies every action it
// launches, so nothing refers to the list once run has returned.
var actsPool = sync.Pool{New: func() any { return new([]shardAction) }}

// maxPooledActs bounds the lists kept for reuse: a rare huge batch's is
// left to the collector.
const maxPooledActs = 1024

func getActs() *[]shardAction { return actsPool.Get().(*[]shardAction) }

// putActs clears acts, so that it holds on to no transaction, and keeps it
// for reuse.
func putActs(acts *[]shardAction) {
	if cap(*acts) > maxPooledActs {
		return
	}
	clear(*acts)
	*acts = (*acts)[:0]
	actsPool.Put(acts)
}

type serverStats struct {
	prepares, commits, aborts           atomic.Uint64
	prepareReqs, commitReqs, abortReqs  atomic.Uint64
	queries, queryFailures, callFailure atomic.Uint64
	resolvedCommit, resolvedAbort       atomic.Uint64
	refused                             atomic.Uint64 // protocol requests not from the coordinator
}

// NewServer checks opts and returns a Server that is not yet started.
func NewServer(opts Options) (*Server, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = wire.NewHTTPClient(0)
	}
	if opts.CoordinatorIdentity != "" {
		opts.HTTPClient = coordinatorOnly(opts.HTTPClient, opts.CoordinatorIdentity)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, res: opts.Resource, seed: maphash.MakeSeed(), log: log,
		sem: make(chan struct{}, opts.MaxConcurrency)}
	s.onePhase, _ = opts.Resource.(OnePhaseResource)
	s.batch, _ = opts.Resource.(BatchResource)
	s.onePhaseBatch, _ = opts.Resource.(OnePhaseBatchResource)
	cfg := tpc.ParticipantConfig{
		OnePhase:     s.onePhase != nil,
		InDoubtAfter: opts.InDoubtAfter,
		QueryMin:     opts.QueryMin,
		QueryMax:     opts.QueryMax,
		Retain:       max(1, opts.Retain/opts.Shards),
	}
	s.shards = make([]*shard, opts.Shards)
	for i := range s.shards {
		s.shards[i] = &shard{m: tpc.NewParticipant(cfg), waiting: make(map[uint64]waitSlot)}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.metrics = newMetrics(s)
	return s, nil
}

// Start recovers the resource's prepared transactions (Resource.Recover),
// puts them in doubt so the coordinator is asked about each, and starts the
// in-doubt loop. Requests are refused with ErrNotStarted until it returns
// nil. Calling it again does nothing.
func (s *Server) Start(ctx context.Context) error {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	if s.started.Load() {
		return nil
	}
	if s.ctx.Err() != nil {
		return ErrClosed
	}
	ids, err := s.res.Recover(ctx)
	if err != nil {
		return fmt.Errorf("recover prepared transactions: %w", err)
	}
	byShard := make(map[*shard][]tpc.RecoveredTx)
	for _, r := range ids {
		sh := s.shardOf(r.ID)
		byShard[sh] = append(byShard[sh], tpc.RecoveredTx{ID: r.ID, Coordinator: string(r.Coordinator.Encode())})
	}
	now := s.opts.Clock.Now()
	for sh, txs := range byShard {
		s.step(sh, func(m *tpc.Participant) tpc.ParticipantReady { return m.RecoveredFrom(txs, now) })
	}
	if len(ids) > 0 {
		s.log.Info("recovered prepared transactions; asking the coordinator", "count", len(ids))
	}
	if !s.goTracked(s.loop) {
		return ErrClosed
	}
	s.started.Store(true)
	return nil
}

// Close stops the in-doubt loop, fails waiting requests with ErrClosed and
// waits for resource calls in flight. It does not close the Resource and
// decides nothing: prepared transactions stay prepared.
func (s *Server) Close() error {
	s.closeMu.Lock()
	s.closed = true
	s.cancel()
	s.closeMu.Unlock()
	s.wg.Wait()
	return nil
}

// track counts a call in flight, one Close waits for, unless the server is
// closed; the caller calls s.wg.Done when it ends.
func (s *Server) track() bool {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// goTracked runs fn in a goroutine Close waits for, unless the server is
// closed.
func (s *Server) goTracked(fn func()) bool {
	if !s.track() {
		return false
	}
	go func() {
		defer s.wg.Done()
		fn()
	}()
	return true
}

func (s *Server) shardOf(id concord.TxID) *shard {
	if len(s.shards) == 1 {
		return s.shards[0]
	}
	return s.shards[maphash.String(s.seed, string(id))%uint64(len(s.shards))]
}

// step runs fn on sh's machine under its lock, delivers the replies and
// launches the actions of the Ready it returned.
func (s *Server) step(sh *shard, fn func(m *tpc.Participant) tpc.ParticipantReady) {
	s.stepTo(sh, fn, nil)
}

// stepTo runs fn on sh's machine under its lock and delivers the replies of
// the Ready it returned. Its actions are appended to *acts, for the caller
// to run, or launched if acts is nil.
func (s *Server) stepTo(sh *shard, fn func(m *tpc.Participant) tpc.ParticipantReady, acts *[]shardAction) {
	sh.mu.Lock()
	rd := fn(sh.m)
	for i := range rd.Replies {
		r := &rd.Replies[i]
		if slot, ok := sh.waiting[r.Req]; ok {
			delete(sh.waiting, r.Req)
			slot.w.deliver(slot.i, r)
			if slot.w.left.Add(-1) == 0 {
				close(slot.w.done)
			}
		}
	}
	sh.mu.Unlock()
	for _, a := range rd.Actions {
		if acts != nil {
			*acts = append(*acts, shardAction{sh, a})
		} else {
			s.launch(sh, a)
		}
	}
}

// launch performs a in its own goroutine, bounded by MaxConcurrency, and
// reports its result to the machine.
func (s *Server) launch(sh *shard, a tpc.ParticipantAction) {
	s.goTracked(func() {
		select {
		case s.sem <- struct{}{}:
		case <-s.ctx.Done():
			return
		}
		res := s.perform(a)
		<-s.sem
		if s.ctx.Err() != nil && res.Err == tpc.PErrFailed {
			return // cut short by Close: nothing was learnt
		}
		s.step(sh, func(m *tpc.Participant) tpc.ParticipantReady { return m.Done(res, s.opts.Clock.Now()) })
	})
}

// run starts the actions a request's steps asked for. With a BatchResource
// the prepares, and the commits, are each made as one batch call in this
// goroutine, and with a OnePhaseBatchResource the one-phase commits; every
// other action is launched.
func (s *Server) run(acts []shardAction) {
	var prepares, commits, onePhase int
	for _, a := range acts {
		switch k := a.a.Kind; {
		case k == tpc.ActPrepare && s.batch != nil:
			prepares++
		case k == tpc.ActCommit && s.batch != nil:
			commits++
		case k == tpc.ActCommitOnePhase && s.onePhaseBatch != nil:
			onePhase++
		default:
			s.launch(a.sh, a.a)
		}
	}
	if prepares > 0 {
		s.performBatch(tpc.ActPrepare, acts, prepares)
	}
	if commits > 0 {
		s.performBatch(tpc.ActCommit, acts, commits)
	}
	if onePhase > 0 {
		s.performBatch(tpc.ActCommitOnePhase, acts, onePhase)
	}
}

// performBatch makes the n actions of kind (ActPrepare, ActCommit or
// ActCommitOnePhase) among acts as one batch call, bounded by
// MaxConcurrency like one call, and reports each result to its machine.
func (s *Server) performBatch(kind tpc.ParticipantActionKind, acts []shardAction, n int) {
	if !s.track() {
		return
	}
	defer s.wg.Done()
	select {
	case s.sem <- struct{}{}:
	case <-s.ctx.Done():
		return
	}
	// The calls are the actions of kind in the order of acts, which the
	// loop reporting the results walks again.
	var prepares []PrepareCall
	var commits []CommitCall
	var onePhase []OnePhaseCall
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.CallTimeout)
	start := time.Now()
	switch kind {
	case tpc.ActPrepare:
		prepares = make([]PrepareCall, 0, n)
		for _, a := range acts {
			if a.a.Kind == kind {
				prepares = append(prepares, PrepareCall{ID: a.a.ID, Payload: a.a.Payload, Info: s.prepareInfo(a.a)})
			}
		}
		s.batch.PrepareBatch(ctx, prepares)
	case tpc.ActCommit:
		commits = make([]CommitCall, 0, n)
		for _, a := range acts {
			if a.a.Kind == kind {
				commits = append(commits, CommitCall{ID: a.a.ID})
			}
		}
		s.batch.CommitBatch(ctx, commits)
	default:
		onePhase = make([]OnePhaseCall, 0, n)
		for _, a := range acts {
			if a.a.Kind == kind {
				onePhase = append(onePhase, OnePhaseCall{ID: a.a.ID, Payload: a.a.Payload, Info: s.prepareInfo(a.a)})
			}
		}
		s.onePhaseBatch.CommitOnePhaseBatch(ctx, onePhase)
	}
	cancel()
	<-s.sem
	took := time.Since(start)
	closing := s.ctx.Err() != nil
	now := s.opts.Clock.Now()
	i := 0
	for _, a := range acts {
		if a.a.Kind != kind {
			continue
		}
		var res tpc.ParticipantResult
		switch kind {
		case tpc.ActPrepare:
			c := &prepares[i]
			res = s.result(a.a, c.Err)
			res.Vote, res.Reason = c.Result.Vote, c.Result.Reason
		case tpc.ActCommit:
			c := &commits[i]
			if c.Err == nil {
				s.resolved(c.ID, concord.OutcomeCommitted)
			}
			res = s.result(a.a, c.Err)
		default:
			c := &onePhase[i]
			res = s.result(a.a, c.Err)
			res.Outcome, res.Reason = c.Outcome, c.Reason
		}
		i++
		s.metrics.callTook(kind, took, res.Err == tpc.PErrFailed)
		if closing && res.Err == tpc.PErrFailed {
			continue // cut short by Close: nothing was learnt
		}
		s.step(a.sh, func(m *tpc.Participant) tpc.ParticipantReady { return m.Done(res, now) })
	}
}

// reserveReqs reserves n request numbers and returns the first.
func (s *Server) reserveReqs(n int) uint64 {
	return s.nextReq.Add(uint64(n)) - uint64(n) + 1
}

// request registers slot i of w for request number req on sh and steps fn,
// appending the actions it asks for to acts.
func (s *Server) request(sh *shard, req uint64, w *waiter, i int, acts *[]shardAction, fn func(m *tpc.Participant) tpc.ParticipantReady) {
	w.slots[i].sh, w.slots[i].req = sh, req
	s.stepTo(sh, func(m *tpc.Participant) tpc.ParticipantReady {
		sh.waiting[req] = waitSlot{w, i}
		return fn(m)
	}, acts)
}

// wait waits for every reply of w, or gives up when ctx or the server ends.
func (s *Server) wait(ctx context.Context, w *waiter) error {
	select {
	case <-w.done:
		return nil
	default:
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		s.forget(w)
		return ctx.Err()
	case <-s.ctx.Done():
		s.forget(w)
		return ErrClosed
	}
}

// forget withdraws w's slots: replies still to come are dropped. It reads
// only each slot's shard and request number, which the request's own
// goroutine set: the reply fields beside them may be written meanwhile, by
// a goroutine stepping the machine under the shard's lock.
func (s *Server) forget(w *waiter) {
	for i := range w.slots {
		sh, req := w.slots[i].sh, w.slots[i].req
		sh.mu.Lock()
		delete(sh.waiting, req)
		sh.mu.Unlock()
	}
}

func (s *Server) ready() error {
	if s.ctx.Err() != nil {
		return ErrClosed
	}
	if !s.started.Load() {
		return ErrNotStarted
	}
	return nil
}

// Prepare handles a PREPARE request: every transaction of the batch is
// prepared concurrently (bounded by MaxConcurrency) and the votes come back
// in the request's order. A malformed request fails with an error wrapping
// ErrBadRequest, before anything is done.
func (s *Server) Prepare(ctx context.Context, req wire.PrepareRequest) (wire.PrepareResponse, error) {
	if err := s.ready(); err != nil {
		return wire.PrepareResponse{}, err
	}
	if err := s.checkPrepare(req); err != nil {
		return wire.PrepareResponse{}, err
	}
	s.stats.prepareReqs.Add(1)
	coord := s.coordinatorKey(req.Coordinator)
	now := s.opts.Clock.Now()
	w := newWaiter(len(req.Transactions))
	acts := getActs()
	s.stats.prepares.Add(uint64(len(req.Transactions)))
	first := s.reserveReqs(len(req.Transactions))
	for i, tx := range req.Transactions {
		sh, n := s.shardOf(tx.ID), first+uint64(i)
		s.request(sh, n, w, i, acts, func(m *tpc.Participant) tpc.ParticipantReady {
			return m.PrepareBy(n, tx.ID, tx.Payload, tx.OnePhase, coord, tx.Deadline(), now)
		})
	}
	s.run(*acts)
	putActs(acts)
	if err := s.wait(ctx, w); err != nil {
		return wire.PrepareResponse{}, err
	}
	resp := wire.PrepareResponse{Votes: make([]wire.VoteReply, len(w.slots))}
	for i := range w.slots {
		r := &w.slots[i]
		resp.Votes[i] = wire.VoteReply{ID: req.Transactions[i].ID, Vote: r.vote, Reason: r.reason, Outcome: r.outcome}
	}
	return resp, nil
}

// Commit handles a COMMIT request for ids, without their deadlines.
func (s *Server) Commit(ctx context.Context, ids []concord.TxID) (wire.DecisionResponse, error) {
	return s.decide(ctx, wire.DecisionRequest{IDs: ids}, true)
}

// Abort handles an ABORT request for ids.
func (s *Server) Abort(ctx context.Context, ids []concord.TxID) (wire.DecisionResponse, error) {
	return s.decide(ctx, wire.DecisionRequest{IDs: ids}, false)
}

// CommitRequest handles a COMMIT request. A transaction the resource holds
// no record of is acknowledged (and listed in the answer's Forgotten) if
// the request gives its deadline and Options.Retention.ForgetAt of it has
// passed by the server's clock: a COMMIT goes only to a participant that
// voted yes, which keeps its prepared state until the decision, so it
// committed and has since forgotten. Otherwise it fails, "unknown
// transaction".
func (s *Server) CommitRequest(ctx context.Context, req wire.DecisionRequest) (wire.DecisionResponse, error) {
	return s.decide(ctx, req, true)
}

// AbortRequest handles an ABORT request; the deadlines it may carry are
// not used.
func (s *Server) AbortRequest(ctx context.Context, req wire.DecisionRequest) (wire.DecisionResponse, error) {
	return s.decide(ctx, req, false)
}

func (s *Server) decide(ctx context.Context, req wire.DecisionRequest, commit bool) (wire.DecisionResponse, error) {
	if err := s.ready(); err != nil {
		return wire.DecisionResponse{}, err
	}
	ids := req.IDs
	if err := s.checkIDs(ids); err != nil {
		return wire.DecisionResponse{}, err
	}
	if n := len(req.DeadlinesMS); n != 0 && n != len(ids) {
		return wire.DecisionResponse{}, fmt.Errorf("%w: %d deadlines_ms for %d ids: give one per id, or none", ErrBadRequest, n, len(ids))
	}
	if commit {
		s.stats.commitReqs.Add(1)
	} else {
		s.stats.abortReqs.Add(1)
	}
	now := s.opts.Clock.Now()
	w := newWaiter(len(ids))
	acts := getActs()
	if commit {
		s.stats.commits.Add(uint64(len(ids)))
	} else {
		s.stats.aborts.Add(uint64(len(ids)))
	}
	first := s.reserveReqs(len(ids))
	for i, id := range ids {
		sh, n := s.shardOf(id), first+uint64(i)
		if commit {
			var forgetAt time.Time
			if d := req.Deadline(i); !d.IsZero() {
				forgetAt = s.opts.Retention.ForgetAt(d)
			}
			s.request(sh, n, w, i, acts, func(m *tpc.Participant) tpc.ParticipantReady { return m.CommitBy(n, id, forgetAt, now) })
		} else {
			s.request(sh, n, w, i, acts, func(m *tpc.Participant) tpc.ParticipantReady { return m.Abort(n, id, now) })
		}
	}
	s.run(*acts)
	putActs(acts)
	if err := s.wait(ctx, w); err != nil {
		return wire.DecisionResponse{}, err
	}
	resp := wire.DecisionResponse{Acknowledged: make([]concord.TxID, 0, len(ids))}
	for i := range w.slots {
		r := &w.slots[i]
		if r.kind == tpc.ReplyAck {
			resp.Acknowledged = append(resp.Acknowledged, ids[i])
			if r.forgotten {
				resp.Forgotten = append(resp.Forgotten, ids[i])
				s.log.Info("COMMIT of a transaction with no record acknowledged: its deadline plus clock skew has passed, so it was committed here and forgotten",
					"tx", ids[i], "deadline", req.Deadline(i), "clock_skew", s.opts.Retention.WithDefaults().ClockSkew)
			}
			continue
		}
		resp.Failed = append(resp.Failed, wire.TxFailure{ID: ids[i], Reason: r.reason, Outcome: r.outcome})
	}
	return resp, nil
}

func (s *Server) checkPrepare(req wire.PrepareRequest) error {
	if len(req.Transactions) == 0 {
		return fmt.Errorf("%w: empty batch: transactions is empty", ErrBadRequest)
	}
	if len(req.Transactions) > s.opts.MaxBatch {
		return fmt.Errorf("%w: %d transactions in one batch, at most %d", ErrBadRequest, len(req.Transactions), s.opts.MaxBatch)
	}
	if req.Coordinator != "" {
		if err := s.opts.checkCoordinator(req.Coordinator); err != nil {
			return fmt.Errorf("%w: coordinator: %v", ErrBadRequest, err)
		}
	}
	for i, tx := range req.Transactions {
		if err := concord.ValidateTxID(tx.ID); err != nil {
			return fmt.Errorf("%w: transactions[%d].id: %v", ErrBadRequest, i, err)
		}
	}
	return nil
}

func (s *Server) checkIDs(ids []concord.TxID) error {
	if len(ids) == 0 {
		return fmt.Errorf("%w: empty batch: ids is empty", ErrBadRequest)
	}
	if len(ids) > s.opts.MaxBatch {
		return fmt.Errorf("%w: %d ids in one batch, at most %d", ErrBadRequest, len(ids), s.opts.MaxBatch)
	}
	for i, id := range ids {
		// The stored check: a COMMIT or ABORT may be for a transaction
		// prepared before ids made only of dots were refused (PREPAREs
		// are held to the strict one, so no new such id gets here).
		if err := concord.ValidateStoredTxID(id); err != nil {
			return fmt.Errorf("%w: ids[%d]: %v", ErrBadRequest, i, err)
		}
	}
	return nil
}
