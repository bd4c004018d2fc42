package tpc

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/concordtx/concord"
)

// The participant property test drives a Participant with random,
// protocol-respecting coordinators, a model resource that fails at random,
// duplicate and late requests, ticks and restarts, and checks on every step:
//   - at most one resource call per transaction is in flight;
//   - a yes vote is only ever answered for a transaction the resource holds
//     prepared (or committed);
//   - a commit is acknowledged only when the resource holds it committed,
//     an abort only when it does not hold it prepared or committed;
//   - after a yes vote the participant never calls Abort unless the
//     coordinator decided abort (and never Commit unless it decided commit);
//   - every request is answered at most once;
// and, once faults stop, that every request is answered and every
// transaction ends as the coordinator decided.

type pmRes struct {
	state string // "", prepared, committed, aborted
}

type pmTx struct {
	id         concord.TxID
	onePhase   bool
	votedYes   bool            // a yes vote was answered
	abortAcked bool            // an abort was acknowledged
	decision   concord.Outcome // the coordinator's decision
}

type pmWorld struct {
	t       *testing.T
	rng     *rand.Rand
	now     time.Time
	p       *Participant
	res     map[concord.TxID]*pmRes
	txs     []*pmTx
	byID    map[concord.TxID]*pmTx
	flight  []ParticipantAction // calls started and not yet reported
	busy    map[concord.TxID]bool
	nextReq uint64
	open    map[uint64]string // request number -> what it asked ("prepare tx1")
	faults  bool
	cfg     ParticipantConfig
	seed    int
	trace   []string
}

func (w *pmWorld) fail(format string, args ...any) {
	w.t.Helper()
	tail := w.trace[max(0, len(w.trace)-40):]
	w.t.Fatalf("seed %d: %s\nlast events:\n  %s", w.seed, fmt.Sprintf(format, args...), strings.Join(tail, "\n  "))
}

func (w *pmWorld) note(format string, args ...any) {
	w.trace = append(w.trace, fmt.Sprintf(format, args...))
}

func (w *pmWorld) resOf(id concord.TxID) *pmRes {
	r := w.res[id]
	if r == nil {
		r = &pmRes{}
		w.res[id] = r
	}
	return r
}

// absorb checks a Ready and takes in its actions.
func (w *pmWorld) absorb(rd ParticipantReady) {
	w.t.Helper()
	for _, a := range rd.Actions {
		w.note("  -> call %s %s", a.Kind, a.ID)
	}
	for _, r := range rd.Replies {
		w.note("  -> reply #%d %s kind=%d vote=%s outcome=%s %s", r.Req, r.ID, r.Kind, r.Vote, r.Outcome, r.Reason)
	}
	for _, a := range rd.Actions {
		tx := w.byID[a.ID]
		if a.Kind != ActQuery {
			if w.busy[a.ID] {
				w.fail("second call %s on %s while one is in flight", a.Kind, a.ID)
			}
			w.busy[a.ID] = true
		}
		switch a.Kind {
		case ActAbort:
			if tx.votedYes && tx.decision != concord.OutcomeAborted && !tx.onePhase {
				w.fail("abort of %s after a yes vote, but the coordinator decided %s", a.ID, tx.decision)
			}
		case ActCommit:
			if tx.decision != concord.OutcomeCommitted && !tx.onePhase {
				w.fail("commit of %s, but the coordinator decided %s", a.ID, tx.decision)
			}

		}
		w.flight = append(w.flight, a)
	}
	for _, r := range rd.Replies {
		what, ok := w.open[r.Req]
		if !ok {
			w.fail("reply to request #%d, which is not open (answered twice?)", r.Req)
		}
		delete(w.open, r.Req)
		tx, res := w.byID[r.ID], w.resOf(r.ID)
		switch r.Kind {
		case ReplyVote:
			if r.Vote == concord.VoteYes && res.state != "prepared" && res.state != "committed" {
				w.fail("%s answered yes while the resource holds %q", what, res.state)
			}
			if r.Outcome == concord.OutcomeCommitted && res.state != "committed" && res.state != "readonly" {
				w.fail("%s answered committed while the resource holds %q", what, res.state)
			}
			if r.Vote == concord.VoteYes && !tx.onePhase {
				tx.votedYes = true
			}
			if tx.onePhase && r.Outcome == concord.OutcomeCommitted {
				tx.votedYes = true
			}
		case ReplyAck:
			if what[:6] == "commit" && res.state != "committed" && res.state != "readonly" {
				w.fail("%s acknowledged while the resource holds %q", what, res.state)
			}
			if what[:5] == "abort" && (res.state == "prepared" || res.state == "committed") {
				w.fail("%s acknowledged while the resource holds %q", what, res.state)
			}
			if what[:5] == "abort" {
				tx.abortAcked = true
			}
		}
	}
}

func (w *pmWorld) request(what string, f func(req uint64) ParticipantReady) {
	w.nextReq++
	w.open[w.nextReq] = what
	w.note("request #%d %s", w.nextReq, what)
	w.absorb(f(w.nextReq))
}

// complete finishes in-flight call i at the model resource.
func (w *pmWorld) complete(i int) {
	a := w.flight[i]
	w.flight = append(w.flight[:i], w.flight[i+1:]...)
	if a.Kind != ActQuery {
		delete(w.busy, a.ID)
	}
	res, tx := w.resOf(a.ID), w.byID[a.ID]
	out := ParticipantResult{Kind: a.Kind, ID: a.ID}
	if w.nextReq%2 == 0 {
		out = a.Result() // Done finds the transaction without a lookup
	}
	failing := w.faults && w.rng.IntN(6) == 0
	switch a.Kind {
	case ActPrepare:
		switch {
		case res.state == "aborted":
			out.Vote, out.Reason = concord.VoteNo, "aborted"
		case res.state == "readonly":
			out.Vote = concord.VoteReadOnly
		case res.state != "":
			out.Vote = concord.VoteYes
		case failing:
			out.Err, out.ErrText = PErrFailed, "injected"
			if w.rng.IntN(2) == 0 {
				res.state = "prepared" // the failed call left it prepared
			}
		default:
			switch w.rng.IntN(5) {
			case 0:
				out.Vote, out.Reason = concord.VoteNo, "sold out"
				res.state = "aborted"
			case 1:
				out.Vote = concord.VoteReadOnly
				res.state = "readonly"
			default:
				out.Vote = concord.VoteYes
				res.state = "prepared"
			}
		}
	case ActCommitOnePhase:
		switch {
		case res.state == "aborted":
			out.Outcome = concord.OutcomeAborted
		case res.state == "committed", res.state == "readonly":
			out.Outcome = concord.OutcomeCommitted
		case failing:
			out.Err, out.ErrText = PErrFailed, "injected"
			if w.rng.IntN(2) == 0 {
				res.state = "committed"
			}
		case w.rng.IntN(4) == 0:
			out.Outcome, out.Reason = concord.OutcomeAborted, "sold out"
			res.state = "aborted"
		default:
			out.Outcome = concord.OutcomeCommitted
			res.state = "committed"
		}
	case ActCommit:
		switch {
		case failing:
			out.Err, out.ErrText = PErrFailed, "injected"
		case res.state == "":
			out.Err = PErrUnknownTx
		case res.state == "aborted":
			out.Err = PErrAlreadyDecided
		case res.state == "readonly":
		default:
			res.state = "committed"
		}
	case ActAbort:
		switch {
		case failing:
			out.Err, out.ErrText = PErrFailed, "injected"
		case res.state == "committed":
			out.Err = PErrAlreadyDecided
		case res.state == "readonly":
		default:
			res.state = "aborted"
		}
	case ActQuery:
		switch {
		case failing:
			out.Err, out.ErrText = PErrFailed, "injected"
		case tx.onePhase:
			out.Outcome = concord.OutcomePending
		default:
			out.Outcome = tx.decision
		}
	}
	w.note("done %s %s vote=%s outcome=%s err=%d (resource now %q)", a.Kind, a.ID, out.Vote, out.Outcome, out.Err, res.state)
	if tx.abortAcked && res.state == "committed" {
		w.fail("%s committed at the resource after its abort was acknowledged", a.ID)
	}
	w.absorb(w.p.Done(out, w.now))
}

// decide lets the coordinator decide tx when the protocol allows it.
func (w *pmWorld) decide(tx *pmTx) {
	if tx.decision != concord.OutcomePending {
		return
	}
	if tx.onePhase {
		tx.decision = concord.OutcomeAborted // a timeout: the coordinator sends ABORT and waits
		w.note("coordinator decides %s %s", tx.id, tx.decision)
		return
	}
	if tx.votedYes && w.rng.IntN(3) > 0 {
		tx.decision = concord.OutcomeCommitted
	} else {
		tx.decision = concord.OutcomeAborted
	}
	w.note("coordinator decides %s %s", tx.id, tx.decision)
}

func (w *pmWorld) step() {
	tx := w.txs[w.rng.IntN(len(w.txs))]
	switch n := w.rng.IntN(10); {
	case n < 3:
		w.request("prepare "+string(tx.id), func(req uint64) ParticipantReady {
			return w.p.Prepare(req, tx.id, []byte(`{}`), tx.onePhase, "http://c", w.now)
		})
	case n == 3:
		w.decide(tx)
	case n == 4 && tx.decision == concord.OutcomeCommitted:
		w.request("commit "+string(tx.id), func(req uint64) ParticipantReady { return w.p.Commit(req, tx.id, w.now) })
	case n == 4 && tx.decision == concord.OutcomeAborted:
		w.request("abort "+string(tx.id), func(req uint64) ParticipantReady { return w.p.Abort(req, tx.id, w.now) })
	case n < 8 && len(w.flight) > 0:
		w.complete(w.rng.IntN(len(w.flight)))
	case n == 8:
		w.now = w.now.Add(time.Duration(w.rng.IntN(3000)) * time.Millisecond)
		w.absorb(w.p.Tick(w.now))
	case n == 9 && w.rng.IntN(8) == 0:
		w.restart()
	}
}

// restart loses the machine and every call in flight (each may or may not
// have reached the resource) and every open request (the sender retries).
func (w *pmWorld) restart() {
	for len(w.flight) > 0 {
		if w.rng.IntN(2) == 0 {
			w.complete(0) // reached the resource before the crash
		} else {
			a := w.flight[0]
			w.flight = w.flight[1:]
			delete(w.busy, a.ID)
		}
	}
	w.note("restart")
	w.busy = map[concord.TxID]bool{}
	w.open = map[uint64]string{}
	w.p = NewParticipant(w.cfg)
	var prepared []concord.TxID
	for _, tx := range w.txs {
		if w.resOf(tx.id).state == "prepared" {
			prepared = append(prepared, tx.id)
		}
	}
	w.absorb(w.p.Recovered(prepared, w.now))
}

// settle stops faults, decides everything, delivers every decision and
// runs until nothing is in flight; then every request must be answered and
// the resource must hold each decision.
func (w *pmWorld) settle() {
	w.faults = false
	for _, tx := range w.txs {
		w.decide(tx)
		if tx.decision == concord.OutcomeCommitted {
			w.request("commit "+string(tx.id), func(req uint64) ParticipantReady { return w.p.Commit(req, tx.id, w.now) })
		} else {
			w.request("abort "+string(tx.id), func(req uint64) ParticipantReady { return w.p.Abort(req, tx.id, w.now) })
		}
	}
	for i := 0; i < 10_000 && (len(w.flight) > 0 || len(w.open) > 0); i++ {
		if len(w.flight) > 0 {
			w.complete(0)
			continue
		}
		w.now = w.now.Add(w.cfg.QueryMax)
		w.absorb(w.p.Tick(w.now))
	}
	if len(w.open) > 0 {
		w.fail("requests never answered: %v", w.open)
	}
	for _, tx := range w.txs {
		st := w.resOf(tx.id).state
		switch {
		case tx.decision == concord.OutcomeCommitted && st != "committed" && st != "readonly":
			w.fail("%s: coordinator committed, resource holds %q", tx.id, st)
		case tx.decision == concord.OutcomeAborted && !tx.onePhase && (st == "prepared" || st == "committed"):
			w.fail("%s: coordinator aborted, resource holds %q", tx.id, st)
		case tx.onePhase && st == "prepared":
			w.fail("%s: one-phase left prepared", tx.id)
		case tx.abortAcked && st == "committed":
			w.fail("%s: abort acknowledged, resource holds committed", tx.id)
		}
	}
}

func TestParticipantProperties(t *testing.T) {
	seeds := 2000
	if testing.Short() {
		seeds = 200
	}
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(uint64(seed), 99))
		cfg := ParticipantConfig{OnePhase: seed%2 == 0, InDoubtAfter: time.Second, QueryMin: 100 * time.Millisecond,
			QueryMax: time.Second, Retain: 1 + rng.IntN(4)}
		w := &pmWorld{t: t, rng: rng, now: time.Unix(0, 0), p: NewParticipant(cfg), cfg: cfg,
			res: map[concord.TxID]*pmRes{}, byID: map[concord.TxID]*pmTx{}, busy: map[concord.TxID]bool{},
			open: map[uint64]string{}, faults: true, seed: seed}
		for i := range 4 {
			tx := &pmTx{id: concord.TxID(fmt.Sprintf("tx%d", i)), onePhase: rng.IntN(4) == 0}
			w.txs = append(w.txs, tx)
			w.byID[tx.id] = tx
		}
		for range 150 {
			w.step()
		}
		w.settle()
		if t.Failed() {
			t.Fatalf("seed %d", seed)
		}
	}
}
