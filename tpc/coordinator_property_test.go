package tpc

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/concordtx/concord"
)

// pState is a modelled participant's state for one transaction.
type pState uint8

const (
	pNone pState = iota
	pPrepared
	pCommitted // by COMMIT, or by itself in one phase
	pAborted
	pReadOnly
)

// inflight is a message on its way: a request to a participant, or the
// driver's report of its answer waiting to be stepped into the coordinator.
type inflight struct {
	msg   Message
	reply func(t *CoordinatorTx, now time.Time) Ready // nil for a request
	desc  string
}

// world is a coordinator, its log, and honest participants joined by a
// network that loses, duplicates and reorders, driven by a seeded random
// source. Participants follow the protocol: yes only when prepared, refuse a
// late PREPARE after ABORT, commit only what they prepared, and answer an
// ABORT for a one-phase commit with the outcome they hold.
type world struct {
	t        *testing.T
	rng      *rand.Rand
	cfg      Config
	now      time.Time
	txs      map[concord.TxID]*CoordinatorTx
	ids      []concord.TxID
	log      []Record
	synced   int
	check    *checker
	net      []inflight
	parts    map[concord.TxID]map[string]pState
	onePhase map[concord.TxID]bool
	reported map[concord.TxID]concord.Outcome
	trace    []string
	seq      int
}

func newWorld(t *testing.T, seed uint64) *world {
	return &world{
		t:        t,
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		cfg:      Config{RetryMin: 100 * time.Millisecond, RetryMax: 2 * time.Second},
		now:      scenarioEpoch,
		txs:      map[concord.TxID]*CoordinatorTx{},
		check:    newChecker(),
		parts:    map[concord.TxID]map[string]pState{},
		onePhase: map[concord.TxID]bool{},
		reported: map[concord.TxID]concord.Outcome{},
	}
}

func (w *world) fail(format string, args ...any) {
	w.t.Helper()
	tail := w.trace
	if len(tail) > 40 {
		tail = tail[len(tail)-40:]
	}
	w.t.Fatalf("%s\nlast events:\n  %s", fmt.Sprintf(format, args...), joinLines(tail))
}

func joinLines(s []string) string {
	out := ""
	for i, l := range s {
		if i > 0 {
			out += "\n  "
		}
		out += l
	}
	return out
}

// apply checks a Ready, logs its records and puts its messages on the wire.
func (w *world) apply(id concord.TxID, rd Ready) {
	w.t.Helper()
	if err := w.check.step(id, rd); err != nil {
		w.fail("invariant: %v", err)
	}
	for _, r := range rd.Records {
		// Presumption safety: a commit is forgotten only after every yes
		// voter acknowledged, and only a committed participant acks.
		if r.Type == RecEnd && r.Outcome == concord.OutcomeCommitted {
			for p, v := range w.check.tx(id).commitVotes {
				if v == concord.VoteYes && w.parts[id][p] != pCommitted {
					w.fail("%s: END written while %s (yes voter) has not committed", id, p)
				}
			}
		}
	}
	w.log = append(w.log, rd.Records...)
	if rd.MustSync {
		w.synced = len(w.log)
	}
	for _, m := range rd.Messages {
		w.net = append(w.net, inflight{msg: m, desc: fmt.Sprintf("%s %s -> %s", m.Kind, m.TxID, m.To)})
	}
	if rd.Outcome != concord.OutcomePending {
		w.reported[id] = rd.Outcome
	}
}

func (w *world) begin() {
	w.seq++
	id := concord.TxID(fmt.Sprintf("tx%d", w.seq))
	names := []string{"flights", "hotels", "cars", "trains"}
	n := 1 + w.rng.IntN(len(names))
	var branches []Branch
	for _, p := range names[:n] {
		branches = append(branches, Branch{Participant: p, Payload: []byte(`{}`)})
	}
	deadline := w.now.Add(time.Duration(1+w.rng.IntN(5)) * time.Second)
	tx, rd := Begin(w.cfg, id, branches, w.now, deadline)
	w.txs[id] = tx
	w.ids = append(w.ids, id)
	w.parts[id] = map[string]pState{}
	w.onePhase[id] = n == 1
	w.trace = append(w.trace, fmt.Sprintf("begin %s %v", id, names[:n]))
	w.apply(id, rd)
}

// deliver hands a request to its participant, which acts on it and queues
// its answer for the coordinator.
func (w *world) deliver(m Message) {
	st := w.parts[m.TxID][m.To]
	set := func(s pState) { w.parts[m.TxID][m.To] = s }
	var reply func(*CoordinatorTx, time.Time) Ready
	var desc string
	switch m.Kind {
	case MsgPrepare:
		var ev VoteEvent
		ev.Participant = m.To
		switch {
		case st == pNone && m.OnePhase:
			switch w.rng.IntN(4) {
			case 0:
				set(pAborted)
				ev.Vote, ev.Outcome, ev.Reason = concord.VoteNo, concord.OutcomeAborted, "sold out"
			case 1:
				set(pPrepared) // cannot commit in one step: votes yes
				ev.Vote = concord.VoteYes
			default:
				set(pCommitted)
				ev.Vote, ev.Outcome = concord.VoteYes, concord.OutcomeCommitted
			}
		case st == pNone:
			switch r := w.rng.IntN(10); {
			case r < 6:
				set(pPrepared)
				ev.Vote = concord.VoteYes
			case r < 8:
				set(pReadOnly)
				ev.Vote = concord.VoteReadOnly
			default:
				set(pAborted)
				ev.Vote, ev.Reason = concord.VoteNo, "sold out"
			}
		case st == pPrepared:
			ev.Vote = concord.VoteYes
		case st == pReadOnly:
			ev.Vote = concord.VoteReadOnly
		case st == pAborted: // includes a late PREPARE after ABORT: refused
			ev.Vote, ev.Reason = concord.VoteNo, "already aborted"
			if m.OnePhase {
				ev.Outcome = concord.OutcomeAborted
			}
		case st == pCommitted:
			ev.Vote, ev.Outcome = concord.VoteYes, concord.OutcomeCommitted
		}
		desc = fmt.Sprintf("vote %s %s %s outcome=%s", m.TxID, m.To, ev.Vote, ev.Outcome)
		reply = func(t *CoordinatorTx, now time.Time) Ready { return t.Vote(ev, now) }
	case MsgCommit:
		switch st {
		case pPrepared, pCommitted:
			set(pCommitted)
		default:
			w.fail("agreement: COMMIT %s delivered to %s in state %d", m.TxID, m.To, st)
		}
		desc = fmt.Sprintf("ack %s %s", m.TxID, m.To)
		reply = func(t *CoordinatorTx, now time.Time) Ready { return t.Ack(m.To, now) }
	case MsgAbort:
		switch st {
		case pCommitted:
			if !w.onePhase[m.TxID] {
				w.fail("agreement: ABORT %s delivered to %s after it committed", m.TxID, m.To)
			}
			desc = fmt.Sprintf("resolved %s %s committed", m.TxID, m.To)
			reply = func(t *CoordinatorTx, now time.Time) Ready { return t.Resolved(m.To, concord.OutcomeCommitted, now) }
		default:
			if st != pReadOnly {
				set(pAborted)
			}
			desc = fmt.Sprintf("ack %s %s", m.TxID, m.To)
			reply = func(t *CoordinatorTx, now time.Time) Ready { return t.Ack(m.To, now) }
		}
	}
	w.net = append(w.net, inflight{msg: m, reply: reply, desc: desc})
}

// lose turns a lost request or answer into what the driver learns: an
// unreachable vote or a failed delivery.
func (w *world) lose(f inflight) {
	m := f.msg
	tx := w.txs[m.TxID]
	if tx == nil {
		return
	}
	var rd Ready
	if m.Kind == MsgPrepare {
		w.trace = append(w.trace, fmt.Sprintf("lost %s: vote %s %s unreachable", f.desc, m.TxID, m.To))
		rd = tx.Vote(VoteEvent{Participant: m.To, Vote: concord.VoteUnreachable, Reason: "lost"}, w.now)
	} else {
		w.trace = append(w.trace, fmt.Sprintf("lost %s: fail %s %s", f.desc, m.TxID, m.To))
		rd = tx.DeliveryFailed(m.To, "lost", w.now)
	}
	w.apply(m.TxID, rd)
}

func (w *world) stepReply(f inflight) {
	tx := w.txs[f.msg.TxID]
	if tx == nil {
		return // the coordinator that asked has crashed
	}
	w.trace = append(w.trace, f.desc)
	w.apply(f.msg.TxID, f.reply(tx, w.now))
}

func (w *world) tick(d time.Duration) {
	w.now = w.now.Add(d)
	w.trace = append(w.trace, fmt.Sprintf("tick +%v", d))
	for _, id := range w.ids {
		if tx := w.txs[id]; tx != nil {
			w.apply(id, tx.Tick(w.now))
		}
	}
}

func (w *world) crash(loseUnsynced bool) {
	if loseUnsynced {
		w.log = w.log[:w.synced]
	}
	w.synced = len(w.log)
	w.trace = append(w.trace, fmt.Sprintf("crash lose-unsynced=%t, %d records kept", loseUnsynced, len(w.log)))
	// Answers in flight were for the old process; requests still arrive.
	w.net = slices.DeleteFunc(w.net, func(f inflight) bool { return f.reply != nil })
	w.check.crash(w.log)
	live, finished := Recover(w.cfg, slices.Clone(w.log), w.now)
	w.txs = map[concord.TxID]*CoordinatorTx{}
	for _, st := range finished {
		if !st.Done {
			w.fail("finished status %s not done", st.TxID)
		}
	}
	for _, l := range live {
		w.txs[l.Tx.ID()] = l.Tx
		w.apply(l.Tx.ID(), l.Ready)
	}
}

// randomStep performs one random event.
func (w *world) randomStep() {
	r := w.rng.IntN(100)
	switch {
	case r < 8 || len(w.ids) == 0:
		w.begin()
	case r < 55 && len(w.net) > 0:
		i := w.rng.IntN(len(w.net))
		f := w.net[i]
		if w.rng.IntN(5) > 0 { // mostly remove it; otherwise it is duplicated
			w.net = slices.Delete(w.net, i, i+1)
		}
		if f.reply == nil {
			w.trace = append(w.trace, "deliver "+f.desc)
			w.deliver(f.msg)
		} else {
			w.stepReply(f)
		}
	case r < 62 && len(w.net) > 0:
		i := w.rng.IntN(len(w.net))
		f := w.net[i]
		w.net = slices.Delete(w.net, i, i+1)
		w.lose(f)
	case r < 80:
		w.tick(time.Duration(w.rng.IntN(1500)) * time.Millisecond)
	case r < 84:
		id := w.ids[w.rng.IntN(len(w.ids))]
		if tx := w.txs[id]; tx != nil {
			w.trace = append(w.trace, "retry-now "+string(id))
			w.apply(id, tx.RetryNow(w.now))
		}
	case r < 88:
		id := w.ids[w.rng.IntN(len(w.ids))]
		if tx := w.txs[id]; tx != nil {
			w.trace = append(w.trace, "abort "+string(id))
			rd, err := tx.Abort("operator", w.now)
			if err != nil && tx.Status().Outcome == concord.OutcomePending {
				w.fail("abort of undecided %s refused: %v", id, err)
			}
			w.apply(id, rd)
		}
	case r < 93:
		// Stray and duplicate events from nowhere.
		id := w.ids[w.rng.IntN(len(w.ids))]
		if tx := w.txs[id]; tx != nil {
			// An ack only ever comes from a participant that applied a
			// decision, so strays are from a participant not in the
			// transaction or a read-only one; a failed delivery may be
			// reported for anyone.
			who := []string{"flights", "hotels", "ghost"}[w.rng.IntN(3)]
			w.trace = append(w.trace, "stray ack/fail "+string(id)+" "+who)
			if _, in := w.parts[id][who]; who == "ghost" || (in && w.parts[id][who] == pReadOnly) {
				w.apply(id, tx.Ack(who, w.now))
			}
			if who == "ghost" {
				w.apply(id, tx.Vote(VoteEvent{Participant: who, Vote: concord.VoteYes}, w.now))
				w.apply(id, tx.Resolved(who, concord.OutcomeCommitted, w.now))
			}
			w.apply(id, tx.DeliveryFailed(who, "stray", w.now))
		}
	case r < 96:
		w.crash(w.rng.IntN(2) == 0)
	default:
		w.tick(time.Duration(w.rng.IntN(4)) * time.Second)
	}
}

// heal delivers everything without loss until every transaction is done,
// and has every participant still prepared ask for the outcome, as the
// participant SDK does (unknown means aborted).
func (w *world) heal() {
	for round := 0; round < 10000; round++ {
		if len(w.net) > 0 {
			f := w.net[0]
			w.net = w.net[1:]
			if f.reply == nil {
				w.trace = append(w.trace, "deliver "+f.desc)
				w.deliver(f.msg)
			} else {
				w.stepReply(f)
			}
			continue
		}
		pending := false
		for _, id := range w.ids {
			if tx := w.txs[id]; tx != nil && !tx.Status().Done {
				pending = true
			}
		}
		if !pending {
			break
		}
		// Only ticks: scheduled retries must be enough to finish.
		w.tick(w.cfg.RetryMax)
	}
	for _, id := range w.ids {
		if tx := w.txs[id]; tx != nil && !tx.Status().Done {
			w.fail("liveness: %s not done after healing: %+v", id, tx.Status())
		}
	}
	// In-doubt participants ask; the answer comes from the log.
	decided := map[concord.TxID]concord.Outcome{}
	for _, r := range w.log {
		if _, ok := decided[r.TxID]; ok {
			continue
		}
		switch r.Type {
		case RecCommit:
			decided[r.TxID] = concord.OutcomeCommitted
		case RecAbort:
			decided[r.TxID] = concord.OutcomeAborted
		case RecEnd:
			decided[r.TxID] = r.Outcome
		}
	}
	for id, ps := range w.parts {
		for p, st := range ps {
			if st == pPrepared {
				if decided[id] == concord.OutcomeCommitted {
					ps[p] = pCommitted
				} else {
					ps[p] = pAborted
				}
			}
		}
	}
}

// verify checks agreement and the client's view over final participant
// states.
func (w *world) verify() {
	for id, ps := range w.parts {
		var committed, aborted []string
		for p, st := range ps {
			switch st {
			case pCommitted:
				committed = append(committed, p)
			case pAborted:
				aborted = append(aborted, p)
			}
		}
		if len(committed) > 0 && len(aborted) > 0 {
			w.fail("agreement: %s committed at %v, aborted at %v", id, committed, aborted)
		}
		switch w.reported[id] {
		case concord.OutcomeCommitted:
			if len(aborted) > 0 {
				w.fail("client told %s committed, but %v aborted", id, aborted)
			}
		case concord.OutcomeAborted:
			if len(committed) > 0 {
				w.fail("client told %s aborted, but %v committed", id, committed)
			}
		}
	}
}

// TestCoordinatorRandomEvents drives many transactions through random
// sequences of votes, acknowledgements, losses, duplicates, ticks, operator
// actions and crashes (with and without losing unsynced records) against
// honest participants. Every Ready is checked by the invariant checker
// (outcome never flips, MsgCommit only after a synced RecCommit and only to
// yes voters, Done only after END or abort, no ABORT after COMMIT); at the
// end the network heals and every transaction must finish with all its
// participants agreeing and matching what the client was told.
func TestCoordinatorRandomEvents(t *testing.T) {
	seeds := 300
	if testing.Short() {
		seeds = 50
	}
	for seed := range uint64(seeds) {
		w := newWorld(t, seed)
		w.trace = append(w.trace, fmt.Sprintf("seed %d", seed))
		for range 400 {
			w.randomStep()
		}
		w.heal()
		w.verify()
	}
}
