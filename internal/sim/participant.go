package sim

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/tpc"
	"github.com/concordtx/concord/travel"
	"github.com/concordtx/concord/wal/memfs"
)

// storeDir is a participant's store directory on its simulated disk.
const storeDir = "/store"

// partNode is the simulator's participant driver. Like participant.Server
// it feeds every request and every resource result to the tpc participant
// machine and performs what it asks: resource calls (each one a separate
// event after a short random delay, so that calls for different
// transactions interleave as they would concurrently), replies to the
// coordinator, and outcome queries when in doubt. After a restart it lists
// the resource's prepared transactions first (Recover) and asks about them.
type partNode struct {
	s     *sim
	name  string
	disk  *memfs.FS
	stock []travel.Stock
	cfg   tpc.ParticipantConfig

	isUp bool
	inc  int
	m    *tpc.Participant
	res  resource
	// armed and fired carry a crash injected at the next sync of the
	// disk (see fileResource).
	armed, fired *atomic.Bool
	nextReq      uint64
	queries      map[concord.TxID]uint64 // the outcome query in flight per transaction
	calls        int                     // resource calls started and not yet made
	wake         time.Time
}

func newPartNode(s *sim, name string, stock []travel.Stock) *partNode {
	p := &partNode{
		s: s, name: name, disk: memfs.New(), stock: stock,
		armed: new(atomic.Bool), fired: new(atomic.Bool),
		cfg: tpc.ParticipantConfig{
			// Most resources commit in one step; the others are driven
			// by prepare then commit for a lone branch.
			OnePhase:     s.rng.IntN(5) != 0,
			InDoubtAfter: 300 * time.Millisecond,
			QueryMin:     50 * time.Millisecond,
			QueryMax:     800 * time.Millisecond,
		},
	}
	installCrashHook(p.disk, p.armed, p.fired)
	return p
}

func (p *partNode) up() bool { return p.isUp }

// start opens the store, checks what survived the last crash, and puts the
// prepared transactions it lists in doubt.
func (p *partNode) start() {
	p.inc++
	var res resource
	var err error
	if p.s.opts.Store == SimStore {
		var st *simStore
		st, err = openSimStore(p.disk, storeDir, p.stock)
		if err == nil {
			st.crash = func(point string) bool { return p.crashPoint(point) }
			st.unforced = p.s.bugs.UnforcedStore
			res = st
		}
	} else {
		res, err = openFileResource(p)
	}
	if err != nil {
		p.s.violate(Violation{Invariant: "durability", At: p.s.sched.elapsed(), Detail: fmt.Sprintf("%s: store does not open: %v", p.name, err)})
		return
	}
	p.isUp = true
	p.res = res
	inc := p.inc
	p.m = tpc.NewParticipant(p.cfg)
	p.queries = make(map[concord.TxID]uint64)
	p.wake, p.calls = time.Time{}, 0
	p.checkConservation()
	p.s.hist.restarted(p, inc)
	txs, err := res.Recover(context.Background())
	ids := make([]concord.TxID, len(txs))
	for i, tx := range txs {
		ids[i] = tx.ID
	}
	if err != nil {
		p.s.violate(Violation{Invariant: "durability", At: p.s.sched.elapsed(), Detail: fmt.Sprintf("%s: recover: %v", p.name, err)})
		return
	}
	if p.s.bugs.ForgetPreparedOnRestart {
		// Broken on purpose: the prepared transactions are dropped instead
		// of being kept in doubt.
		for _, id := range ids {
			err := res.Abort(context.Background(), id)
			if p.inc != inc || !p.isUp {
				return // crashed again
			}
			if err == nil {
				p.s.hist.partAborted(p.name, id)
			}
		}
		ids = nil
	}
	p.s.tracef(p.name, "restarted (incarnation %d): %d prepared in doubt", p.inc, len(ids))
	p.perform(inc, p.m.Recovered(ids, p.s.sched.now))
}

func (p *partNode) crash(where string) {
	p.s.tracef(p.name, "CRASH %s", where)
	p.s.crashes++
	p.isUp = false
	p.disk.Crash()
	p.res.close() // fails: its files died with the crash; this only stops its writer
	p.res, p.m, p.queries = nil, nil, nil
	p.s.touchAll()
	p.s.scheduleRestart(p)
}

func (p *partNode) crashPoint(where string) bool {
	if p.s.shouldCrash() {
		p.crash(where)
		return true
	}
	return false
}

func (p *partNode) receive(m message) {
	now := p.s.sched.now
	inc := p.inc
	var rd tpc.ParticipantReady
	switch m.kind {
	case msgPrepare:
		p.nextReq++
		rd = p.m.Prepare(p.nextReq, m.tx, m.payload, m.onePhase, coordinatorName, now)
	case msgCommit:
		p.nextReq++
		rd = p.m.Commit(p.nextReq, m.tx, now)
	case msgAbort:
		if p.res.state(m.tx) != travel.StateCommitted {
			// Unless it committed in one phase (and refuses), the
			// transaction is aborted for this participant from now on.
			p.s.hist.abortLearnt(p.name, m.tx, inc)
		}
		if _, known := p.m.Lookup(m.tx); p.s.bugs.AcceptPrepareAfterAbort && !known {
			// Broken on purpose: an ABORT for a transaction not seen yet
			// is acknowledged and forgotten instead of remembered.
			p.s.net.send(message{kind: msgAck, from: p.name, to: coordinatorName, tx: m.tx}, nil)
			return
		}
		p.nextReq++
		rd = p.m.Abort(p.nextReq, m.tx, now)
	case msgOutcome:
		if q, ok := p.queries[m.tx]; !ok || q != m.req {
			return // a duplicate or an answer to a query given up on
		}
		delete(p.queries, m.tx)
		if st, ok := p.m.Lookup(m.tx); ok && st.State == tpc.PartPrepared && m.outcome == concord.OutcomeAborted {
			// Still in doubt, so it acts on the answer. (A late answer
			// to a transaction decided meanwhile changes nothing: a
			// presumed abort for a committed and acknowledged one is
			// right.)
			p.s.hist.abortLearnt(p.name, m.tx, inc)
		}
		rd = p.m.Done(tpc.ParticipantResult{Kind: tpc.ActQuery, ID: m.tx, Outcome: m.outcome}, now)
	default:
		return
	}
	p.perform(inc, rd)
}

// perform sends the replies, then starts the resource calls and queries.
func (p *partNode) perform(inc int, rd tpc.ParticipantReady) {
	for _, r := range rd.Replies {
		if p.crashPoint(fmt.Sprintf("before replying to %s", r.ID)) {
			return
		}
		m := message{from: p.name, to: coordinatorName, tx: r.ID, vote: r.Vote, outcome: r.Outcome, reason: r.Reason}
		switch r.Kind {
		case tpc.ReplyVote:
			m.kind = msgVote
			p.s.hist.voted(p.name, r.ID, r.Vote, inc)
		case tpc.ReplyAck:
			m.kind = msgAck
		case tpc.ReplyFailure:
			m.kind = msgFailure
		}
		p.s.net.send(m, nil)
	}
	for _, a := range rd.Actions {
		if a.Kind == tpc.ActQuery {
			p.query(inc, a.ID)
			continue
		}
		p.calls++
		p.s.sched.after(time.Duration(p.s.rng.Int64N(int64(2*time.Millisecond))), func() {
			if p.inc == inc && p.isUp {
				p.calls--
				p.call(inc, a)
			}
		})
	}
	p.schedule(inc)
}

// call performs one resource call and reports its result to the machine.
func (p *partNode) call(inc int, a tpc.ParticipantAction) {
	ctx := context.Background()
	res := a.Result()
	var err error
	switch a.Kind {
	case tpc.ActPrepare:
		var pr participant.PrepareResult
		pr, err = p.res.Prepare(ctx, a.ID, a.Payload, participant.PrepareInfo{Deadline: a.Deadline})
		res.Vote, res.Reason = pr.Vote, pr.Reason
	case tpc.ActCommitOnePhase:
		res.Outcome, res.Reason, err = p.res.CommitOnePhase(ctx, a.ID, a.Payload, participant.PrepareInfo{Deadline: a.Deadline})
		switch {
		case err == nil && res.Outcome == concord.OutcomeCommitted:
			p.s.hist.partCommitted(p.name, a.ID)
		case err == nil && res.Outcome == concord.OutcomeAborted:
			p.s.hist.partAborted(p.name, a.ID)
		}
	case tpc.ActCommit:
		err = p.res.Commit(ctx, a.ID)
		if err == nil {
			p.s.hist.partCommitted(p.name, a.ID)
		}
	case tpc.ActAbort:
		err = p.res.Abort(ctx, a.ID)
		if err == nil {
			p.s.hist.partAborted(p.name, a.ID)
		}
	}
	if errors.Is(err, errCrashed) || p.inc != inc {
		return
	}
	switch {
	case err == nil:
	case errors.Is(err, participant.ErrUnknownTx):
		res.Err, res.ErrText = tpc.PErrUnknownTx, err.Error()
	case errors.Is(err, participant.ErrAlreadyDecided):
		res.Err, res.ErrText = tpc.PErrAlreadyDecided, err.Error()
	default:
		res.Err, res.ErrText = tpc.PErrFailed, err.Error()
	}
	p.checkConservation()
	if p.s.rng.IntN(50) == 0 {
		if err := p.res.snapshot(); errors.Is(err, errCrashed) {
			return
		} else if err != nil {
			p.s.violate(Violation{Invariant: "durability", At: p.s.sched.elapsed(), Detail: fmt.Sprintf("%s: %v", p.name, err)})
			return
		}
	}
	if p.crashPoint(fmt.Sprintf("after %s %s, before reporting it", a.Kind, a.ID)) {
		return
	}
	p.perform(inc, p.m.Done(res, p.s.sched.now))
}

// query asks the coordinator for id's outcome; no answer in time is a
// failed query, which the machine retries with backoff.
func (p *partNode) query(inc int, id concord.TxID) {
	p.nextReq++
	q := p.nextReq
	p.queries[id] = q
	giveUp := func(why string) {
		if p.inc != inc || !p.isUp || p.queries[id] != q {
			return
		}
		delete(p.queries, id)
		p.perform(inc, p.m.Done(tpc.ParticipantResult{Kind: tpc.ActQuery, ID: id, Err: tpc.PErrFailed, ErrText: why}, p.s.sched.now))
	}
	p.s.net.send(message{kind: msgQuery, from: p.name, to: coordinatorName, tx: id, req: q}, func() { giveUp("connection refused") })
	p.s.sched.after(p.s.replyTimeout, func() { giveUp("no answer in time") })
}

// schedule arranges the machine's next Tick.
func (p *partNode) schedule(inc int) {
	if p.inc != inc || !p.isUp {
		return
	}
	w := p.m.NextWake()
	if w.IsZero() || (!p.wake.IsZero() && !w.Before(p.wake)) {
		return
	}
	if w.Before(p.s.sched.now) {
		w = p.s.sched.now
	}
	p.wake = w
	p.s.sched.at(w, func() {
		if p.inc != inc || !p.isUp || !p.wake.Equal(w) {
			return
		}
		p.wake = time.Time{}
		p.perform(inc, p.m.Tick(p.s.sched.now))
	})
}

// checkConservation asserts available + held + confirmed = capacity for
// every SKU, and that held matches the prepared reservations.
func (p *partNode) checkConservation() {
	if err := p.res.check(); err != nil {
		p.s.violate(Violation{Invariant: "conservation", At: p.s.sched.elapsed(), Detail: fmt.Sprintf("%s: %v", p.name, err)})
	}
}
