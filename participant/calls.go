package participant

import (
	"cmp"
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
		r, err = s.res.Prepare(ctx, a.ID, a.Payload, s.prepareInfo(a))
		res.Vote, res.Reason = r.Vote, r.Reason
	case tpc.ActCommitOnePhase:
		res.Outcome, res.Reason, err = s.onePhase.CommitOnePhase(ctx, a.ID, a.Payload, s.prepareInfo(a))
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

// query asks the coordinator of a.ID (the one its PREPARE named, kept by
// the resource across restarts) for its outcome.
func (s *Server) query(ctx context.Context, a tpc.ParticipantAction) (concord.Outcome, error) {
	ref := s.coordinatorRef(a.Coordinator)
	if ref.Identity != "" && ref.Identity != s.opts.CoordinatorIdentity {
		// Asking another identity could hear presumed abort from a
		// coordinator that never ran the transaction: stay in doubt.
		return concord.OutcomePending, fmt.Errorf(
			"the PREPARE came from coordinator identity %q but this participant now trusts %q (Options.CoordinatorIdentity): not asking; restore that identity to resolve it",
			ref.Identity, s.opts.CoordinatorIdentity)
	}
	base := ""
	if len(ref.URLs) > 0 {
		base = ref.URLs[0]
	}
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

// refEntry is a coordinator reference with its encoding, the key the
// participant machine carries (ParticipantAction.Coordinator).
type refEntry struct {
	url string // the PREPARE's coordinator field
	key string
	ref CoordinatorRef
}

// coordinatorKey returns the key for the coordinator of a PREPARE that
// named url (empty: Options.Coordinator), trusted as
// Options.CoordinatorIdentity.
func (s *Server) coordinatorKey(url string) string {
	if e := s.lastRef.Load(); e != nil && e.url == url {
		return e.key
	}
	ref := CoordinatorRef{Identity: s.opts.CoordinatorIdentity}
	if u := cmp.Or(url, s.opts.Coordinator); u != "" {
		ref.URLs = []string{u}
	}
	e := &refEntry{url: url, key: string(ref.Encode()), ref: ref}
	s.lastRef.Store(e)
	return e.key
}

// coordinatorRef decodes a key of coordinatorKey (or one a resource kept).
// A key that does not decode, written by nothing but this package, is
// taken as a bare URL.
func (s *Server) coordinatorRef(key string) CoordinatorRef {
	if e := s.lastRef.Load(); e != nil && e.key == key {
		return e.ref
	}
	ref, err := DecodeCoordinatorRef([]byte(key))
	if err != nil {
		return CoordinatorRef{URLs: []string{key}}
	}
	return ref
}

// prepareInfo is what the resource is told with prepare action a.
func (s *Server) prepareInfo(a tpc.ParticipantAction) PrepareInfo {
	return PrepareInfo{Deadline: a.Deadline, Coordinator: s.coordinatorRef(a.Coordinator)}
}
