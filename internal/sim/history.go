package sim

import (
	"fmt"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/tpc"
	"github.com/concordtx/concord/travel"
)

// Violation is one broken invariant found by the checker.
type Violation struct {
	Invariant string        // short name, e.g. "agreement"
	Tx        concord.TxID  // the transaction concerned, if one is
	At        time.Duration // simulated time since the run began
	Detail    string
}

func (v Violation) String() string {
	s := fmt.Sprintf("%s at +%s", v.Invariant, v.At)
	if v.Tx != "" {
		s += " tx " + string(v.Tx)
	}
	return s + ": " + v.Detail
}

// txHist is everything the checker has seen of one transaction: the ground
// truth the invariants are checked against.
type txHist struct {
	id       concord.TxID
	branches []tpc.Branch
	onePhase bool
	// faulted says a fault touched the transaction (a lost message, a
	// crash or partition while it ran, a message held back past its
	// deadline): non-triviality is only asked of the others.
	faulted bool

	told          concord.Outcome // what the client was told
	commitDurable bool            // the commit decision was on stable storage at the coordinator
	coordAborted  bool            // the coordinator decided (or recovered) abort

	parts map[string]*partHist
}

// partHist is one participant's side of one transaction.
type partHist struct {
	vote concord.Vote // the last vote it sent
	// prepared: it sent a yes vote, so its prepared state is durable and
	// must outlive its crashes until a decision is applied.
	prepared  bool
	committed bool // a commit was applied durably (two-phase or one-phase)
	aborted   bool // an abort was applied (maybe not durably: aborts are not forced)
	// abortKnown is the incarnation (counted from 1) in which the
	// participant learnt that the transaction aborted: an ABORT arrived or
	// an outcome query answered aborted. A yes vote in that same
	// incarnation would be a hanging reservation.
	abortKnown int
}

// history records what every node did, for the checker.
type history struct {
	s     *sim
	txs   map[concord.TxID]*txHist
	order []*txHist
}

func newHistory(s *sim) *history {
	return &history{s: s, txs: make(map[concord.TxID]*txHist)}
}

func (h *history) violate(invariant string, tx concord.TxID, format string, args ...any) {
	h.s.violate(Violation{Invariant: invariant, Tx: tx, At: h.s.sched.elapsed(), Detail: fmt.Sprintf(format, args...)})
}

func (h *history) tx(id concord.TxID) *txHist {
	t := h.txs[id]
	if t == nil {
		// A message for a transaction the workload never began.
		h.violate("validity", id, "a node acted on a transaction that was never begun")
		t = &txHist{id: id, parts: map[string]*partHist{}}
		h.txs[id] = t
	}
	return t
}

func (t *txHist) part(name string) *partHist {
	p := t.parts[name]
	if p == nil {
		p = &partHist{}
		t.parts[name] = p
	}
	return p
}

// isWrite reports whether participant p's branch asks to hold stock, so
// that a commit must confirm it there.
func (t *txHist) isWrite(p string) bool {
	for _, b := range t.branches {
		if b.Participant == p {
			return !isReadOnlyPayload(b.Payload)
		}
	}
	return false
}

// committedSomewhere reports whether any participant applied a commit
// that holds stock.
func (t *txHist) committedSomewhere() (string, bool) {
	for _, b := range t.branches {
		if p := t.parts[b.Participant]; p != nil && p.committed && t.isWrite(b.Participant) {
			return b.Participant, true
		}
	}
	return "", false
}

// decidedCommit reports whether the transaction's true outcome is commit:
// a durable commit decision or a one-phase commit at its participant. A
// transaction with nothing but read-only branches holds nothing anywhere,
// so what its client heard is its outcome.
func (t *txHist) decidedCommit() bool {
	if !t.hasWrites() {
		return t.told == concord.OutcomeCommitted // nothing held anywhere: what the client heard is all there is
	}
	if t.commitDurable {
		return true
	}
	_, ok := t.committedSomewhere()
	return ok && t.onePhase
}

// hasWrites reports whether any branch asks to hold stock.
func (t *txHist) hasWrites() bool {
	for _, b := range t.branches {
		if !isReadOnlyPayload(b.Payload) {
			return true
		}
	}
	return false
}

func (h *history) begin(id concord.TxID, branches []tpc.Branch) {
	t := &txHist{id: id, branches: branches, onePhase: len(branches) == 1, parts: map[string]*partHist{}}
	h.txs[id] = t
	h.order = append(h.order, t)
}

// told: the coordinator answered the client.
func (h *history) told(id concord.TxID, o concord.Outcome) {
	t := h.tx(id)
	if t.told != concord.OutcomePending && t.told != o {
		h.violate("stability", id, "client told %s, then %s", t.told, o)
	}
	t.told = o
	if !t.hasWrites() {
		return
	}
	switch o {
	case concord.OutcomeCommitted:
		if !t.onePhase && !t.commitDurable {
			h.violate("stability", id, "client told committed before the commit decision was durable")
		}
		if t.coordAborted {
			h.violate("stability", id, "client told committed for a transaction the coordinator aborted")
		}
	case concord.OutcomeAborted:
		if t.decidedCommit() {
			h.violate("stability", id, "client told aborted for a committed transaction")
		}
	}
}

// commitDurable: the coordinator's commit decision is on stable storage.
func (h *history) commitDecided(id concord.TxID) {
	t := h.tx(id)
	for _, b := range t.branches {
		p := t.parts[b.Participant]
		if p == nil || (p.vote != concord.VoteYes && p.vote != concord.VoteReadOnly) {
			vote := concord.VoteNone
			if p != nil {
				vote = p.vote
			}
			h.violate("validity", id, "commit decided but %s sent no yes or read-only vote (last vote %s)", b.Participant, vote)
		}
	}
	if t.coordAborted {
		h.violate("agreement", id, "coordinator decided commit after deciding abort")
	}
	t.commitDurable = true
}

// coordAbort: the coordinator decided, recovered or reported abort.
func (h *history) coordAbort(id concord.TxID, how string) {
	t := h.tx(id)
	if t.commitDurable {
		h.violate("monotonic", id, "coordinator %s after its commit decision was durable", how)
	}
	if p, ok := t.committedSomewhere(); ok {
		h.violate("agreement", id, "coordinator %s but %s committed", how, p)
	}
	t.coordAborted = true
}

// answered: the coordinator answered an outcome query. Presumed abort
// answers "aborted" for any transaction it has no record of, so the answer
// is wrong only if the transaction committed and some participant has not
// applied the commit yet: the coordinator forgot a commit before every
// acknowledgement was in.
func (h *history) answered(id concord.TxID, o concord.Outcome, presumed bool) {
	t := h.tx(id)
	if o != concord.OutcomeAborted || !t.decidedCommit() {
		return
	}
	for _, b := range t.branches {
		if p := t.parts[b.Participant]; t.isWrite(b.Participant) && (p == nil || !p.committed) {
			how := "from its table"
			if presumed {
				how = "presumed, with no record of it"
			}
			h.violate("presumption", id, "coordinator answered aborted (%s) for a committed transaction that %s has not committed yet", how, b.Participant)
			return
		}
	}
}

// voted: participant p sent vote on id in incarnation inc.
func (h *history) voted(p string, id concord.TxID, v concord.Vote, inc int) {
	t := h.tx(id)
	ph := t.part(p)
	if v == concord.VoteYes {
		if ph.abortKnown == inc && !t.onePhase {
			// (A one-phase ABORT only asks; a participant that committed
			// in one phase rightly answers with its commit.)
			h.violate("no-hanging", id, "%s voted yes after it learnt the transaction aborted", p)
		}
		if ph.aborted {
			h.violate("monotonic", id, "%s voted yes after applying an abort", p)
		}
		ph.prepared = true
	}
	if v == concord.VoteNo && ph.prepared && ph.abortKnown == 0 {
		h.violate("no-unilateral-abort", id, "%s voted no after voting yes", p)
	}
	ph.vote = v
}

// abortLearnt: participant p learnt in incarnation inc that id aborted.
func (h *history) abortLearnt(p string, id concord.TxID, inc int) {
	h.tx(id).part(p).abortKnown = inc
}

// partCommitted: participant p applied a commit of id durably.
func (h *history) partCommitted(p string, id concord.TxID) {
	t := h.tx(id)
	onePhase := t.onePhase // a lone participant decides alone
	ph := t.part(p)
	if !t.isWrite(p) {
		ph.committed = true
		return // a read-only branch holds nothing: commit and abort are the same
	}
	if ph.aborted {
		h.violate("monotonic", id, "%s committed after applying an abort", p)
	}
	if !onePhase && !t.commitDurable {
		h.violate("validity", id, "%s committed before the commit decision was durable", p)
	}
	if t.coordAborted && !onePhase {
		h.violate("agreement", id, "%s committed a transaction the coordinator aborted", p)
	}
	for _, b := range t.branches {
		if o := t.parts[b.Participant]; o != nil && o.aborted && o.prepared && b.Participant != p {
			h.violate("agreement", id, "%s committed while %s aborted", p, b.Participant)
		}
	}
	ph.committed = true
}

// partAborted: participant p applied an abort of id.
func (h *history) partAborted(p string, id concord.TxID) {
	t := h.tx(id)
	ph := t.part(p)
	if !t.isWrite(p) {
		return
	}
	if ph.committed {
		h.violate("monotonic", id, "%s aborted after committing", p)
	}
	if t.decidedCommit() && ph.prepared {
		h.violate("agreement", id, "%s aborted a committed transaction", p)
	}
	if ph.prepared && ph.abortKnown == 0 && !t.onePhase {
		h.violate("no-unilateral-abort", id, "%s aborted after voting yes without being told the transaction aborted", p)
	}
	ph.aborted = true
}

// restarted checks what participant p's store holds after a restart against
// what p promised before it crashed: a commit it applied is still committed,
// and a yes vote with no decision applied is still prepared.
func (h *history) restarted(p *partNode, inc int) {
	for _, t := range h.order {
		if !t.hasBranch(p.name) || !t.isWrite(p.name) {
			continue
		}
		ph := t.part(p.name)
		st := p.res.state(t.id)
		switch {
		case ph.committed && st != travel.StateCommitted:
			h.violate("durability", t.id, "%s lost its commit in a crash (store says %q)", p.name, stateName(st))
		case !ph.committed && st == travel.StateCommitted:
			// The commit was durable but the crash came before the
			// driver saw the call return.
			h.partCommitted(p.name, t.id)
		case ph.prepared && !ph.aborted && st != travel.StatePrepared && st != travel.StateCommitted:
			h.violate("no-unilateral-abort", t.id, "%s voted yes, then came back from a crash without the transaction prepared (store says %q)", p.name, stateName(st))
		case ph.aborted && st != travel.StateAborted:
			// The abort was not forced and the crash lost it: the
			// transaction is in doubt again (or unknown) and will be
			// aborted again; a late PREPARE is no longer refused.
			ph.aborted = false
		}
	}
}

// hasBranch reports whether participant p takes part in the transaction.
func (t *txHist) hasBranch(p string) bool {
	for _, b := range t.branches {
		if b.Participant == p {
			return true
		}
	}
	return false
}
