package participant

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/concordtx/concord"
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
// and the late PREPARE refused, a COMMIT for an unknown transaction fails,
// an ABORT for a transaction committed in one phase fails with outcome
// committed, no two resource calls for one transaction run at once, and a
// prepared transaction left without a decision is resolved by asking the
// coordinator, forever, never by aborting on its own.
//
// Create it with NewServer, call Start (which recovers prepared transactions
// first), serve Handler, and Close when done. Its methods are safe for
// concurrent use.
type Server struct {
	opts     Options
	res      Resource
	onePhase OnePhaseResource
	shards   []*shard
	seed     maphash.Seed
	sem      chan struct{}
	log      *slog.Logger

	nextReq atomic.Uint64
	started atomic.Bool
	startMu sync.Mutex

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup // the in-doubt loop and every call in flight
	closeMu sync.RWMutex   // orders wg.Add against Close's wg.Wait
	closed  bool

	stats   serverStats
	metrics *metrics
}

type shard struct {
	mu      sync.Mutex
	m       *tpc.Participant
	waiting map[uint64]chan tpc.ParticipantReply
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
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, res: opts.Resource, seed: maphash.MakeSeed(), log: log,
		sem: make(chan struct{}, opts.MaxConcurrency)}
	s.onePhase, _ = opts.Resource.(OnePhaseResource)
	cfg := tpc.ParticipantConfig{
		OnePhase:     s.onePhase != nil,
		InDoubtAfter: opts.InDoubtAfter,
		QueryMin:     opts.QueryMin,
		QueryMax:     opts.QueryMax,
		Retain:       max(1, opts.Retain/opts.Shards),
	}
	s.shards = make([]*shard, opts.Shards)
	for i := range s.shards {
		s.shards[i] = &shard{m: tpc.NewParticipant(cfg), waiting: make(map[uint64]chan tpc.ParticipantReply)}
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
	byShard := make(map[*shard][]concord.TxID)
	for _, id := range ids {
		sh := s.shardOf(id)
		byShard[sh] = append(byShard[sh], id)
	}
	now := s.opts.Clock.Now()
	for sh, ids := range byShard {
		s.step(sh, func(m *tpc.Participant) tpc.ParticipantReady { return m.Recovered(ids, now) })
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

// goTracked runs fn in a goroutine Close waits for, unless the server is
// closed.
func (s *Server) goTracked(fn func()) bool {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
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

// step runs fn on sh's machine under its lock, then delivers the replies
// and starts the actions of the Ready it returned.
func (s *Server) step(sh *shard, fn func(m *tpc.Participant) tpc.ParticipantReady) {
	sh.mu.Lock()
	rd := fn(sh.m)
	type delivery struct {
		ch chan tpc.ParticipantReply
		r  tpc.ParticipantReply
	}
	var out []delivery
	for _, r := range rd.Replies {
		if ch, ok := sh.waiting[r.Req]; ok {
			delete(sh.waiting, r.Req)
			out = append(out, delivery{ch, r})
		}
	}
	sh.mu.Unlock()
	for _, d := range out {
		d.ch <- d.r // buffered: never blocks
	}
	for _, a := range rd.Actions {
		s.launch(sh, a)
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

// request registers a waiter for request number req on sh and steps fn.
func (s *Server) request(sh *shard, req uint64, fn func(m *tpc.Participant) tpc.ParticipantReady) chan tpc.ParticipantReply {
	ch := make(chan tpc.ParticipantReply, 1)
	s.step(sh, func(m *tpc.Participant) tpc.ParticipantReady {
		sh.waiting[req] = ch
		return fn(m)
	})
	return ch
}

func (s *Server) forget(sh *shard, req uint64) {
	sh.mu.Lock()
	delete(sh.waiting, req)
	sh.mu.Unlock()
}

type pendingReq struct {
	sh  *shard
	req uint64
	ch  chan tpc.ParticipantReply
}

// wait collects the replies of reqs in order, or gives up when ctx or the
// server ends.
func (s *Server) wait(ctx context.Context, reqs []pendingReq) ([]tpc.ParticipantReply, error) {
	out := make([]tpc.ParticipantReply, len(reqs))
	for i, p := range reqs {
		select {
		case r := <-p.ch:
			out[i] = r
		case <-ctx.Done():
			for _, q := range reqs[i:] {
				s.forget(q.sh, q.req)
			}
			return nil, ctx.Err()
		case <-s.ctx.Done():
			for _, q := range reqs[i:] {
				s.forget(q.sh, q.req)
			}
			return nil, ErrClosed
		}
	}
	return out, nil
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
	coord := req.Coordinator
	if coord == "" {
		coord = s.opts.Coordinator
	}
	now := s.opts.Clock.Now()
	reqs := make([]pendingReq, len(req.Transactions))
	for i, tx := range req.Transactions {
		s.stats.prepares.Add(1)
		sh, n := s.shardOf(tx.ID), s.nextReq.Add(1)
		reqs[i] = pendingReq{sh, n, s.request(sh, n, func(m *tpc.Participant) tpc.ParticipantReady {
			return m.Prepare(n, tx.ID, tx.Payload, tx.OnePhase, coord, now)
		})}
	}
	replies, err := s.wait(ctx, reqs)
	if err != nil {
		return wire.PrepareResponse{}, err
	}
	resp := wire.PrepareResponse{Votes: make([]wire.VoteReply, len(replies))}
	for i, r := range replies {
		resp.Votes[i] = wire.VoteReply{ID: r.ID, Vote: r.Vote, Reason: r.Reason, Outcome: r.Outcome}
	}
	return resp, nil
}

// Commit handles a COMMIT request for ids.
func (s *Server) Commit(ctx context.Context, ids []concord.TxID) (wire.DecisionResponse, error) {
	return s.decide(ctx, ids, true)
}

// Abort handles an ABORT request for ids.
func (s *Server) Abort(ctx context.Context, ids []concord.TxID) (wire.DecisionResponse, error) {
	return s.decide(ctx, ids, false)
}

func (s *Server) decide(ctx context.Context, ids []concord.TxID, commit bool) (wire.DecisionResponse, error) {
	if err := s.ready(); err != nil {
		return wire.DecisionResponse{}, err
	}
	if err := s.checkIDs(ids); err != nil {
		return wire.DecisionResponse{}, err
	}
	if commit {
		s.stats.commitReqs.Add(1)
	} else {
		s.stats.abortReqs.Add(1)
	}
	now := s.opts.Clock.Now()
	reqs := make([]pendingReq, len(ids))
	for i, id := range ids {
		sh, n := s.shardOf(id), s.nextReq.Add(1)
		if commit {
			s.stats.commits.Add(1)
			reqs[i] = pendingReq{sh, n, s.request(sh, n, func(m *tpc.Participant) tpc.ParticipantReady { return m.Commit(n, id, now) })}
		} else {
			s.stats.aborts.Add(1)
			reqs[i] = pendingReq{sh, n, s.request(sh, n, func(m *tpc.Participant) tpc.ParticipantReady { return m.Abort(n, id, now) })}
		}
	}
	replies, err := s.wait(ctx, reqs)
	if err != nil {
		return wire.DecisionResponse{}, err
	}
	resp := wire.DecisionResponse{Acknowledged: []concord.TxID{}}
	for _, r := range replies {
		if r.Kind == tpc.ReplyAck {
			resp.Acknowledged = append(resp.Acknowledged, r.ID)
			continue
		}
		resp.Failed = append(resp.Failed, wire.TxFailure{ID: r.ID, Reason: r.Reason, Outcome: r.Outcome})
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
		if err := checkCoordinatorURL(req.Coordinator); err != nil {
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
		if err := concord.ValidateTxID(id); err != nil {
			return fmt.Errorf("%w: ids[%d]: %v", ErrBadRequest, i, err)
		}
	}
	return nil
}
