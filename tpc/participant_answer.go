package tpc

import "github.com/concordtx/concord"

// reply answers every waiter of kind op with r.
func (p *Participant) reply(t *ptx, op waitOp, rd *ParticipantReady, r ParticipantReply) {
	keep := t.waiters[:0]
	for _, w := range t.waiters {
		if w.op != op {
			keep = append(keep, w)
			continue
		}
		r.Req, r.ID = w.req, t.id
		p.addReply(rd, r)
	}
	t.waiters = keep
}

// answer delivers every reply the transaction's state now determines.
func (p *Participant) answer(t *ptx, rd *ParticipantReady) {
	if len(t.waiters) == 0 {
		return
	}
	keep := t.waiters[:0]
	for _, w := range t.waiters {
		r, ok := p.answerFor(t, w.op)
		if !ok {
			keep = append(keep, w)
			continue
		}
		r.Req, r.ID = w.req, t.id
		p.addReply(rd, r)
	}
	t.waiters = keep
}

func (p *Participant) answerFor(t *ptx, op waitOp) (ParticipantReply, bool) {
	switch op {
	case waitPrepare:
		return p.voteFor(t)
	case waitCommit:
		switch t.state {
		case PartCommitted, PartReadOnly:
			return ParticipantReply{Kind: ReplyAck}, true
		case PartAborted:
			return ParticipantReply{Kind: ReplyFailure, Reason: "transaction was aborted here", Outcome: concord.OutcomeAborted}, true
		}
	case waitAbort:
		switch t.state {
		case PartAborted, PartReadOnly:
			return ParticipantReply{Kind: ReplyAck}, true
		case PartCommitted:
			return ParticipantReply{Kind: ReplyFailure, Reason: "transaction was committed here", Outcome: concord.OutcomeCommitted}, true
		}
	}
	return ParticipantReply{}, false
}

func (p *Participant) voteFor(t *ptx) (ParticipantReply, bool) {
	no := func() ParticipantReply {
		reason := t.reason
		if reason == "" {
			reason = "aborted"
		}
		return ParticipantReply{Kind: ReplyVote, Vote: concord.VoteNo, Reason: reason}
	}
	if t.onePhase {
		switch t.state {
		case PartCommitted:
			return ParticipantReply{Kind: ReplyVote, Vote: concord.VoteYes, Outcome: concord.OutcomeCommitted}, true
		case PartAborted:
			r := no()
			r.Outcome = concord.OutcomeAborted
			return r, true
		case PartReadOnly:
			return ParticipantReply{Kind: ReplyVote, Vote: concord.VoteReadOnly, Outcome: concord.OutcomeCommitted}, true
		case PartPrepared:
			if t.uncertain {
				// Neither committed nor aborted for sure yet: no vote.
				return ParticipantReply{Kind: ReplyVote, Vote: concord.VoteNone, Reason: "outcome not yet known: " + t.lastErr}, true
			}
		}
		return ParticipantReply{}, false
	}
	switch t.state {
	case PartPrepared:
		if t.vote == concord.VoteNo {
			return no(), true
		}
		return ParticipantReply{Kind: ReplyVote, Vote: concord.VoteYes}, true
	case PartCommitting:
		if t.known && t.vote == concord.VoteYes {
			return ParticipantReply{Kind: ReplyVote, Vote: concord.VoteYes}, true
		}
	case PartCommitted:
		return ParticipantReply{Kind: ReplyVote, Vote: concord.VoteYes}, true
	case PartAborting:
		if t.known {
			return no(), true
		}
	case PartAborted:
		return no(), true
	case PartReadOnly:
		return ParticipantReply{Kind: ReplyVote, Vote: concord.VoteReadOnly}, true
	}
	return ParticipantReply{}, false
}
