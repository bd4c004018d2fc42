package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/tpc"
	"github.com/concordtx/concord/wire"
)

// Errors of the client API, compared with errors.Is.
var (
	// ErrBadRequest: the request names no branch, an unknown participant, a
	// bad id or timeout, and so on; the message says which.
	ErrBadRequest = errors.New("bad request")
	// ErrConflict: the id was already used for a different request.
	ErrConflict = errors.New("transaction id already used for a different request")
	// ErrNotFound: no transaction of that id is known.
	ErrNotFound = errors.New("transaction not found")
	// ErrForgotten, which wraps ErrNotFound: the coordinator holds no
	// record of the id, live or finished inside the idempotency window. It
	// was never submitted, or finished longer ago than the window; which of
	// the two cannot be told. Over HTTP: 404 with state "forgotten".
	ErrForgotten = fmt.Errorf("%w: not remembered (never submitted, or finished longer ago than the idempotency window)", ErrNotFound)
	// ErrUnavailable: the coordinator has stopped (closing, or halted by a
	// log failure) and takes no more work.
	ErrUnavailable = errors.New("coordinator unavailable")
	// ErrClosed is the halt reason of a closed coordinator.
	ErrClosed = errors.New("coordinator closed")
	// ErrOverloaded: Options.MaxLive transactions are live; the submission
	// is refused (503 with Retry-After) and may be retried later.
	ErrOverloaded = errors.New("coordinator overloaded")
)

func (c *Coordinator) unavailable() error {
	if err := c.Halted(); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// Submit runs the transaction req describes and returns its outcome once
// the decision is durable. A request with the id of a known transaction
// runs nothing: with the same content it returns that transaction's outcome
// (waiting for it if it is still running), with other content ErrConflict.
// A transaction that has no outcome AnswerGrace past its deadline (a
// one-phase participant that does not answer) returns OutcomePending. If
// ctx ends first, Submit returns its error and the transaction goes on.
func (c *Coordinator) Submit(ctx context.Context, req wire.SubmitRequest) (wire.SubmitResponse, error) {
	r, err := c.submit(ctx, req)
	if err != nil {
		return wire.SubmitResponse{}, err
	}
	return *r, nil
}

// submit is Submit answering with a response that must not be changed:
// it may be the one the transaction holds for every client that asks.
func (c *Coordinator) submit(ctx context.Context, req wire.SubmitRequest) (*wire.SubmitResponse, error) {
	if err := c.unavailable(); err != nil {
		return nil, err
	}
	var room [4]tpc.Branch // a usual transaction's branches, on the stack: Begin copies them
	branches, err := c.checkRequest(&req, room[:0])
	if err != nil {
		return nil, err
	}
	d := requestDigest(&req)
	// An id the client chose may come again after a restart, so its
	// outcome must outlive a power loss; a generated one cannot.
	resubmittable := req.ID != ""
	if !resubmittable {
		req.ID = newTxID()
	}
	now := c.clock.Now()
	timeout := c.opts.DefaultTimeout
	if req.TimeoutMS > 0 {
		timeout = time.Duration(req.TimeoutMS) * time.Millisecond
	}
	owner := ownerOf(ctx)
	if len(owner) > MaxOwnerLen {
		return nil, fmt.Errorf("%w: the identity of the submitter has %d bytes, at most %d are kept", ErrBadRequest, len(owner), MaxOwnerLen)
	}
	t := &txState{id: req.ID, digest: d, done: make(chan struct{}), deadline: now.Add(timeout),
		traceparent: wire.TraceparentFrom(ctx), admitted: now.UnixNano(), owner: owner, chosen: resubmittable}
	t.preparing.Store(true)
	t.written.Store(now.UnixNano())
	t.mu.Lock()
	// A generated id is new by construction: only one a client chose is
	// looked up among the finished.
	old, fin, ok, err := c.table.admitBounded(t, int64(c.opts.MaxLive), resubmittable)
	if err != nil {
		t.mu.Unlock()
		return nil, fmt.Errorf("%w: read the remembered transactions: %v", ErrUnavailable, err)
	}
	if !ok {
		t.mu.Unlock()
		c.stats.overloaded.Add(1)
		return nil, fmt.Errorf("%w: %d transactions in flight, the most allowed (MaxLive); retry later", ErrOverloaded, c.opts.MaxLive)
	}
	if old != nil || fin != nil {
		t.mu.Unlock()
		if err := c.checkOwner(ctx, req.ID, old, fin); err != nil {
			return nil, err
		}
		return c.resubmitted(ctx, &req, d, old, fin)
	}
	c.stats.submitted.Add(1)
	t.answersLeft.Store(int32(len(branches)))
	var rd tpc.Ready
	if resubmittable { // called directly, not through a variable, so that branches can stay on the stack
		t.core, rd = tpc.BeginResubmittable(c.cfg, req.ID, branches, now, t.deadline)
	} else {
		t.core, rd = tpc.Begin(c.cfg, req.ID, branches, now, t.deadline)
	}
	t.noteLocked(now, evSubmitted, "", noValue, "")
	c.performLocked(t, rd, len(rd.Records) > 0) // t holds the request's id, digest and owner
	t.mu.Unlock()
	return c.wait(ctx, t)
}

// resubmitted answers a request whose id is already known.
func (c *Coordinator) resubmitted(ctx context.Context, req *wire.SubmitRequest, d digest, live *txState, fin *finishedTx) (*wire.SubmitResponse, error) {
	if live != nil {
		if live.digest != (digest{}) && !sameDigest(live.digest, live.legacy, req, d) {
			return nil, fmt.Errorf("%w: %s", ErrConflict, req.ID)
		}
		return c.wait(ctx, live)
	}
	same := sameDigest(fin.digest, fin.legacy, req, d)
	if fin.digest == (digest{}) {
		// Recovered without its request record: the participants must match.
		same = len(fin.status.Branches) == len(req.Branches)
		for i := 0; same && i < len(req.Branches); i++ {
			same = fin.status.Branches[i].Participant == req.Branches[i].Participant
		}
	}
	if !same {
		return nil, fmt.Errorf("%w: %s", ErrConflict, req.ID)
	}
	r := responseOf(fin.status)
	return &r, nil
}

// sameDigest reports whether req, of digest d, is the request whose digest
// is kept (a requestDigestV1 if legacy).
func sameDigest(kept digest, legacy bool, req *wire.SubmitRequest, d digest) bool {
	if legacy {
		return requestDigestV1(req) == kept
	}
	return kept == d
}

// wait returns t's outcome once reported: the response t holds, which
// must not be changed.
func (c *Coordinator) wait(ctx context.Context, t *txState) (*wire.SubmitResponse, error) {
	if r := t.result.Load(); r != nil {
		return r, nil
	}
	late := make(chan struct{})
	timer := c.clock.AfterFunc(max(0, t.deadline.Add(c.opts.AnswerGrace).Sub(c.clock.Now())), func() { close(late) })
	defer timer.Stop()
	select {
	case <-t.done:
		return t.result.Load(), nil
	case <-c.haltCh:
		return nil, c.unavailable()
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-late:
		if r := t.result.Load(); r != nil {
			return r, nil
		}
		return &wire.SubmitResponse{ID: t.id, Outcome: concord.OutcomePending,
			Reason: "no outcome yet; ask " + wire.TransactionPath(t.id)}, nil
	}
}

// checkRequest reports what is wrong with req, wrapping ErrBadRequest, or
// returns its branches for tpc, appended to room.
func (c *Coordinator) checkRequest(req *wire.SubmitRequest, room []tpc.Branch) ([]tpc.Branch, error) {
	bad := func(format string, args ...any) ([]tpc.Branch, error) {
		return nil, fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
	}
	if req.ID != "" {
		if err := concord.ValidateTxID(req.ID); err != nil {
			return bad("id: %v", err)
		}
	}
	if req.TimeoutMS < 0 {
		return bad("timeout_ms %d is negative", req.TimeoutMS)
	}
	if maxMS := c.opts.MaxTimeout.Milliseconds(); req.TimeoutMS > maxMS {
		return bad("timeout_ms %d is above the maximum %d", req.TimeoutMS, maxMS)
	}
	if len(req.Branches) == 0 {
		return bad("no branches: a transaction needs at least one participant")
	}
	if len(req.Branches) > c.opts.MaxBranches {
		return bad("%d branches, at most %d", len(req.Branches), c.opts.MaxBranches)
	}
	for i, b := range req.Branches {
		if b.Participant == "" {
			return bad("branch %d: participant is empty", i)
		}
		if len(b.Payload) > c.opts.MaxPayloadBytes {
			return bad("branch %d (%s): payload of %d bytes, at most %d", i, b.Participant, len(b.Payload), c.opts.MaxPayloadBytes)
		}
		if c.known != nil && !c.known[b.Participant] {
			return bad("branch %d: unknown participant %q (known: %s)", i, b.Participant, strings.Join(c.participantNames(), ", "))
		}
		for j, e := range req.Branches[:i] { // at most MaxBranches: cheaper than a map
			if e.Participant == b.Participant {
				return bad("participant %q appears twice (branches %d and %d)", b.Participant, j, i)
			}
		}
	}
	branches := room[:0]
	for _, b := range req.Branches {
		branches = append(branches, tpc.Branch{Participant: b.Participant, Payload: b.Payload})
	}
	id := req.ID
	if id == "" {
		id = "x"
	}
	if err := tpc.CheckBegin(id, branches); err != nil {
		return bad("%v", err)
	}
	return branches, nil
}

func (c *Coordinator) participantNames() []string {
	names := make([]string, 0, len(c.known))
	for n := range c.known {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// newTxID returns a fresh random transaction id.
func newTxID() concord.TxID {
	var b [12]byte
	rand.Read(b[:])
	return concord.TxID("tx-" + hex.EncodeToString(b[:]))
}

// Status returns the state of transaction id, or ErrNotFound.
func (c *Coordinator) Status(id concord.TxID) (wire.TxStatus, error) {
	return c.status(context.Background(), id)
}

// status is Status for the caller in ctx: ErrForbidden for another
// client's transaction, decided on the object looked up.
func (c *Coordinator) status(ctx context.Context, id concord.TxID) (wire.TxStatus, error) {
	if err := concord.ValidateTxID(id); err != nil {
		return wire.TxStatus{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	t, fin, err := c.table.lookup(id)
	switch {
	case err != nil:
		return wire.TxStatus{}, fmt.Errorf("%w: read the remembered transactions: %v", ErrUnavailable, err)
	case t != nil:
		return c.liveStatusFor(ctx, t)
	case fin != nil:
		if err := c.authorize(ctx, id, fin.owner); err != nil {
			return wire.TxStatus{}, err
		}
		return statusOf(fin.status), nil
	}
	return wire.TxStatus{}, fmt.Errorf("%w: %s (window %v)", ErrForgotten, id, c.opts.IdempotencyWindow)
}

func (c *Coordinator) liveStatus(t *txState) (wire.TxStatus, error) {
	return c.liveStatusFor(context.Background(), t)
}

func (c *Coordinator) liveStatusFor(ctx context.Context, t *txState) (wire.TxStatus, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.core == nil {
		return wire.TxStatus{}, fmt.Errorf("%w: %s", ErrNotFound, t.id)
	}
	if err := c.authorize(ctx, t.id, t.owner); err != nil {
		return wire.TxStatus{}, err
	}
	st := statusOf(t.core.Status())
	if t.result.Load() == nil && st.State != "preparing" {
		// Decided but not yet durable: not yet reportable.
		st.State = "preparing"
	}
	return st, nil
}

// Outcome answers a participant in doubt: committed once the commit
// decision is durable, aborted for an aborted transaction or one the
// coordinator has no record of (presumed abort), pending otherwise. See
// OutcomeOf for whether it had a record.
func (c *Coordinator) Outcome(id concord.TxID) (concord.Outcome, error) {
	o, _, err := c.OutcomeOf(id)
	return o, err
}

// OutcomeOf is Outcome also reporting whether the coordinator had no
// record of id (forgotten: never submitted, or finished longer ago than the
// idempotency window). A forgotten id's outcome is aborted for a
// participant in doubt, by presumed abort: a transaction is forgotten only
// once finished, which for a commit means every yes voter acknowledged it,
// so no participant is in doubt about a forgotten commit. A client must not
// read it as aborted: its real outcome is unknown.
func (c *Coordinator) OutcomeOf(id concord.TxID) (o concord.Outcome, forgotten bool, err error) {
	return c.outcome(context.Background(), id)
}

// outcome is OutcomeOf for the caller in ctx (see authorizeOutcome).
func (c *Coordinator) outcome(ctx context.Context, id concord.TxID) (o concord.Outcome, forgotten bool, err error) {
	if err := c.unavailable(); err != nil {
		return concord.OutcomePending, false, err
	}
	if err := concord.ValidateTxID(id); err != nil {
		return concord.OutcomePending, false, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	t, fin, err := c.table.lookup(id)
	switch {
	case err != nil:
		return concord.OutcomePending, false, fmt.Errorf("%w: read the remembered transactions: %v", ErrUnavailable, err)
	case t != nil:
		t.mu.Lock()
		err := c.authorizeOutcome(ctx, id, t.owner, func() []string {
			if t.core == nil {
				return nil
			}
			return branchNames(t.core.Status())
		})
		t.mu.Unlock()
		if err != nil {
			return concord.OutcomePending, false, err
		}
		if r := t.result.Load(); r != nil {
			return r.Outcome, false, nil
		}
		return concord.OutcomePending, false, nil
	case fin != nil:
		if err := c.authorizeOutcome(ctx, id, fin.owner, func() []string { return branchNames(fin.status) }); err != nil {
			return concord.OutcomePending, false, err
		}
		if fin.status.Outcome != concord.OutcomePending {
			return fin.status.Outcome, false, nil
		}
	}
	return concord.OutcomeAborted, true, nil
}

func branchNames(s tpc.Status) []string {
	names := make([]string, len(s.Branches))
	for i, b := range s.Branches {
		names[i] = b.Participant
	}
	return names
}

// List filters for List.
const (
	ListPending   = "pending"   // preparing, or waiting for acknowledgements
	ListCommitted = "committed" // live or finished
	ListAborted   = "aborted"
	ListAll       = "all"
	MaxListLimit  = 10_000
)

// List returns up to limit transactions in state (ListPending,
// ListCommitted, ListAborted or ListAll), sorted by id.
func (c *Coordinator) List(state string, limit int) (wire.TxList, error) {
	return c.list(state, listFilter{}, limit)
}

// listFilter restricts a list to transactions with a branch at participant
// (unless ""), and to those owner submitted (when byOwner).
type listFilter struct {
	participant string
	owner       string
	byOwner     bool
}

func (f listFilter) keep(owner string, st *wire.TxStatus) bool {
	if f.byOwner && owner != f.owner {
		return false
	}
	return f.participant == "" || slices.ContainsFunc(st.Branches, func(b wire.BranchStatus) bool { return b.Participant == f.participant })
}

// list is List of the transactions f keeps: they are filtered before the
// limit applies, so that a client's own older transactions are not crowded
// out by other clients' newer ones.
func (c *Coordinator) list(state string, f listFilter, limit int) (wire.TxList, error) {
	switch state {
	case ListPending, ListCommitted, ListAborted, ListAll:
	default:
		return wire.TxList{}, fmt.Errorf("%w: state %q: use pending, committed, aborted or all", ErrBadRequest, state)
	}
	if limit < 1 || limit > MaxListLimit {
		return wire.TxList{}, fmt.Errorf("%w: limit %d is outside 1..%d", ErrBadRequest, limit, MaxListLimit)
	}
	var out []wire.TxStatus
	live := c.table.liveList()
	seen := make(map[concord.TxID]bool, len(live))
	for _, t := range live {
		st, err := c.liveStatus(t)
		if err != nil {
			continue
		}
		st.Done = false
		seen[st.ID] = true
		if !f.keep(t.owner, &st) {
			continue
		}
		if state == ListPending || state == ListAll || st.State == state {
			out = append(out, st)
		}
	}
	if state != ListPending {
		// Live transactions are read first, so one that finished meanwhile
		// shows in both lists: the live status stands.
		now := c.clock.Now()
		for _, fin := range c.table.finishedList() {
			st := statusOf(fin.status)
			if seen[st.ID] || !c.table.store.fresh(fin, now) || !f.keep(fin.owner, &st) {
				continue
			}
			if state == ListAll || st.State == state {
				out = append(out, st)
			}
		}
	}
	slices.SortFunc(out, func(a, b wire.TxStatus) int { return strings.Compare(string(a.ID), string(b.ID)) })
	if len(out) > limit {
		out = out[:limit]
	}
	if out == nil {
		out = []wire.TxStatus{}
	}
	return wire.TxList{Transactions: out}, nil
}

// statusOf converts a tpc status for the wire.
func statusOf(s tpc.Status) wire.TxStatus {
	st := wire.TxStatus{ID: s.TxID, State: s.Outcome.String(), Reason: s.Reason, Done: s.Done,
		Branches: make([]wire.BranchStatus, len(s.Branches))}
	if s.Outcome == concord.OutcomePending {
		st.State = "preparing"
	}
	for i, b := range s.Branches {
		st.Branches[i] = wire.BranchStatus{Participant: b.Participant, Vote: b.Vote, Reason: b.Reason,
			Acknowledged: b.Acknowledged, Attempts: b.Attempts, LastError: b.LastError, NextRetry: b.NextRetry}
	}
	return st
}

// responseOf is the submit answer of a finished transaction.
func responseOf(s tpc.Status) wire.SubmitResponse {
	r := wire.SubmitResponse{ID: s.TxID, Outcome: s.Outcome, Reason: s.Reason, Branches: make([]wire.BranchResult, len(s.Branches))}
	for i, b := range s.Branches {
		r.Branches[i] = wire.BranchResult{Participant: b.Participant, Vote: b.Vote, Reason: b.Reason}
	}
	return r
}
