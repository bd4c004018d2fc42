package sim

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/tpc"
	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wal/memfs"
)

// coordDir is the coordinator's log directory on its simulated disk.
const coordDir = "/coordinator"

// coordNode is the simulator's coordinator driver. Like package coordinator
// it keeps a table of tpc.CoordinatorTx, performs every Ready strictly in
// order (append the records, sync them when MustSync, then send the
// messages and answer the client), reports what became of every phase-2
// message (an acknowledgement, a refusal, or no answer in time), answers
// outcome queries from its table (no record means aborted), recovers with
// tpc.Recover on restart and compacts its log as transactions finish.
type coordNode struct {
	s    *sim
	disk *memfs.FS
	log  *wal.Log
	cfg  tpc.Config

	isUp bool
	inc  int // incarnation, counted from 1
	txs  map[concord.TxID]*coordTx
}

// coordTx is one live transaction in the coordinator's table.
type coordTx struct {
	tx        *tpc.CoordinatorTx
	firstSeq  uint64    // its first log record: compaction keeps it
	commitSeq uint64    // its RecCommit, once appended in this incarnation
	client    bool      // a client of this incarnation waits for the outcome
	deadline  time.Time // the client's deadline (used only by a broken variant)
	wake      time.Time // the pending Tick, if any
	sends     map[string]int
	replies   map[string]int
}

func newCoordNode(s *sim) *coordNode {
	return &coordNode{
		s:    s,
		disk: memfs.New(),
		cfg:  tpc.Config{RetryMin: 20 * time.Millisecond, RetryMax: 400 * time.Millisecond},
	}
}

func (c *coordNode) up() bool { return c.isUp }

// start opens the log, recovers the table from it and resumes every live
// transaction.
func (c *coordNode) start() {
	c.inc++
	c.isUp = true
	c.txs = make(map[concord.TxID]*coordTx)
	l, err := wal.Open(wal.Options{Dir: coordDir, FS: c.disk, SegmentSize: 1 << 10, IdleMark: -1, Logger: discardLogger})
	if err != nil {
		c.s.violate(Violation{Invariant: "durability", At: c.s.sched.elapsed(), Detail: fmt.Sprintf("coordinator log does not open: %v", err)})
		c.isUp = false
		return
	}
	c.log = l
	var records []tpc.Record
	first := make(map[concord.TxID]uint64)
	err = l.Replay(l.FirstSeq(), func(r wal.Record) error {
		var rec tpc.Record
		if err := rec.UnmarshalBinary(r.Payload); err != nil {
			return fmt.Errorf("record %d: %w", r.Seq, err)
		}
		if _, ok := first[rec.TxID]; !ok || rec.Type == tpc.RecBegin {
			first[rec.TxID] = r.Seq
		}
		records = append(records, rec)
		return nil
	})
	if err != nil {
		c.s.violate(Violation{Invariant: "durability", At: c.s.sched.elapsed(), Detail: fmt.Sprintf("coordinator log does not replay: %v", err)})
		c.isUp = false
		return
	}
	live, _ := tpc.Recover(c.cfg, records, c.s.sched.now)
	c.s.tracef(coordinatorName, "restarted (incarnation %d): %d records, %d live transactions", c.inc, len(records), len(live))
	// Every live transaction is in the table before any is resumed: a
	// resumed one that finishes compacts the log, which must keep the
	// records of all the others.
	cts := make([]*coordTx, len(live))
	for i, r := range live {
		id := r.Tx.ID()
		if r.Ready.Outcome == concord.OutcomeCommitted {
			// The commit record was replayed: it was durable.
			c.s.hist.commitDecided(id)
		}
		cts[i] = &coordTx{tx: r.Tx, firstSeq: first[id], sends: map[string]int{}, replies: map[string]int{}}
		c.txs[id] = cts[i]
	}
	inc := c.inc
	for i, r := range live {
		if !c.perform(cts[i], r.Ready) || c.inc != inc {
			return
		}
	}
	c.compact()
}

// crash kills the coordinator where it stands: its disk forgets every
// unsynced write (or all but a torn prefix of them) and its memory is gone.
func (c *coordNode) crash(where string) {
	c.s.tracef(coordinatorName, "CRASH %s", where)
	c.s.crashes++
	c.isUp = false
	if c.s.rng.IntN(2) == 0 {
		// A torn write: a random prefix of what was written and not
		// synced survives. (Deterministic here: the driver waits for every
		// write to be made, so nothing is in flight.)
		c.disk.CrashPartial(c.s.rng)
	} else {
		c.disk.Crash()
	}
	c.log.Close() // fails: its files died with the crash; this only stops its writer
	c.log, c.txs = nil, nil
	c.s.touchAll()
	c.s.scheduleRestart(c)
}

// crashPoint may crash the coordinator at a named point; it reports whether
// it did.
func (c *coordNode) crashPoint(where string) bool {
	if c.s.shouldCrash() {
		c.crash(where)
		return true
	}
	return false
}

// submit is a client's request to run a transaction.
func (c *coordNode) submit(id concord.TxID, branches []tpc.Branch, timeout time.Duration) {
	if !c.isUp {
		c.s.tracef("client", "submit %s refused: coordinator down", id)
		return
	}
	now := c.s.sched.now
	c.s.hist.begin(id, branches)
	c.s.transactions++
	tx, rd := tpc.Begin(c.cfg, id, branches, now, now.Add(timeout))
	ct := &coordTx{tx: tx, client: true, deadline: now.Add(timeout), sends: map[string]int{}, replies: map[string]int{}}
	c.txs[id] = ct
	c.s.tracef(coordinatorName, "begin %s over %d participants, deadline +%s", id, len(branches), timeout)
	c.perform(ct, rd)
}

// perform carries out one Ready in order: persist, then send, then answer.
// It reports false if the coordinator crashed on the way.
func (c *coordNode) perform(ct *coordTx, rd tpc.Ready) bool {
	id := ct.tx.ID()
	if c.s.bugs.CommitBeforeDurable && rd.MustSync {
		// Broken on purpose: everything leaves before the decision is on disk.
		if !c.send(ct, rd) || !c.answer(ct, rd) || !c.persist(ct, rd) {
			return false
		}
	} else if !c.persist(ct, rd) || !c.send(ct, rd) || !c.answer(ct, rd) {
		return false
	}
	if c.s.bugs.ForgetCommittedEarly && rd.Outcome == concord.OutcomeCommitted && !rd.Done {
		// Broken on purpose: the transaction is ended, forgotten and
		// compacted away as soon as its decision is out, before any
		// acknowledgement.
		b, _ := tpc.Record{Type: tpc.RecEnd, TxID: id, Outcome: concord.OutcomeCommitted}.MarshalBinary()
		appendUnforced(c.log, uint8(tpc.RecEnd), b)
		rd.Done = true
	}
	if rd.Done {
		delete(c.txs, id)
		c.compact()
		return true
	}
	c.schedule(ct)
	return true
}

func (c *coordNode) persist(ct *coordTx, rd tpc.Ready) bool {
	id := ct.tx.ID()
	for _, rec := range rd.Records {
		b, err := rec.MarshalBinary()
		if err != nil {
			c.s.violate(Violation{Invariant: "durability", Tx: id, At: c.s.sched.elapsed(), Detail: fmt.Sprintf("record does not encode: %v", err)})
			return false
		}
		seq, err := appendUnforced(c.log, uint8(rec.Type), b)
		if err != nil {
			c.s.violate(Violation{Invariant: "durability", Tx: id, At: c.s.sched.elapsed(), Detail: fmt.Sprintf("append: %v", err)})
			return false
		}
		c.s.tracef(coordinatorName, "append %s %s (seq %d)", rec.Type, id, seq)
		if ct.firstSeq == 0 {
			ct.firstSeq = seq
		}
		if rec.Type == tpc.RecCommit {
			ct.commitSeq = seq
		}
		if rec.Type == tpc.RecAbort {
			c.s.hist.coordAbort(id, "decided abort")
		}
		if c.crashPoint(fmt.Sprintf("after appending %s %s, before its sync", rec.Type, id)) {
			return false
		}
	}
	if rd.MustSync {
		if err := c.log.Sync(); err != nil {
			c.s.violate(Violation{Invariant: "durability", Tx: id, At: c.s.sched.elapsed(), Detail: fmt.Sprintf("sync: %v", err)})
			return false
		}
		c.s.tracef(coordinatorName, "sync %s", id)
		if ct.commitSeq != 0 && c.log.DurableSeq() >= ct.commitSeq {
			c.s.hist.commitDecided(id)
		}
		if c.crashPoint(fmt.Sprintf("after syncing %s, before sending", id)) {
			return false
		}
	}
	return true
}

func (c *coordNode) send(ct *coordTx, rd tpc.Ready) bool {
	id := ct.tx.ID()
	for _, m := range rd.Messages {
		if c.crashPoint(fmt.Sprintf("before sending %s %s to %s", m.Kind, id, m.To)) {
			return false
		}
		msg := message{from: coordinatorName, to: m.To, tx: id, payload: m.Payload, onePhase: m.OnePhase}
		switch m.Kind {
		case tpc.MsgPrepare:
			msg.kind = msgPrepare
			inc, to := c.inc, m.To
			c.s.net.send(msg, func() { c.voteUnreachable(inc, id, to) })
			continue
		case tpc.MsgCommit:
			msg.kind = msgCommit
		case tpc.MsgAbort:
			msg.kind = msgAbort
		}
		if rd.Done {
			c.s.net.send(msg, nil) // best effort: presumed abort needs no answer
			continue
		}
		ct.sends[m.To]++
		attempt, inc, to := ct.sends[m.To], c.inc, m.To
		c.s.net.send(msg, func() { c.noReply(inc, id, to, attempt, "connection refused") })
		c.s.sched.after(c.s.replyTimeout, func() { c.noReply(inc, id, to, attempt, "no answer in time") })
	}
	return true
}

func (c *coordNode) answer(ct *coordTx, rd tpc.Ready) bool {
	id := ct.tx.ID()
	if rd.Outcome == concord.OutcomeAborted {
		c.s.hist.coordAbort(id, "reported abort")
	}
	if rd.Outcome == concord.OutcomePending || !ct.client {
		return true
	}
	if c.crashPoint(fmt.Sprintf("before answering the client of %s", id)) {
		return false
	}
	ct.client = false
	c.s.tracef("client", "%s: %s %s", id, rd.Outcome, rd.Reason)
	c.s.hist.told(id, rd.Outcome)
	return true
}

// schedule arranges the next Tick of ct.
func (c *coordNode) schedule(ct *coordTx) {
	w := ct.tx.NextWake()
	if c.s.bugs.AbortAfterCommitTimeout && !ct.deadline.IsZero() && (w.IsZero() || ct.deadline.Before(w)) && c.s.sched.now.Before(ct.deadline) {
		w = ct.deadline
	}
	if w.IsZero() || (!ct.wake.IsZero() && !w.Before(ct.wake)) {
		return
	}
	ct.wake = w
	inc, id := c.inc, ct.tx.ID()
	c.s.sched.at(w, func() {
		if c.inc != inc || !c.isUp || c.txs[id] != ct || !ct.wake.Equal(w) {
			return
		}
		ct.wake = time.Time{}
		c.tick(ct)
	})
}

func (c *coordNode) tick(ct *coordTx) {
	now := c.s.sched.now
	st := ct.tx.Status()
	if c.s.bugs.AbortAfterCommitTimeout && st.Outcome == concord.OutcomeCommitted && !now.Before(ct.deadline) {
		c.brokenTimeoutAbort(ct, st)
		return
	}
	c.perform(ct, ct.tx.Tick(now))
}

// brokenTimeoutAbort is the deliberately broken timeout: it aborts a
// transaction whose commit is decided but not yet acknowledged everywhere.
func (c *coordNode) brokenTimeoutAbort(ct *coordTx, st tpc.Status) {
	id := ct.tx.ID()
	rd := tpc.Ready{Outcome: concord.OutcomeAborted, Reason: "timeout", Done: true}
	rd.Records = []tpc.Record{{Type: tpc.RecAbort, TxID: id, Outcome: concord.OutcomeAborted, Reason: "timeout"}}
	for _, b := range st.Branches {
		rd.Records[0].Participants = append(rd.Records[0].Participants, b.Participant)
		rd.Records[0].Votes = append(rd.Records[0].Votes, b.Vote)
		if b.Vote == concord.VoteYes && !b.Acknowledged {
			rd.Messages = append(rd.Messages, tpc.Message{Kind: tpc.MsgAbort, To: b.Participant, TxID: id})
		}
	}
	ct.client = true // the waiting client is told too
	c.perform(ct, rd)
}

// voteUnreachable: a PREPARE could not be delivered.
func (c *coordNode) voteUnreachable(inc int, id concord.TxID, to string) {
	ct := c.live(inc, id)
	if ct == nil {
		return
	}
	c.perform(ct, ct.tx.Vote(tpc.VoteEvent{Participant: to, Vote: concord.VoteUnreachable, Reason: "connection refused"}, c.s.sched.now))
}

// noReply: phase-2 delivery attempt number attempt to participant to got no
// answer.
func (c *coordNode) noReply(inc int, id concord.TxID, to string, attempt int, why string) {
	ct := c.live(inc, id)
	if ct == nil || ct.sends[to] != attempt || ct.replies[to] >= attempt {
		return
	}
	ct.replies[to] = attempt
	c.perform(ct, ct.tx.DeliveryFailed(to, why, c.s.sched.now))
}

// live returns transaction id if this incarnation still has it.
func (c *coordNode) live(inc int, id concord.TxID) *coordTx {
	if c.inc != inc || !c.isUp {
		return nil
	}
	return c.txs[id]
}

func (c *coordNode) receive(m message) {
	now := c.s.sched.now
	if m.kind == msgQuery {
		c.answerQuery(m)
		return
	}
	ct := c.txs[m.tx]
	if ct == nil {
		return // finished or never known here: a late or duplicate answer
	}
	var rd tpc.Ready
	switch m.kind {
	case msgVote:
		rd = ct.tx.Vote(tpc.VoteEvent{Participant: m.from, Vote: m.vote, Reason: m.reason, Outcome: m.outcome}, now)
	case msgAck:
		ct.replies[m.from] = ct.sends[m.from]
		rd = ct.tx.Ack(m.from, now)
	case msgFailure:
		ct.replies[m.from] = ct.sends[m.from]
		if m.outcome != concord.OutcomePending {
			rd = ct.tx.Resolved(m.from, m.outcome, now)
		} else {
			rd = ct.tx.DeliveryFailed(m.from, m.reason, now)
		}
	default:
		return
	}
	c.perform(ct, rd)
}

// answerQuery answers a participant in doubt from the table; a transaction
// with no record is aborted (presumed abort).
func (c *coordNode) answerQuery(m message) {
	o, presumed := concord.OutcomeAborted, true
	if ct := c.txs[m.tx]; ct != nil {
		o, presumed = ct.tx.Status().Outcome, false
	}
	c.s.hist.answered(m.tx, o, presumed)
	c.s.net.send(message{kind: msgOutcome, from: coordinatorName, to: m.from, tx: m.tx, req: m.req, outcome: o}, nil)
}

// compact drops the log segments that hold only records of finished
// transactions.
func (c *coordNode) compact() {
	before := c.log.LastSeq() + 1
	for _, ct := range c.txs {
		if ct.firstSeq != 0 && ct.firstSeq < before {
			before = ct.firstSeq
		}
	}
	if err := c.log.Compact(before); err != nil {
		c.s.violate(Violation{Invariant: "durability", At: c.s.sched.elapsed(), Detail: fmt.Sprintf("compact: %v", err)})
	}
}

// operatorAction aborts (abort set) or re-drives a random live
// transaction, as an operator would through the coordinator's API.
func (c *coordNode) operatorAction(abort bool) {
	ids := make([]concord.TxID, 0, len(c.txs))
	for id := range c.txs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	ct := c.txs[ids[c.s.rng.IntN(len(ids))]]
	now := c.s.sched.now
	if !abort {
		c.s.tracef("operator", "retry now %s", ct.tx.ID())
		c.perform(ct, ct.tx.RetryNow(now))
		return
	}
	committed := ct.tx.Status().Outcome == concord.OutcomeCommitted
	c.s.touchTx(ct.tx.ID()) // an operator's abort is a failure non-triviality allows
	rd, err := ct.tx.Abort("operator", now)
	c.s.tracef("operator", "abort %s: %v", ct.tx.ID(), err)
	switch {
	case committed && !errors.Is(err, tpc.ErrDecided):
		c.s.violate(Violation{Invariant: "monotonic", Tx: ct.tx.ID(), At: c.s.sched.elapsed(), Detail: fmt.Sprintf("operator abort of a committed transaction was not refused: %v", err)})
	case err == nil:
		c.perform(ct, rd)
	}
}
