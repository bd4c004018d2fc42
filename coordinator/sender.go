package coordinator

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/tpc"
	"github.com/concordtx/concord/wire"
)

// sender batches the messages bound for one participant: one Batcher per
// message kind, so that a slow PREPARE does not hold back a COMMIT.
type sender struct {
	name    string
	prepare *wire.Batcher[prepItem]
	commit  *wire.Batcher[*txState]
	abort   *wire.Batcher[*txState]
	// The decisions wait in these before their batchers (Options.DecisionDelay).
	commitHold, abortHold *linger
}

// prepItem is one PREPARE waiting to be sent.
type prepItem struct {
	tx  *txState
	msg tpc.Message
}

// newSender makes the batchers of one participant. sendPrepares and
// sendDecisions keep nothing of a batch once they return (every step they
// start is over by then), as a Batcher, which reuses the slice, requires.
func (c *Coordinator) newSender(name string) *sender {
	s := &sender{
		name:    name,
		prepare: wire.NewBatcher(c.opts.MaxBatch, c.opts.MaxInFlight, func(b []prepItem) { c.sendPrepares(name, b) }),
		commit:  wire.NewBatcher(c.opts.MaxBatch, c.opts.MaxInFlight, func(b []*txState) { c.sendDecisions(name, true, b) }),
		abort:   wire.NewBatcher(c.opts.MaxBatch, c.opts.MaxInFlight, func(b []*txState) { c.sendDecisions(name, false, b) }),
	}
	s.commitHold = newLinger(c.clock, c.opts.DecisionDelay, c.opts.MaxBatch, s.commit)
	s.abortHold = newLinger(c.clock, c.opts.DecisionDelay, c.opts.MaxBatch, s.abort)
	return s
}

// senderFor returns the participant's sender, making one for a name first
// seen in the log.
func (c *Coordinator) senderFor(name string) *sender {
	if s, ok := c.senders.Load(name); ok {
		return s.(*sender)
	}
	s, _ := c.senders.LoadOrStore(name, c.newSender(name))
	return s.(*sender)
}

// send queues one message of t.
func (c *Coordinator) send(t *txState, m tpc.Message) {
	s := c.senderFor(m.To)
	switch m.Kind {
	case tpc.MsgPrepare:
		c.stats.prepares.Add(1)
		s.prepare.Add(prepItem{tx: t, msg: m})
	case tpc.MsgCommit:
		c.stats.commits.Add(1)
		s.commitHold.add(t)
	case tpc.MsgAbort:
		c.stats.aborts.Add(1)
		s.abortHold.add(t)
	}
}

// sendPrepares sends one batch of PREPAREs and steps each transaction with
// its vote.
func (c *Coordinator) sendPrepares(name string, items []prepItem) {
	if c.stopped() {
		return
	}
	now := c.clock.Now()
	req := wire.PrepareRequest{Coordinator: c.advertiseURL(), Transactions: make([]wire.PrepareTx, 0, len(items))}
	set := newTxSet(len(items)) // req.Transactions[i] is set.txs[i]'s
	defer set.release()
	wait := time.Second
	for _, it := range items {
		if !it.tx.preparing.Load() {
			continue // decided while queued (timed out, or another no): an ABORT is on its way
		}
		if !set.add(it.tx) {
			continue
		}
		req.Transactions = append(req.Transactions, wire.PrepareTx{ID: it.tx.id, Payload: it.msg.Payload, OnePhase: it.msg.OnePhase,
			DeadlineMS: deadlineMS(it.tx.deadline)})
		wait = max(wait, it.tx.deadline.Sub(now)+time.Second)
	}
	if len(req.Transactions) == 0 {
		return
	}
	txs := set.txs
	wait = min(wait, c.opts.MaxTimeout+time.Second)
	ctx, cancel := context.WithTimeout(withTrace(c.ctx, txs), wait)
	c.stats.requests.Add(1)
	pm := c.participantMetrics(name)
	start := time.Now()
	resp, err := c.transport.Prepare(ctx, name, req)
	pm.request(pm.prepare, pm.prepareBatch, start, time.Now(), len(req.Transactions), err)
	cancel()
	for _, ptx := range req.Transactions {
		if c.crashAt(AfterSendPrepare, ptx.ID) {
			return
		}
	}
	if c.stopped() {
		return
	}
	var steps []func()
	if err != nil {
		reason := fmt.Sprintf("prepare request failed: %v", err)
		for _, t := range txs {
			steps = append(steps, func() {
				c.vote(t, tpc.VoteEvent{Participant: name, Vote: concord.VoteUnreachable, Reason: reason})
			})
		}
		deliver(steps)
		return
	}
	votes := groupVotes(txs, resp.Votes)
	// A step that decides waits for its log sync, and those waits must
	// overlap for group commit to share them: such a step gets a goroutine
	// of its own. The others (a yes while other votes are still to come)
	// wait for nothing and are stepped here, sparing a goroutine each.
	var wg *sync.WaitGroup // made for the first step with a goroutine
	for i, t := range txs {
		var vs []wire.VoteReply
		if votes == nil {
			vs = resp.Votes[i : i+1 : i+1]
		} else {
			vs = votes[i]
		}
		if len(txs) == 1 || !mayDecide(t, vs) {
			c.stepVotes(t, name, pm, vs)
			continue
		}
		if wg == nil {
			wg = new(sync.WaitGroup)
		}
		wg.Add(1)
		go func(wg *sync.WaitGroup) {
			defer wg.Done()
			c.stepVotes(t, name, pm, vs)
		}(wg)
	}
	if wg != nil {
		wg.Wait() // the sender's slot stays busy until every vote is stepped
	}
}

// stepVotes steps t with the votes vs that participant name's answer holds
// on it; none counts as unreachable, and so do several: an answer that
// votes twice on one transaction (yes then no, or even yes twice) is
// malformed, and neither of its votes can be trusted to be the one the
// participant acts on.
func (c *Coordinator) stepVotes(t *txState, name string, pm *participantMetrics, vs []wire.VoteReply) {
	if h := c.opts.VotesHook; h != nil {
		vs = h(vs)
	}
	switch len(vs) {
	case 0:
		pm.errs[errKindMissing].Inc()
		c.vote(t, tpc.VoteEvent{Participant: name, Vote: concord.VoteUnreachable,
			Reason: "the participant's answer holds no vote for this transaction"})
	case 1:
		v := vs[0]
		c.vote(t, tpc.VoteEvent{Participant: name, Vote: v.Vote, Reason: v.Reason, Outcome: v.Outcome})
	default:
		pm.errs[errKindOther].Inc()
		c.vote(t, tpc.VoteEvent{Participant: name, Vote: concord.VoteUnreachable,
			Reason: fmt.Sprintf("malformed answer: it holds %d votes for this transaction", len(vs))})
	}
}

// mayDecide reports whether stepping t with one participant's votes vs may
// decide t, and so wait for a log sync. It counts the participants'
// answers: a plain yes or read-only while another answer is still to come
// decides nothing. A wrong guess costs only time: the step then waits for
// its sync on the sender's goroutine.
func mayDecide(t *txState, vs []wire.VoteReply) bool {
	if len(vs) != 1 {
		return true // counted as unreachable: abort
	}
	for _, v := range vs {
		if (v.Vote != concord.VoteYes && v.Vote != concord.VoteReadOnly) || v.Outcome != concord.OutcomePending {
			return true
		}
	}
	return t.answersLeft.Add(-1) <= 0
}

// deliver runs the steps of a batch's answer, each on its own goroutine
// when there are several: a step that decides commit waits for its log
// sync, and those waits must overlap for group commit to share them. It
// returns when all are done, so a sender's slot stays busy until then.
func deliver(steps []func()) {
	if len(steps) == 1 {
		steps[0]()
		return
	}
	var wg sync.WaitGroup
	for _, f := range steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	wg.Wait()
}

// sendDecisions sends one batch of COMMITs (commit) or ABORTs and steps
// each transaction with what the participant answered.
func (c *Coordinator) sendDecisions(name string, commit bool, items []*txState) {
	if c.stopped() {
		return
	}
	set := newTxSet(len(items)) // ids[i] is set.txs[i]'s
	defer set.release()
	ids := make([]concord.TxID, 0, len(items))
	var deadlines []int64 // as the PREPARE's deadline_ms; nil when none is known
	for _, t := range items {
		if set.add(t) {
			ids = append(ids, t.id)
			if ms := deadlineMS(t.deadline); ms != 0 || deadlines != nil {
				if deadlines == nil {
					deadlines = make([]int64, len(ids)-1, len(items))
				}
				deadlines = append(deadlines, ms)
			}
		}
	}
	req := wire.DecisionRequest{IDs: ids, DeadlinesMS: deadlines}
	txs := set.txs
	ctx, cancel := context.WithTimeout(withTrace(c.ctx, txs), c.opts.RequestTimeout)
	c.stats.requests.Add(1)
	var resp wire.DecisionResponse
	var err error
	point, kind := AfterSendAbort, "abort"
	pm := c.participantMetrics(name)
	start := time.Now()
	if commit {
		point, kind = AfterSendCommit, "commit"
		resp, err = c.transport.Commit(ctx, name, req)
		pm.request(pm.commit, pm.commitBatch, start, time.Now(), len(ids), err)
	} else {
		resp, err = c.transport.Abort(ctx, name, req)
		pm.request(pm.abort, pm.abortBatch, start, time.Now(), len(ids), err)
	}
	cancel()
	for _, id := range ids {
		if c.crashAt(point, id) {
			return
		}
	}
	if c.stopped() {
		return
	}
	// The answers are stepped here, one after the other: a phase-2 step
	// never waits for a log sync (the decision is durable already and END
	// is written unforced), so goroutines of their own would buy nothing.
	if err != nil {
		reason := fmt.Sprintf("%s request failed: %v", kind, err)
		for _, t := range txs {
			c.deliveryFailed(t, name, reason)
		}
		return
	}
	if ackedInOrder(ids, resp) {
		for _, t := range txs {
			c.ack(t, name)
		}
		return
	}
	acked := make(map[concord.TxID]bool, len(ids))
	for _, id := range resp.Acknowledged {
		acked[id] = true
	}
	failed := make(map[concord.TxID]wire.TxFailure, len(resp.Failed))
	for _, f := range resp.Failed {
		if _, dup := failed[f.ID]; !dup {
			failed[f.ID] = f
		}
	}
	for i, id := range ids {
		t := txs[i]
		f, isFailed := failed[id]
		switch {
		case acked[id]:
			c.ack(t, name)
		case isFailed && f.Outcome != concord.OutcomePending:
			c.resolved(t, name, f.Outcome)
		case isFailed:
			pm.errs[errKindRefused].Inc()
			c.deliveryFailed(t, name, fmt.Sprintf("%s refused: %s", kind, f.Reason))
		default:
			pm.errs[errKindMissing].Inc()
			c.deliveryFailed(t, name, fmt.Sprintf("%s answer holds nothing for this transaction", kind))
		}
	}
}

// txSet collects the distinct transactions of one batch, in order: a
// transaction queued twice (a decision resent while the first was still
// queued) is sent once.
type txSet struct {
	txs  []*txState
	seen map[*txState]struct{} // in use once txs outgrows a scan
	room map[*txState]struct{} // an emptied map of an earlier use, for seen
}

// txSetScan is the size up to which add scans txs instead of hashing.
const txSetScan = 64

// txSetPool holds txSets. sendPrepares and sendDecisions take one for a
// batch and give it back, emptied, when they return: nothing they leave
// behind refers to it (the steps they start are over by then, and the
// requests and contexts they make hold the transactions' ids and trace
// context, not the set).
var txSetPool = sync.Pool{New: func() any { return new(txSet) }}

// newTxSet returns an empty set from txSetPool with room for n
// transactions; release gives it back.
func newTxSet(n int) *txSet {
	s := txSetPool.Get().(*txSet)
	s.txs = slices.Grow(s.txs, n)
	return s
}

// release empties s and gives it back to txSetPool; s must not be used
// after.
func (s *txSet) release() {
	clear(s.txs)
	s.txs = s.txs[:0]
	if s.seen != nil {
		clear(s.seen)
		s.room, s.seen = s.seen, nil
	}
	txSetPool.Put(s)
}

// add appends t unless it is in the set already, and reports whether it did.
func (s *txSet) add(t *txState) bool {
	if s.seen == nil {
		for _, u := range s.txs {
			if u == t {
				return false
			}
		}
		if len(s.txs) < txSetScan {
			s.txs = append(s.txs, t)
			return true
		}
		if s.seen, s.room = s.room, nil; s.seen == nil {
			s.seen = make(map[*txState]struct{}, 2*txSetScan)
		}
		for _, u := range s.txs {
			s.seen[u] = struct{}{}
		}
	} else if _, dup := s.seen[t]; dup {
		return false
	}
	s.seen[t] = struct{}{}
	s.txs = append(s.txs, t)
	return true
}

// groupVotes returns the votes on each of txs from a participant's answer,
// in their order. It returns nil when votes holds exactly one vote on each,
// in the order asked (as a participant answers), which needs no lookup.
// Otherwise they are matched by id: a vote on something not asked is
// ignored, a duplicate answer repeats one, and a transaction without a
// vote gets none.
func groupVotes(txs []*txState, votes []wire.VoteReply) [][]wire.VoteReply {
	if len(votes) == len(txs) {
		i := 0
		for i < len(txs) && votes[i].ID == txs[i].id {
			i++
		}
		if i == len(txs) {
			return nil
		}
	}
	out := make([][]wire.VoteReply, len(txs))
	index := make(map[concord.TxID]int, len(txs))
	for i, t := range txs {
		index[t.id] = i
	}
	for i, v := range votes {
		j, ok := index[v.ID]
		if !ok {
			continue
		}
		if out[j] == nil {
			out[j] = votes[i : i+1 : i+1] // no copy; a duplicate's append copies
		} else {
			out[j] = append(out[j], v)
		}
	}
	return out
}

// ackedInOrder reports whether resp acknowledges exactly ids, in their
// order, as a participant that applied them all answers.
func ackedInOrder(ids []concord.TxID, resp wire.DecisionResponse) bool {
	if len(resp.Failed) > 0 || len(resp.Acknowledged) != len(ids) {
		return false
	}
	for i, id := range ids {
		if resp.Acknowledged[i] != id {
			return false
		}
	}
	return true
}

// deadlineMS is a PREPARE's deadline_ms (and a COMMIT's or ABORT's
// deadlines_ms entry) for deadline: Unix milliseconds,
// rounded up so that a participant never refuses before the coordinator
// gives up; zero (none given) for the zero time.
func deadlineMS(deadline time.Time) int64 {
	if deadline.IsZero() {
		return 0
	}
	return deadline.Add(time.Millisecond - 1).UnixMilli()
}
