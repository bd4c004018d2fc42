package participant

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/tpc"
	"github.com/concordtx/concord/wire"
)

// perform makes the call a asks for and classifies its result.
func (s *Server) perform(a tpc.ParticipantAction) tpc.ParticipantResult {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.CallTimeout)
	defer cancel()
	res := a.Result()
	var err error
	start := time.Now()
	defer func() { s.metrics.call(a.Kind, start, res.Err == tpc.PErrFailed) }()
	switch a.Kind {
	case tpc.ActPrepare:
		var r PrepareResult
		r, err = s.res.Prepare(ctx, a.ID, a.Payload)
		res.Vote, res.Reason = r.Vote, r.Reason
	case tpc.ActCommitOnePhase:
		res.Outcome, res.Reason, err = s.onePhase.CommitOnePhase(ctx, a.ID, a.Payload)
	case tpc.ActCommit:
		err = s.res.Commit(ctx, a.ID)
		if err == nil {
			s.resolved(a.ID, concord.OutcomeCommitted)
		}
	case tpc.ActAbort:
		err = s.res.Abort(ctx, a.ID)
		if err == nil {
			s.resolved(a.ID, concord.OutcomeAborted)
		}
	case tpc.ActQuery:
		res.Outcome, err = s.query(ctx, a)
		s.stats.queries.Add(1)
		if err != nil {
			s.stats.queryFailures.Add(1)
			s.log.Warn("in-doubt outcome query failed", "tx", a.ID, "err", err)
		} else {
			s.log.Info("in-doubt outcome query", "tx", a.ID, "outcome", res.Outcome)
		}
	default:
		err = fmt.Errorf("unknown action %d", a.Kind)
	}
	r := s.result(a, err)
	res.Err, res.ErrText = r.Err, r.ErrText
	return res
}

// result classifies the error of the call a asked for.
func (s *Server) result(a tpc.ParticipantAction, err error) tpc.ParticipantResult {
	res := a.Result()
	switch {
	case err == nil:
	case errors.Is(err, ErrUnknownTx):
		res.Err = tpc.PErrUnknownTx
	case errors.Is(err, ErrAlreadyDecided):
		res.Err = tpc.PErrAlreadyDecided
	default:
		res.Err, res.ErrText = tpc.PErrFailed, err.Error()
		if a.Kind != tpc.ActQuery {
			s.stats.callFailure.Add(1)
			s.log.Warn("resource call failed", "call", a.Kind.String(), "tx", a.ID, "err", err)
		}
	}
	return res
}

// resolved counts phase-2 calls made for transactions the in-doubt loop
// was asking about; it is only bookkeeping.
func (s *Server) resolved(id concord.TxID, o concord.Outcome) {
	if s.stats.queries.Load() == 0 && s.stats.callFailure.Load() == 0 {
		// Only an outcome query or a failed call counts in Queries (and
		// is counted here first): with neither, none was asked about.
		return
	}
	sh := s.shardOf(id)
	sh.mu.Lock()
	st, ok := sh.m.Lookup(id)
	sh.mu.Unlock()
	if !ok || st.Queries == 0 {
		return
	}
	if o == concord.OutcomeCommitted {
		s.stats.resolvedCommit.Add(1)
	} else {
		s.stats.resolvedAbort.Add(1)
	}
}

// query asks the coordinator for the outcome of a.ID.
func (s *Server) query(ctx context.Context, a tpc.ParticipantAction) (concord.Outcome, error) {
	base := a.Coordinator
	if base == "" {
		base = s.opts.Coordinator
	}
	if base == "" {
		return concord.OutcomePending, errors.New("no coordinator URL: the PREPARE named none and Options.Coordinator is empty")
	}
	if err := s.opts.checkCoordinator(base); err != nil {
		return concord.OutcomePending, fmt.Errorf("not asking: %v", err)
	}
	var resp wire.OutcomeResponse
	url := strings.TrimRight(base, "/") + wire.OutcomePath(a.ID)
	if err := wire.Do(ctx, s.opts.HTTPClient, http.MethodGet, url, nil, &resp); err != nil {
		return concord.OutcomePending, fmt.Errorf("ask %s: %w", url, err)
	}
	if resp.ID != "" && resp.ID != a.ID {
		return concord.OutcomePending, fmt.Errorf("ask %s: answer is about transaction %q", url, resp.ID)
	}
	return resp.Outcome, nil
}

// loop ticks the machines every TickInterval so that in-doubt transactions
// are asked about when due.
func (s *Server) loop() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.opts.Clock.After(s.opts.TickInterval):
		}
		now := s.opts.Clock.Now()
		for _, sh := range s.shards {
			s.step(sh, func(m *tpc.Participant) tpc.ParticipantReady { return m.Tick(now) })
		}
	}
}
