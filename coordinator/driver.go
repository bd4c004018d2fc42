package coordinator

import (
	"fmt"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/tpc"
	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wire"
)

// The driver performs what the tpc state machine asks, in its order: append
// the Ready's records (synced when MustSync), then hand its messages to the
// senders and report its outcome. Every step of one transaction runs with
// that transaction's mutex held, so its Readies are performed one at a time
// and in the order they were produced; different transactions share no lock
// here (the log's group commit is where their syncs meet).

// performLocked carries out rd for t. With withRequest, t's request record
// is logged before rd's records in the same append. t.mu must be held.
func (c *Coordinator) performLocked(t *txState, rd tpc.Ready, withRequest bool) {
	if c.stopped() {
		return
	}
	if len(rd.Records) > 0 {
		for _, r := range rd.Records {
			if (r.Type == tpc.RecCommit || r.Type == tpc.RecAbort) && c.crashAt(BeforeLogDecision, t.id) {
				return
			}
		}
		var room [3]wal.Entry // a usual step's, on the stack
		entries, err := encodeRecords(room[:0], t, withRequest, rd.Records)
		if err != nil {
			c.halt(err)
			return
		}
		if t.firstSeq.Load() == 0 {
			// A lower bound until the append says: compaction may run meanwhile.
			t.firstSeq.Store(c.log.LastSeq() + 1)
		}
		c.stats.records.Add(int64(len(rd.Records)))
		first, err := c.appendEntries(entries, rd.MustSync)
		if err != nil {
			c.halt(fmt.Errorf("append to the log: %w", err))
			return
		}
		if withRequest {
			t.firstSeq.Store(first)
		}
		for _, r := range rd.Records {
			if c.crashAt(crashPointFor(r.Type), t.id) {
				return
			}
		}
	}
	if len(rd.Records) > 0 || len(rd.Messages) > 0 || rd.Done {
		t.noteReadyLocked(c.clock.Now(), rd)
	}
	if !rd.Done {
		// Armed before the messages leave, so a test's fake clock cannot
		// pass the deadline between the send and the arming.
		c.scheduleLocked(t)
	}
	for _, m := range rd.Messages {
		if m.Kind != tpc.MsgPrepare {
			t.preparing.Store(false) // phase 2 (or resolving): no PREPARE of it is needed any more
		}
		c.send(t, m)
	}
	if rd.Outcome == concord.OutcomePending && !rd.Done {
		return
	}
	t.preparing.Store(false)
	if rd.Outcome != concord.OutcomePending {
		c.reportLocked(t, rd.Outcome, rd.Reason)
	}
	if rd.Done {
		st := t.core.Status() // kept with the finished transaction
		t.finished = true
		if t.timer != nil {
			t.timer.Stop()
			t.timer = nil
		}
		if t.result.Load() == nil {
			c.reportLocked(t, st.Outcome, st.Reason)
		}
		c.finishedLocked(t, st)
		c.table.finish(t, st)
		c.stats.finished.Add(1)
	}
}

// appendEntries appends entries, waiting for durability when sync is set.
func (c *Coordinator) appendEntries(entries []wal.Entry, sync bool) (uint64, error) {
	c.stats.appends.Add(int64(len(entries)))
	if sync {
		c.stats.forcedAppends.Add(1)
	}
	if len(entries) == 1 {
		if sync {
			return c.log.Append(entries[0].Type, entries[0].Payload)
		}
		return c.log.AppendAsync(entries[0].Type, entries[0].Payload)
	}
	return c.log.AppendBatch(entries, sync)
}

// reportLocked makes the outcome visible to clients, once.
func (c *Coordinator) reportLocked(t *txState, o concord.Outcome, reason string) {
	if t.result.Load() != nil {
		return
	}
	res := newResponse(t.core.NumBranches())
	res.ID, res.Outcome, res.Reason = t.id, o, reason
	for i := range res.Branches {
		b := t.core.BranchStatus(i)
		res.Branches[i] = wire.BranchResult{Participant: b.Participant, Vote: b.Vote, Reason: b.Reason}
	}
	t.result.Store(res)
	// Counted before the client can see the outcome, so that Stats never
	// lags an answer already given.
	switch o {
	case concord.OutcomeCommitted:
		c.stats.committed.Add(1)
	case concord.OutcomeAborted:
		c.stats.aborted.Add(1)
	}
	close(t.done)
	c.observeOutcome(t, o)
	c.logDecision(t, o, reason)
}

// smallResponse holds a submit's answer with room for the branches of a
// small transaction, so that it is one allocation.
type smallResponse struct {
	resp     wire.SubmitResponse
	branches [3]wire.BranchResult
}

// newResponse returns a response with n zero branches.
func newResponse(n int) *wire.SubmitResponse {
	if n <= len(smallResponse{}.branches) {
		s := &smallResponse{}
		s.resp.Branches = s.branches[:n:n]
		return &s.resp
	}
	return &wire.SubmitResponse{Branches: make([]wire.BranchResult, n)}
}

// scheduleLocked arms t's timer for the state machine's next wake-up.
func (c *Coordinator) scheduleLocked(t *txState) {
	w := t.core.NextWake()
	if w.Equal(t.wake) && (t.timer != nil || w.IsZero()) {
		return
	}
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
	t.wake = w
	if w.IsZero() {
		return
	}
	t.gen++
	gen := t.gen
	t.timer = c.clock.AfterFunc(max(0, w.Sub(c.clock.Now())), func() { c.tick(t, gen) })
}

// tick steps t to now when its timer fires.
func (c *Coordinator) tick(t *txState, gen uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.finished || gen != t.gen || c.stopped() {
		return
	}
	t.timer, t.wake = nil, time.Time{}
	rd := t.core.Tick(c.clock.Now())
	if len(rd.Records) == 0 {
		for _, m := range rd.Messages {
			c.participantMetrics(m.To).retries.Inc() // a decision resent after its backoff
		}
	}
	c.performLocked(t, rd, false)
}

// step runs one event on t and performs the result.
func (c *Coordinator) step(t *txState, ev func(core *tpc.CoordinatorTx, now time.Time) tpc.Ready) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.finished || c.stopped() {
		return
	}
	c.performLocked(t, ev(t.core, c.clock.Now()), false)
}

func (c *Coordinator) vote(t *txState, ev tpc.VoteEvent) {
	c.stats.votes.Add(1)
	c.participantMetrics(ev.Participant).vote(ev.Vote)
	c.step(t, func(core *tpc.CoordinatorTx, now time.Time) tpc.Ready {
		t.noteLocked(now, evVote, ev.Participant, voteValue(ev.Vote), ev.Reason)
		return core.Vote(ev, now)
	})
}

func (c *Coordinator) ack(t *txState, participant string) {
	c.stats.acks.Add(1)
	c.step(t, func(core *tpc.CoordinatorTx, now time.Time) tpc.Ready {
		t.noteLocked(now, evAck, participant, noValue, "")
		return core.Ack(participant, now)
	})
}

func (c *Coordinator) resolved(t *txState, participant string, held concord.Outcome) {
	c.stats.acks.Add(1)
	c.step(t, func(core *tpc.CoordinatorTx, now time.Time) tpc.Ready {
		t.noteLocked(now, evResolved, participant, outcomeValue(held), "the participant already held this outcome")
		return core.Resolved(participant, held, now)
	})
}

func (c *Coordinator) deliveryFailed(t *txState, participant, reason string) {
	c.stats.deliveryFailures.Add(1)
	c.step(t, func(core *tpc.CoordinatorTx, now time.Time) tpc.Ready {
		t.noteLocked(now, evDeliveryFailed, participant, noValue, reason)
		c.logDeliveryFailed(t, participant, reason)
		return core.DeliveryFailed(participant, reason, now)
	})
}
