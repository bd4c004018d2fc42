package tpc

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/concordtx/concord"
)

// phase is where a coordinator transaction stands.
type phase uint8

const (
	// phasePreparing: PREPAREs are out, no decision yet.
	phasePreparing phase = iota
	// phaseResolving: a one-phase transaction whose answer did not come in
	// time. ABORT was sent; the participant's answer decides the outcome.
	phaseResolving
	// phaseCommitted: the commit decision is on record; COMMIT is being
	// delivered until every yes voter acknowledges.
	phaseCommitted
	// phaseDone: nothing more to do.
	phaseDone
)

// coordBranch is one participant's state inside a CoordinatorTx.
type coordBranch struct {
	Branch
	vote      concord.Vote
	acked     bool // beside vote: they share a word
	reason    string
	attempts  int           // phase-2 deliveries tried
	lastErr   string        // latest phase-2 failure
	nextRetry time.Time     // when Tick resends; zero while a delivery is in flight or none is due
	backoff   time.Duration // last delay scheduled; zero before the first failure
}

// CoordinatorTx is the coordinator's state machine for one transaction under
// presumed abort. It does no I/O and reads no clock: every method takes the
// current time and returns a Ready the driver performs in order (append the
// records, sync them when MustSync, then send the messages and report the
// outcome). It is not safe for concurrent use; the driver serializes the
// calls for one transaction.
//
// The driver reports what happened to every message it sent:
//   - the answer to a MsgPrepare with Vote (VoteUnreachable when it could
//     not be delivered);
//   - the answer to a MsgCommit or MsgAbort with Ack when the participant
//     applied it, DeliveryFailed when it could not be delivered or applied
//     (a retry is then scheduled with capped exponential backoff), or
//     Resolved when the participant refused it because it already holds an
//     outcome (wire.TxFailure with Outcome set).
//
// One phase. A transaction with one branch sends one MsgPrepare with
// OnePhase set and the participant answers with the outcome it applied
// (VoteEvent.Outcome); the coordinator then writes an unforced RecEnd and is
// done, with no forced write of its own. If the deadline passes first, the
// coordinator cannot decide alone, because the participant may already have
// committed: it sends MsgAbort and waits, with no deadline, for the
// participant to settle it. An Ack of that ABORT means aborted; Resolved
// with OutcomeCommitted (the participant refused the ABORT because it
// committed) or a late VoteEvent carrying an outcome gives that outcome.
// Failed deliveries of the ABORT are retried like COMMITs. A participant
// that answers a one-phase PREPARE with a plain yes vote is prepared, so the
// transaction continues as a two-phase commit with one participant.
//
// Duplicate, late and unknown events (a second vote, a vote after the
// decision, an ack from a participant that was never asked, an ack before a
// decision) return an empty Ready and change nothing.
type CoordinatorTx struct {
	cfg      Config
	id       concord.TxID
	deadline time.Time
	branches []coordBranch
	// The four one-byte fields share a word (see smallTx).
	phase    phase
	outcome  concord.Outcome
	onePhase bool
	// forced: every outcome this coordinator decides is synced before it
	// is reported (BeginResubmittable).
	forced bool
	reason string
	cause  string // why a one-phase transaction is being resolved
	// parts lists the participants for records, made once and shared by
	// every record (which only read it).
	parts []string
}

// smallTx holds a CoordinatorTx with room for its branches and their
// names, so that the common transaction of a few participants is one
// allocation. Its fields are laid out without padding words, so that it
// fits the 576-byte size class with the 8-byte header the runtime puts
// before an object of more than 512 bytes with pointers.
type smallTx struct {
	tx       CoordinatorTx
	branches [3]coordBranch
	parts    [3]string
}

// stepRoom holds the slices of the Ready that begins or decides a
// transaction of up to three branches (its record, its messages and the
// decision's votes), so that they are one allocation rather than two or
// three.
type stepRoom struct {
	rec   [1]Record
	msgs  [3]Message
	votes [3]concord.Vote
}

// readyRoom returns a slice holding one zero record, an empty one with
// room for n messages, and, when withVotes is set, n zero votes.
func readyRoom(n int, withVotes bool) (recs []Record, msgs []Message, votes []concord.Vote) {
	if n <= len(stepRoom{}.msgs) {
		r := &stepRoom{}
		recs, msgs = r.rec[:], r.msgs[:0:n]
		if withVotes {
			votes = r.votes[:n:n]
		}
		return recs, msgs, votes
	}
	recs, msgs = make([]Record, 1), make([]Message, 0, n)
	if withVotes {
		votes = make([]concord.Vote, n)
	}
	return recs, msgs, votes
}

// newTx returns a CoordinatorTx with n zero branches.
func newTx(n int) *CoordinatorTx {
	if n <= len(smallTx{}.branches) {
		s := &smallTx{}
		s.tx.branches = s.branches[:n:n]
		s.tx.parts = s.parts[:0:n]
		return &s.tx
	}
	return &CoordinatorTx{branches: make([]coordBranch, n)}
}

// CheckBegin reports why Begin would refuse id and branches, or nil. Drivers
// call it to answer a client with an error; Begin itself turns the same
// problems into an immediate abort with no records and no messages.
func CheckBegin(id concord.TxID, branches []Branch) error {
	if err := concord.ValidateTxID(id); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if len(branches) == 0 {
		return fmt.Errorf("%w: transaction %s has no branches", ErrInvalid, id)
	}
	if len(branches) > MaxBranches {
		return fmt.Errorf("%w: transaction %s has %d branches, at most %d", ErrInvalid, id, len(branches), MaxBranches)
	}
	for i, b := range branches {
		if err := checkParticipant(b.Participant); err != nil {
			return fmt.Errorf("%w: branch %d of %s: %w", ErrInvalid, i, id, err)
		}
		// Branches are few (MaxBranches): comparing with the earlier ones
		// costs less than a map.
		for _, e := range branches[:i] {
			if e.Participant == b.Participant {
				return fmt.Errorf("%w: transaction %s names participant %q twice", ErrInvalid, id, b.Participant)
			}
		}
	}
	return nil
}

// checkParticipant reports a participant name that cannot be logged.
func checkParticipant(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty participant name")
	case len(name) > MaxParticipantLen:
		return fmt.Errorf("participant name of %d bytes, at most %d", len(name), MaxParticipantLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("participant name %q is not UTF-8", name)
	}
	return nil
}

// Begin starts transaction id over branches. It returns an unforced RecBegin
// (presumed abort needs nothing on disk before the decision) and one
// MsgPrepare per branch carrying that branch's payload; a lone branch gets
// OnePhase. deadline is when Tick aborts a transaction still without a
// decision; zero means none. Input that CheckBegin refuses yields a
// transaction already aborted, with the problem as its reason, and a Ready
// with no records and no messages.
func Begin(cfg Config, id concord.TxID, branches []Branch, now, deadline time.Time) (*CoordinatorTx, Ready) {
	t := newTx(len(branches))
	t.cfg, t.id, t.onePhase, t.deadline = cfg.withDefaults(), id, len(branches) == 1, deadline
	for i, b := range branches {
		t.branches[i] = coordBranch{Branch: b}
	}
	if err := CheckBegin(id, branches); err != nil {
		t.phase, t.outcome, t.reason = phaseDone, concord.OutcomeAborted, clip(err.Error())
		return t, Ready{Outcome: concord.OutcomeAborted, Reason: t.reason, Done: true}
	}
	recs, msgs, _ := readyRoom(len(t.branches), false)
	recs[0] = Record{
		Type:         RecBegin,
		TxID:         id,
		Participants: t.names(),
		OnePhase:     t.onePhase,
	}
	for _, b := range t.branches {
		msgs = append(msgs, Message{
			Kind: MsgPrepare, To: b.Participant, TxID: id, Payload: b.Payload, OnePhase: t.onePhase,
		})
	}
	return t, Ready{Records: recs, Messages: msgs}
}

// BeginResubmittable is Begin for a transaction whose id may be submitted
// again, such as an idempotency key chosen by the client. Presumed abort
// lets an abort (and a commit with every participant read-only) go
// unforced, but then a power loss can erase every record of the id, and a
// resubmission would run the transaction again and could commit it after
// the first answer said aborted. So here those decisions come with
// MustSync: the driver's sync makes them and the RecBegin before them
// durable before the outcome is reported. That holds for a one-phase
// transaction too: its participant decided it, but keeps the outcome only
// for a while after the transaction's deadline (participant.Retention), not
// for the coordinator's idempotency window, so a resubmission past that
// while would find the id unknown at both ends and could run it again.
func BeginResubmittable(cfg Config, id concord.TxID, branches []Branch, now, deadline time.Time) (*CoordinatorTx, Ready) {
	t, rd := Begin(cfg, id, branches, now, deadline)
	t.forced = true
	return t, rd
}

// ID returns the transaction's id.
func (t *CoordinatorTx) ID() concord.TxID { return t.id }

// Vote steps the transaction with a participant's answer to PREPARE. Any no,
// unreachable or timeout vote aborts; all yes or read-only with at least one
// yes commits; all read-only commits with nothing to deliver.
func (t *CoordinatorTx) Vote(ev VoteEvent, now time.Time) Ready {
	b := t.branch(ev.Participant)
	if b == nil {
		return Ready{}
	}
	switch t.phase {
	case phasePreparing:
		if t.onePhase {
			return t.onePhaseAnswer(b, ev)
		}
		if b.vote != concord.VoteNone {
			return Ready{}
		}
		switch ev.Vote {
		case concord.VoteYes, concord.VoteReadOnly:
			b.vote, b.reason = ev.Vote, clip(ev.Reason)
			return t.maybeCommit()
		case concord.VoteNo, concord.VoteUnreachable, concord.VoteTimeout:
			b.vote, b.reason = ev.Vote, clip(ev.Reason)
			return t.decideAbort(voteReason(b))
		}
		return Ready{}
	case phaseResolving:
		// A late answer to the one-phase PREPARE settles the outcome; a
		// plain yes only says the participant is prepared, and the ABORT
		// already sent decides it.
		switch {
		case ev.Outcome == concord.OutcomeCommitted || ev.Outcome == concord.OutcomeAborted:
			return t.settleOnePhase(b, ev.Outcome, ev.Reason)
		case ev.Vote == concord.VoteNo:
			return t.settlePlain(b, concord.OutcomeAborted, ev.Reason)
		}
	}
	return Ready{}
}

// onePhaseAnswer handles the answer to a one-phase PREPARE.
func (t *CoordinatorTx) onePhaseAnswer(b *coordBranch, ev VoteEvent) Ready {
	switch {
	case ev.Outcome == concord.OutcomeCommitted || ev.Outcome == concord.OutcomeAborted:
		// The outcome is what the participant did; its vote follows it.
		b.vote = concord.VoteYes
		if ev.Outcome == concord.OutcomeAborted {
			b.vote = concord.VoteNo
		}
		return t.settleOnePhase(b, ev.Outcome, ev.Reason)
	case ev.Vote == concord.VoteNo:
		b.vote = concord.VoteNo
		return t.settlePlain(b, concord.OutcomeAborted, ev.Reason)
	case ev.Vote == concord.VoteReadOnly:
		b.vote = concord.VoteReadOnly
		return t.settlePlain(b, concord.OutcomeCommitted, ev.Reason)
	case ev.Vote == concord.VoteYes:
		// Prepared but not committed: finish as two-phase commit.
		b.vote, b.reason = concord.VoteYes, clip(ev.Reason)
		return t.maybeCommit()
	case ev.Vote == concord.VoteUnreachable:
		// The PREPARE may have arrived and committed: ask by aborting.
		b.vote, b.reason = concord.VoteUnreachable, clip(ev.Reason)
		return t.startResolving(fmt.Sprintf("one-phase prepare to %s not confirmed: %s", b.Participant, orUnknown(ev.Reason)))
	}
	return Ready{}
}

// settleOnePhase ends a one-phase transaction with the outcome its
// participant holds.
func (t *CoordinatorTx) settleOnePhase(b *coordBranch, o concord.Outcome, reason string) Ready {
	b.acked = true
	b.nextRetry = time.Time{}
	if o == concord.OutcomeAborted {
		if reason == "" {
			reason = "aborted"
		}
		t.reason = clip(fmt.Sprintf("%s: %s", b.Participant, reason))
	} else {
		t.reason = ""
	}
	t.phase, t.outcome = phaseDone, o
	return Ready{
		Records:  []Record{{Type: RecEnd, TxID: t.id, Outcome: o}},
		MustSync: t.forced,
		Outcome:  o,
		Reason:   t.reason,
		Done:     true,
	}
}

// settlePlain ends a one-phase transaction on a plain vote (no or
// read-only, without an outcome): the participant did not decide alone and
// keeps nothing, so the coordinator decides as in two-phase commit and
// forces the decision when the id may be submitted again.
func (t *CoordinatorTx) settlePlain(b *coordBranch, o concord.Outcome, reason string) Ready {
	return t.settleOnePhase(b, o, reason)
}

// startResolving moves a one-phase transaction to asking its participant by
// sending ABORT; cause says why the coordinator has to ask.
func (t *CoordinatorTx) startResolving(cause string) Ready {
	b := &t.branches[0]
	t.phase, t.cause = phaseResolving, clip(cause)
	t.reason = clip(fmt.Sprintf("%s; abort sent, %s decides the outcome", cause, b.Participant))
	b.attempts++
	b.nextRetry = time.Time{}
	return Ready{Messages: []Message{{Kind: MsgAbort, To: b.Participant, TxID: t.id}}}
}

// maybeCommit decides commit once every branch voted yes or read-only.
func (t *CoordinatorTx) maybeCommit() Ready {
	yes := 0
	for _, b := range t.branches {
		switch b.vote {
		case concord.VoteYes:
			yes++
		case concord.VoteReadOnly:
		default:
			return Ready{}
		}
	}
	t.outcome, t.reason = concord.OutcomeCommitted, ""
	if yes == 0 {
		// Every participant is read-only: nothing to commit, nothing to
		// deliver, and nothing to force unless the id may come again (a
		// rerun would prepare anew and could vote no).
		t.phase = phaseDone
		return Ready{
			Records:  []Record{{Type: RecEnd, TxID: t.id, Outcome: concord.OutcomeCommitted}},
			MustSync: t.forced,
			Outcome:  concord.OutcomeCommitted,
			Done:     true,
		}
	}
	t.phase = phaseCommitted
	recs, msgs, votes := readyRoom(len(t.branches), true)
	recs[0] = t.decisionRecord(RecCommit, votes)
	return Ready{
		Records:  recs,
		MustSync: true,
		Messages: t.appendCommits(msgs, func(*coordBranch) bool { return true }),
		Outcome:  concord.OutcomeCommitted,
	}
}

// sendCommits returns a MsgCommit for every unacknowledged yes voter that
// pick selects, counting the attempt.
func (t *CoordinatorTx) sendCommits(pick func(*coordBranch) bool) []Message {
	n := 0
	for _, b := range t.branches {
		if b.vote == concord.VoteYes && !b.acked {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	return t.appendCommits(make([]Message, 0, n), pick)
}

// appendCommits is sendCommits appending to msgs; nil when it appends
// nothing.
func (t *CoordinatorTx) appendCommits(msgs []Message, pick func(*coordBranch) bool) []Message {
	for i := range t.branches {
		b := &t.branches[i]
		if b.vote != concord.VoteYes || b.acked || !pick(b) {
			continue
		}
		b.attempts++
		b.nextRetry = time.Time{}
		msgs = append(msgs, Message{Kind: MsgCommit, To: b.Participant, TxID: t.id})
	}
	if len(msgs) == 0 {
		return nil
	}
	return msgs
}

// decideAbort records the abort decision and tells every participant that
// may be prepared. Presumed abort: no acknowledgement, and no forced write
// unless the id may be submitted again (BeginResubmittable).
func (t *CoordinatorTx) decideAbort(reason string) Ready {
	t.phase, t.outcome, t.reason = phaseDone, concord.OutcomeAborted, clip(reason)
	recs, msgs, votes := readyRoom(len(t.branches), true)
	recs[0] = t.decisionRecord(RecAbort, votes)
	for _, b := range t.branches {
		if b.vote == concord.VoteNo || b.vote == concord.VoteReadOnly {
			continue
		}
		msgs = append(msgs, Message{Kind: MsgAbort, To: b.Participant, TxID: t.id})
	}
	if len(msgs) == 0 {
		msgs = nil
	}
	return Ready{
		Records:  recs,
		MustSync: t.forced,
		Messages: msgs,
		Outcome:  concord.OutcomeAborted,
		Reason:   t.reason,
		Done:     true,
	}
}

// decisionRecord is a RecCommit or RecAbort with every vote known, which
// it writes into votes, of one per branch.
func (t *CoordinatorTx) decisionRecord(typ RecordType, votes []concord.Vote) Record {
	r := Record{Type: typ, TxID: t.id, Participants: t.names(), Votes: votes}
	for i, b := range t.branches {
		r.Votes[i] = b.vote
	}
	if typ == RecAbort {
		r.Outcome, r.Reason = concord.OutcomeAborted, t.reason
	} else {
		r.Outcome = concord.OutcomeCommitted
	}
	return r
}

// Status returns a snapshot of the transaction.
func (t *CoordinatorTx) Status() Status {
	s := Status{
		TxID:     t.id,
		Outcome:  t.outcome,
		Reason:   t.reason,
		OnePhase: t.onePhase,
		Deadline: t.deadline,
		Done:     t.phase == phaseDone,
		Branches: make([]BranchStatus, len(t.branches)),
	}
	for i := range t.branches {
		s.Branches[i] = t.BranchStatus(i)
	}
	return s
}

// NumBranches returns the number of branches, the length of
// Status().Branches.
func (t *CoordinatorTx) NumBranches() int { return len(t.branches) }

// BranchStatus returns Status().Branches[i], without the rest of the
// snapshot. It panics unless 0 <= i < NumBranches().
func (t *CoordinatorTx) BranchStatus(i int) BranchStatus {
	b := &t.branches[i]
	return BranchStatus{
		Participant:  b.Participant,
		Vote:         b.vote,
		Reason:       b.reason,
		Acknowledged: b.acked,
		Attempts:     b.attempts,
		LastError:    b.lastErr,
		NextRetry:    b.nextRetry,
	}
}

// NextWake returns the earliest time Tick has something to do: the deadline
// while undecided, the earliest scheduled retry after a decision, or zero
// when nothing is scheduled.
func (t *CoordinatorTx) NextWake() time.Time {
	switch t.phase {
	case phasePreparing:
		return t.deadline
	case phaseCommitted, phaseResolving:
		var w time.Time
		for _, b := range t.branches {
			if b.acked || b.nextRetry.IsZero() {
				continue
			}
			if w.IsZero() || b.nextRetry.Before(w) {
				w = b.nextRetry
			}
		}
		return w
	}
	return time.Time{}
}

// branch finds a participant's branch, or nil.
func (t *CoordinatorTx) branch(name string) *coordBranch {
	for i := range t.branches {
		if t.branches[i].Participant == name {
			return &t.branches[i]
		}
	}
	return nil
}

// names lists the participants in branch order. The slice is shared by
// every record of the transaction and must not be changed.
func (t *CoordinatorTx) names() []string {
	if t.parts != nil && len(t.parts) == len(t.branches) {
		return t.parts
	}
	n := t.parts[:0] // the room newTx made, if any
	if n == nil || cap(n) < len(t.branches) {
		n = make([]string, 0, len(t.branches))
	}
	for _, b := range t.branches {
		n = append(n, b.Participant)
	}
	t.parts = n
	return n
}

// voteReason explains the vote that aborted a transaction.
func voteReason(b *coordBranch) string {
	why := b.vote.String()
	switch b.vote {
	case concord.VoteNo:
		why = "voted no"
	case concord.VoteUnreachable:
		why = "unreachable"
	case concord.VoteTimeout:
		why = "timed out"
	}
	if b.reason != "" {
		return fmt.Sprintf("%s %s: %s", b.Participant, why, b.reason)
	}
	return fmt.Sprintf("%s %s", b.Participant, why)
}

// orUnknown returns s, or "unknown" when s is empty.
func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// clip makes s valid UTF-8 and cuts it to MaxReasonLen bytes at a rune
// boundary, so that any reason a participant sends can be logged.
func clip(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= MaxReasonLen {
		return s
	}
	i := MaxReasonLen
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}
