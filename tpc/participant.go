package tpc

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/concordtx/concord"
)

// Participant is the participant side of two-phase commit as a pure state
// machine over every transaction one participant takes part in. Events are
// requests from the coordinator (Prepare, Commit, Abort, each tagged with a
// request number the driver chooses), results of the calls it asked for
// (Done), the passage of time (Tick) and the transactions a resource lists as
// prepared after a restart (Recovered). Each returns a ParticipantReady.
//
// The machine owns the protocol rules: a duplicate request is answered like
// the first; an ABORT that arrives before its PREPARE is remembered and the
// late PREPARE is refused; a COMMIT for a transaction the resource does not
// know is a failure (past its forget time, see CommitBy, an acknowledgement); an ABORT for a transaction committed in one phase is a
// failure carrying outcome committed; at most one resource call per
// transaction is in flight, and requests that arrive meanwhile wait for it.
// After a yes vote it never aborts on its own: with no decision after
// InDoubtAfter it asks the coordinator, with capped exponential backoff,
// until it learns the outcome.
//
// A Participant is not safe for concurrent use; a driver may shard
// transactions over several machines by id.
type Participant struct {
	cfg ParticipantConfig
	txs map[concord.TxID]*ptx
	// prepared is the in-doubt set Tick scans: the transactions in state
	// PartPrepared, in no order. Each knows its index (ptx.prepIdx), so
	// joining and leaving it needs no hashing.
	prepared []*ptx
	// decided is a ring of the last Retain terminal transactions; head is
	// the oldest once the ring is full.
	decided []*ptx
	head    int
	// actSlab and repSlab are carved into the one-element Actions and
	// Replies of the Readies returned, so that a step does not allocate
	// each one on its own. A piece handed out is never written again.
	actSlab []ParticipantAction
	repSlab []ParticipantReply
}

// slabLen is how many Ready elements are allocated at once.
const slabLen = 64

type waitOp uint8

const (
	waitPrepare waitOp = iota + 1
	waitCommit
	waitAbort
)

type waiter struct {
	req uint64
	op  waitOp
}

type ptx struct {
	// id, owner and waiters come first, together: forgetting a decided
	// transaction, long after it was last used, reads only them.
	id concord.TxID
	// owner is the machine whose table holds the transaction, nil once it
	// is dropped from it: a result naming this ptx (ParticipantAction.Result)
	// is then looked up by id.
	owner   *Participant
	waiters []waiter
	// The one-byte fields and prepIdx are together, to keep the struct
	// (retained for every decided transaction) small.
	state      ParticipantState
	onePhase   bool
	known      bool // the resource has (or had) this transaction prepared
	selfAbort  bool // the abort in flight (or failed) was started by the participant after a failed call
	uncertain  bool // a failed call left it unknown whether the resource holds it
	retryAbort bool // while prepared, Tick retries the abort instead of asking the coordinator
	querying   bool
	pending    concord.Outcome // a decision that arrived while a call was in flight
	vote       concord.Vote
	prepIdx    int32 // index in Participant.prepared plus one; zero when not in it

	coordinator string
	deadline    time.Time       // the prepare's, for the resource call
	forgetAt    time.Time       // a COMMIT's: past it, no record means committed and forgotten (CommitBy)
	payload     json.RawMessage // latest prepare payload, kept until the transaction is decided
	reason      string
	preparedAt  time.Time
	nextQuery   time.Time
	queries     int
	lastErr     string
	waitBuf     [1]waiter // waiters' first backing array: there is seldom more than one
}

// add enters a new transaction for id, which has none, in the table.
func (p *Participant) add(id concord.TxID) *ptx {
	t := &ptx{id: id, owner: p}
	t.waiters = t.waitBuf[:0]
	p.txs[id] = t
	return t
}

// drop removes t from the table.
func (p *Participant) drop(t *ptx) {
	delete(p.txs, t.id)
	t.owner = nil
}

// NewParticipant returns an empty participant machine. Zero fields of cfg
// take their value from DefaultParticipantConfig.
func NewParticipant(cfg ParticipantConfig) *Participant {
	d := DefaultParticipantConfig
	if cfg.InDoubtAfter <= 0 {
		cfg.InDoubtAfter = d.InDoubtAfter
	}
	if cfg.QueryMin <= 0 {
		cfg.QueryMin = d.QueryMin
	}
	if cfg.QueryMax <= 0 {
		cfg.QueryMax = d.QueryMax
	}
	if cfg.QueryMax < cfg.QueryMin {
		cfg.QueryMax = cfg.QueryMin
	}
	if cfg.Retain <= 0 {
		cfg.Retain = d.Retain
	}
	return &Participant{cfg: cfg, txs: make(map[concord.TxID]*ptx)}
}

// addAction appends a to rd.Actions, taking the first element from the
// slab.
func (p *Participant) addAction(rd *ParticipantReady, a ParticipantAction) {
	if rd.Actions == nil {
		if len(p.actSlab) == 0 {
			p.actSlab = make([]ParticipantAction, slabLen)
		}
		// Capacity one: an append by the caller cannot reach the
		// next piece.
		rd.Actions = p.actSlab[:0:1]
		p.actSlab = p.actSlab[1:]
	}
	rd.Actions = append(rd.Actions, a)
}

// addReply appends r to rd.Replies, taking the first element from the
// slab.
func (p *Participant) addReply(rd *ParticipantReady, r ParticipantReply) {
	if rd.Replies == nil {
		if len(p.repSlab) == 0 {
			p.repSlab = make([]ParticipantReply, slabLen)
		}
		rd.Replies = p.repSlab[:0:1]
		p.repSlab = p.repSlab[1:]
	}
	rd.Replies = append(rd.Replies, r)
}

// Prepare handles a PREPARE (one-phase when onePhase is set) for id with
// request number req. coordinator names the coordinator to ask if the
// transaction is left in doubt (see ParticipantAction.Coordinator).
func (p *Participant) Prepare(req uint64, id concord.TxID, payload json.RawMessage, onePhase bool, coordinator string, now time.Time) ParticipantReady {
	return p.PrepareBy(req, id, payload, onePhase, coordinator, time.Time{}, now)
}

// PrepareBy is Prepare for a PREPARE that carries the transaction's
// deadline (zero: none), which the prepare action passes on to the
// resource.
func (p *Participant) PrepareBy(req uint64, id concord.TxID, payload json.RawMessage, onePhase bool, coordinator string, deadline, now time.Time) ParticipantReady {
	var rd ParticipantReady
	t := p.txs[id]
	if t == nil {
		// Only a resource that commits in one step may decide alone.
		t = p.add(id)
		t.onePhase, t.coordinator, t.payload = onePhase && p.cfg.OnePhase, coordinator, payload
		t.deadline = deadline
		t.waiters = append(t.waiters, waiter{req, waitPrepare})
		p.startPrepare(t, &rd)
		return rd
	}
	if t.coordinator == "" {
		t.coordinator = coordinator
	}
	if !t.state.Terminal() && t.payload == nil {
		t.payload = payload
		t.deadline = deadline
	}
	t.waiters = append(t.waiters, waiter{req, waitPrepare})
	p.answer(t, &rd)
	return rd
}

// Commit handles a COMMIT for id with request number req.
func (p *Participant) Commit(req uint64, id concord.TxID, now time.Time) ParticipantReady {
	return p.decide(req, id, concord.OutcomeCommitted, time.Time{})
}

// CommitBy is Commit for a COMMIT after which, from forgetAt on (zero:
// never), the resource may have forgotten the transaction: the driver
// computes it from the transaction's deadline the COMMIT carries (its
// deadline plus the clock skew allowance). A COMMIT for a transaction
// the resource holds no record of, whose call ends after forgetAt, is
// acknowledged with ParticipantReply.Forgotten set: a COMMIT goes only to
// a participant that voted yes, which keeps its prepared state until the
// decision, so it committed and has since forgotten. Before forgetAt, or
// without it, no record stays a failure.
func (p *Participant) CommitBy(req uint64, id concord.TxID, forgetAt, now time.Time) ParticipantReady {
	return p.decide(req, id, concord.OutcomeCommitted, forgetAt)
}

// Abort handles an ABORT for id with request number req.
func (p *Participant) Abort(req uint64, id concord.TxID, now time.Time) ParticipantReady {
	return p.decide(req, id, concord.OutcomeAborted, time.Time{})
}

func (p *Participant) decide(req uint64, id concord.TxID, o concord.Outcome, forgetAt time.Time) ParticipantReady {
	var rd ParticipantReady
	op := waitCommit
	if o == concord.OutcomeAborted {
		op = waitAbort
	}
	t := p.txs[id]
	if t != nil && !t.state.Terminal() && !forgetAt.IsZero() && forgetAt.After(t.forgetAt) {
		t.forgetAt = forgetAt
	}
	if t == nil {
		// Unknown here: the resource may still know it (after a restart, or
		// once forgotten from memory). It answers.
		t = p.add(id)
		t.forgetAt = forgetAt
		t.waiters = append(t.waiters, waiter{req, op})
		p.startDecision(t, o, &rd)
		return rd
	}
	t.waiters = append(t.waiters, waiter{req, op})
	switch t.state {
	case PartPrepared:
		p.startDecision(t, o, &rd)
	case PartPreparing, PartCommitting, PartAborting:
		if t.pending == concord.OutcomePending {
			t.pending = o
		}
	}
	p.answer(t, &rd)
	return rd
}

func (p *Participant) startPrepare(t *ptx, rd *ParticipantReady) {
	p.setState(t, PartPreparing)
	kind := ActPrepare
	if t.onePhase && p.cfg.OnePhase {
		kind = ActCommitOnePhase
	}
	p.addAction(rd, ParticipantAction{Kind: kind, ID: t.id, Payload: t.payload, Coordinator: t.coordinator, Deadline: t.deadline, tx: t})
}

func (p *Participant) startDecision(t *ptx, o concord.Outcome, rd *ParticipantReady) {
	t.querying = false
	if o == concord.OutcomeCommitted {
		p.setState(t, PartCommitting)
		p.addAction(rd, ParticipantAction{Kind: ActCommit, ID: t.id, tx: t})
		return
	}
	p.setState(t, PartAborting)
	p.addAction(rd, ParticipantAction{Kind: ActAbort, ID: t.id, tx: t})
}

// Done reports the result of an action. A result for a transaction with no
// such call in flight is ignored.
func (p *Participant) Done(res ParticipantResult, now time.Time) ParticipantReady {
	var rd ParticipantReady
	t := res.tx
	if t == nil || t.owner != p || t.id != res.ID {
		// Not made by ParticipantAction.Result, or its transaction has
		// left the table since: find the one the table holds now.
		t = p.txs[res.ID]
	}
	if t == nil {
		return rd
	}
	switch res.Kind {
	case ActPrepare:
		if t.state == PartPreparing {
			p.prepareDone(t, res, now, &rd)
		}
	case ActCommitOnePhase:
		if t.state == PartPreparing {
			p.onePhaseDone(t, res, now, &rd)
		}
	case ActCommit:
		if t.state == PartCommitting {
			p.commitDone(t, res, now, &rd)
		}
	case ActAbort:
		if t.state == PartAborting {
			p.abortDone(t, res, now, &rd)
		}
	case ActQuery:
		if t.state == PartPrepared && t.querying {
			p.queryDone(t, res, now, &rd)
		}
	}
	// Only unsettled drops a transaction during a step, leaving it
	// PartUnknown; every transaction the map holds has a later state.
	if t.state != PartUnknown {
		p.answer(t, &rd)
	}
	return rd
}

func errText(res ParticipantResult) string {
	if res.ErrText != "" {
		return res.ErrText
	}
	switch res.Err {
	case PErrUnknownTx:
		return "unknown transaction"
	case PErrAlreadyDecided:
		return "already decided"
	}
	return "failed"
}

func (p *Participant) prepareDone(t *ptx, res ParticipantResult, now time.Time, rd *ParticipantReady) {
	if res.Err == PErrNone && res.Vote != concord.VoteYes && res.Vote != concord.VoteNo && res.Vote != concord.VoteReadOnly {
		res.Err, res.ErrText = PErrFailed, fmt.Sprintf("resource answered vote %s", res.Vote)
	}
	if res.Err != PErrNone {
		// Vote no, and clean up whatever the failed call may have left:
		// a no voter aborts on its own (the coordinator sends it nothing).
		t.lastErr = "prepare: " + errText(res)
		t.vote, t.reason = concord.VoteNo, "prepare failed: "+errText(res)
		t.selfAbort, t.known = true, true
		p.startDecision(t, concord.OutcomeAborted, rd)
		return
	}
	t.vote, t.reason = res.Vote, res.Reason
	switch res.Vote {
	case concord.VoteNo:
		p.setState(t, PartAborted)
	case concord.VoteReadOnly:
		p.setState(t, PartReadOnly)
	case concord.VoteYes:
		t.known = true
		switch {
		case t.onePhase:
			// The resource cannot commit in one step: prepare, then commit.
			p.startDecision(t, concord.OutcomeCommitted, rd)
		case t.pending != concord.OutcomePending:
			o := t.pending
			t.pending = concord.OutcomePending
			t.preparedAt = now
			p.startDecision(t, o, rd)
		default:
			t.preparedAt = now
			t.nextQuery = now.Add(p.cfg.InDoubtAfter)
			p.setState(t, PartPrepared)
		}
	}
}

func (p *Participant) onePhaseDone(t *ptx, res ParticipantResult, now time.Time, rd *ParticipantReady) {
	if res.Err == PErrNone && res.Outcome == concord.OutcomeCommitted {
		t.vote, t.reason = concord.VoteYes, res.Reason
		p.setState(t, PartCommitted)
		return
	}
	if res.Err == PErrNone && res.Outcome == concord.OutcomeAborted {
		t.vote, t.reason = concord.VoteNo, res.Reason
		p.setState(t, PartAborted)
		return
	}
	if res.Err == PErrNone {
		res.Err, res.ErrText = PErrFailed, fmt.Sprintf("resource answered outcome %s", res.Outcome)
	}
	// It is unknown whether the resource committed. As the only decider
	// of a one-phase transaction the participant settles it by aborting:
	// the abort either succeeds or reports the commit.
	t.lastErr = "one-phase commit: " + errText(res)
	t.reason = "one-phase commit failed: " + errText(res)
	t.selfAbort, t.known = true, true
	p.startDecision(t, concord.OutcomeAborted, rd)
}

func (p *Participant) commitDone(t *ptx, res ParticipantResult, now time.Time, rd *ParticipantReady) {
	switch res.Err {
	case PErrNone:
		if t.vote == concord.VoteNone {
			t.vote = concord.VoteYes
		}
		t.uncertain, t.retryAbort = false, false
		p.setState(t, PartCommitted)
	case PErrAlreadyDecided:
		t.vote, t.uncertain, t.retryAbort = concord.VoteNo, false, false
		if t.reason == "" {
			t.reason = "aborted"
		}
		p.setState(t, PartAborted)
	case PErrUnknownTx:
		if !t.known && !t.forgetAt.IsZero() && now.After(t.forgetAt) {
			// No record past the time the resource may forget: this
			// participant voted yes (or it would not be sent a COMMIT)
			// and kept its prepared state until the decision, so it
			// committed and forgot. Acknowledged, so that the coordinator
			// stops retrying; nothing is remembered, as the resource
			// remembers nothing.
			p.reply(t, waitCommit, rd, ParticipantReply{Kind: ReplyAck, Forgotten: true,
				Reason: "no record past the transaction's deadline plus clock skew: committed and forgotten"})
		} else {
			p.reply(t, waitCommit, rd, ParticipantReply{Kind: ReplyFailure, Reason: "unknown transaction: never prepared here"})
		}
		p.unsettled(t, rd)
	default:
		t.lastErr = "commit: " + errText(res)
		p.reply(t, waitCommit, rd, ParticipantReply{Kind: ReplyFailure, Reason: "commit failed: " + errText(res)})
		if !t.known {
			p.unsettled(t, rd)
			return
		}
		if t.onePhase {
			// The sole decider of a one-phase transaction settles it by
			// aborting (retried by Tick) rather than waiting to be told.
			t.uncertain, t.retryAbort = true, true
		}
		p.backToPrepared(t, now, rd)
	}
}

func (p *Participant) abortDone(t *ptx, res ParticipantResult, now time.Time, rd *ParticipantReady) {
	switch res.Err {
	case PErrNone, PErrUnknownTx:
		t.vote, t.uncertain, t.retryAbort = concord.VoteNo, false, false
		if t.reason == "" {
			if t.known {
				t.reason = "aborted"
			} else {
				t.reason = "aborted before prepare"
			}
		}
		p.setState(t, PartAborted)
	case PErrAlreadyDecided:
		t.vote, t.uncertain, t.retryAbort = concord.VoteYes, false, false
		p.setState(t, PartCommitted)
	default:
		t.lastErr = "abort: " + errText(res)
		p.reply(t, waitAbort, rd, ParticipantReply{Kind: ReplyFailure, Reason: "abort failed: " + errText(res)})
		if !t.known {
			// The coordinator aborted a transaction this participant
			// does not know, and the resource could not record it: keep
			// it in memory as one that votes no, and retry the abort.
			t.vote, t.reason = concord.VoteNo, "aborted before prepare"
			t.uncertain, t.retryAbort = true, true
		}
		if t.selfAbort {
			// Aborted by the participant itself after a failed call: it
			// voted no (or, in one phase, decides alone), so retrying the
			// abort needs no coordinator.
			t.uncertain, t.retryAbort = true, true
		}
		p.backToPrepared(t, now, rd)
	}
}

// backToPrepared returns a transaction whose phase-2 call failed to the
// prepared state: it waits for the coordinator's retry, or asks.
func (p *Participant) backToPrepared(t *ptx, now time.Time, rd *ParticipantReady) {
	if t.preparedAt.IsZero() {
		t.preparedAt = now
	}
	t.queries++
	t.nextQuery = now.Add(p.backoff(t.queries))
	p.setState(t, PartPrepared)
	if t.pending != concord.OutcomePending {
		o := t.pending
		t.pending = concord.OutcomePending
		p.startDecision(t, o, rd)
		return
	}
	for _, w := range t.waiters {
		if w.op == waitAbort {
			p.startDecision(t, concord.OutcomeAborted, rd)
			return
		}
	}
}

// unsettled handles a transaction the resource turned out not to know:
// requests still waiting are served afresh, or it is forgotten.
func (p *Participant) unsettled(t *ptx, rd *ParticipantReady) {
	t.known, t.pending, t.forgetAt = false, concord.OutcomePending, time.Time{}
	for _, w := range t.waiters {
		if w.op == waitAbort {
			p.startDecision(t, concord.OutcomeAborted, rd)
			return
		}
	}
	for _, w := range t.waiters {
		if w.op == waitPrepare {
			p.startPrepare(t, rd)
			return
		}
	}
	p.setState(t, PartUnknown)
	p.drop(t)
}

func (p *Participant) queryDone(t *ptx, res ParticipantResult, now time.Time, rd *ParticipantReady) {
	t.querying = false
	if res.Err == PErrNone && (res.Outcome == concord.OutcomeCommitted || res.Outcome == concord.OutcomeAborted) {
		p.startDecision(t, res.Outcome, rd)
		return
	}
	if res.Err != PErrNone {
		t.lastErr = "query: " + errText(res)
	} else {
		t.lastErr = "query: coordinator says pending"
	}
	t.queries++
	t.nextQuery = now.Add(p.backoff(t.queries))
}

func (p *Participant) backoff(n int) time.Duration {
	d := p.cfg.QueryMin
	for i := 1; i < n && d < p.cfg.QueryMax; i++ {
		d *= 2
	}
	return min(d, p.cfg.QueryMax)
}

// Tick asks the coordinator about every prepared transaction whose time to
// ask has come, and retries the abort of a one-phase transaction left
// uncertain by a failed call.
func (p *Participant) Tick(now time.Time) ParticipantReady {
	var rd ParticipantReady
	var due []*ptx
	for _, t := range p.prepared {
		if !t.querying && !now.Before(t.nextQuery) {
			due = append(due, t)
		}
	}
	slices.SortFunc(due, func(a, b *ptx) int { return partCmpID(a.id, b.id) })
	for _, t := range due {
		if t.retryAbort {
			p.startDecision(t, concord.OutcomeAborted, &rd)
			continue
		}
		t.querying = true
		p.addAction(&rd, ParticipantAction{Kind: ActQuery, ID: t.id, Coordinator: t.coordinator, tx: t})
	}
	return rd
}

// Recovered adds the transactions a resource lists as prepared after a
// restart. They are in doubt at once: the returned Ready asks the
// coordinator (the driver's default one) about each.
func (p *Participant) Recovered(ids []concord.TxID, now time.Time) ParticipantReady {
	txs := make([]RecoveredTx, len(ids))
	for i, id := range ids {
		txs[i].ID = id
	}
	return p.RecoveredFrom(txs, now)
}

// RecoveredTx is a transaction a resource lists as prepared, with the
// coordinator (see ParticipantAction.Coordinator) its PREPARE named.
type RecoveredTx struct {
	ID          concord.TxID
	Coordinator string
}

// RecoveredFrom is Recovered for transactions whose coordinator the
// resource kept: each is asked about at its own, not the driver's default.
func (p *Participant) RecoveredFrom(txs []RecoveredTx, now time.Time) ParticipantReady {
	for _, r := range txs {
		if p.txs[r.ID] != nil {
			continue
		}
		t := p.add(r.ID)
		t.known, t.vote, t.preparedAt, t.nextQuery = true, concord.VoteYes, now, now
		t.coordinator = r.Coordinator
		p.setState(t, PartPrepared)
	}
	return p.Tick(now)
}

// NextWake is the earliest time Tick has something to do; zero means
// nothing is scheduled.
func (p *Participant) NextWake() time.Time {
	var w time.Time
	for _, t := range p.prepared {
		if !t.querying && (w.IsZero() || t.nextQuery.Before(w)) {
			w = t.nextQuery
		}
	}
	return w
}

func (p *Participant) setState(t *ptx, s ParticipantState) {
	if t.prepIdx != 0 && s != PartPrepared {
		p.unprepare(t)
	}
	t.state = s
	switch {
	case s == PartPrepared:
		if t.prepIdx == 0 {
			p.prepared = append(p.prepared, t)
			t.prepIdx = int32(len(p.prepared))
		}
	case s.Terminal():
		t.payload, t.pending, t.querying, t.deadline, t.forgetAt = nil, concord.OutcomePending, false, time.Time{}, time.Time{}
		t.nextQuery = time.Time{}
		p.remember(t)
	}
}

// unprepare removes t from the in-doubt set, moving the last member into
// its place.
func (p *Participant) unprepare(t *ptx) {
	i, last := int(t.prepIdx)-1, len(p.prepared)-1
	if i != last {
		m := p.prepared[last]
		p.prepared[i] = m
		m.prepIdx = int32(i + 1)
	}
	p.prepared[last] = nil
	p.prepared = p.prepared[:last]
	t.prepIdx = 0
}

// remember queues a decided transaction for forgetting once Retain newer
// ones are decided. A terminal state is final, and only this drops a
// terminal transaction from the map, so the transaction a ring slot names
// is the one the map holds for its id.
func (p *Participant) remember(t *ptx) {
	if len(p.decided) < p.cfg.Retain {
		p.decided = append(p.decided, t)
		return
	}
	old := p.decided[p.head]
	p.decided[p.head] = t
	if p.head++; p.head == len(p.decided) {
		p.head = 0
	}
	if len(old.waiters) == 0 {
		p.drop(old)
	}
}
