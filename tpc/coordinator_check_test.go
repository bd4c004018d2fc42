package tpc

import (
	"fmt"
	"reflect"

	"github.com/concordtx/concord"
)

// checker asserts the coordinator's invariants on every Ready it is shown,
// across crashes. The scenario runner and the property test both use it.
type checker struct {
	txs map[concord.TxID]*txCheck
}

// txCheck is what the checker knows of one transaction.
type txCheck struct {
	began       bool                    // a RecBegin was emitted
	onePhase    bool                    // from RecBegin
	commitVotes map[string]concord.Vote // from the synced RecCommit; nil before
	decided     concord.Outcome         // from decision or end records
	ended       bool                    // RecEnd or RecAbort emitted
	reported    concord.Outcome         // last outcome reported to the client
	effectless  bool                    // committed with no yes voter (all read-only)
	done        bool                    // a Ready said Done
	sent        map[string]map[MsgKind]bool
}

func newChecker() *checker { return &checker{txs: map[concord.TxID]*txCheck{}} }

func (c *checker) tx(id concord.TxID) *txCheck {
	x := c.txs[id]
	if x == nil {
		x = &txCheck{sent: map[string]map[MsgKind]bool{}}
		c.txs[id] = x
	}
	return x
}

// step checks one Ready produced for transaction id.
func (c *checker) step(id concord.TxID, rd Ready) error {
	x := c.tx(id)
	empty := len(rd.Records) == 0 && len(rd.Messages) == 0 && rd.Outcome == concord.OutcomePending && !rd.Done
	if x.done && !empty {
		return fmt.Errorf("%s: Ready after Done: %+v", id, rd)
	}
	for _, r := range rd.Records {
		if r.TxID != id {
			return fmt.Errorf("%s: record for %s", id, r.TxID)
		}
		b, err := r.MarshalBinary()
		if err != nil {
			return fmt.Errorf("%s: record does not encode: %v", id, err)
		}
		var back Record
		if err := back.UnmarshalBinary(b); err != nil || !reflect.DeepEqual(back, r) {
			return fmt.Errorf("%s: record round trip: %+v -> %+v (%v)", id, r, back, err)
		}
		switch r.Type {
		case RecBegin:
			if x.began {
				return fmt.Errorf("%s: second RecBegin", id)
			}
			x.began, x.onePhase = true, r.OnePhase
		case RecCommit:
			if !rd.MustSync {
				return fmt.Errorf("%s: RecCommit without MustSync", id)
			}
			if x.decided != concord.OutcomePending {
				return fmt.Errorf("%s: RecCommit after decision %s", id, x.decided)
			}
			x.decided = concord.OutcomeCommitted
			x.commitVotes = map[string]concord.Vote{}
			for i, p := range r.Participants {
				x.commitVotes[p] = r.Votes[i]
			}
			for _, v := range r.Votes {
				if v != concord.VoteYes && v != concord.VoteReadOnly {
					return fmt.Errorf("%s: RecCommit with vote %s", id, v)
				}
			}
		case RecAbort:
			if x.decided != concord.OutcomePending {
				return fmt.Errorf("%s: RecAbort after decision %s", id, x.decided)
			}
			if r.Reason == "" {
				return fmt.Errorf("%s: RecAbort without a reason", id)
			}
			x.decided, x.ended = concord.OutcomeAborted, true
		case RecEnd:
			if r.Outcome == concord.OutcomePending {
				return fmt.Errorf("%s: RecEnd without outcome", id)
			}
			if x.decided != concord.OutcomePending && x.decided != r.Outcome {
				return fmt.Errorf("%s: RecEnd %s after decision %s", id, r.Outcome, x.decided)
			}
			if x.decided == concord.OutcomePending && r.Outcome == concord.OutcomeCommitted && !x.onePhase {
				x.effectless = true
			}
			x.decided, x.ended = r.Outcome, true
		}
	}
	for _, m := range rd.Messages {
		if m.TxID != id {
			return fmt.Errorf("%s: message for %s", id, m.TxID)
		}
		got := x.sent[m.To]
		if got == nil {
			got = map[MsgKind]bool{}
			x.sent[m.To] = got
		}
		switch m.Kind {
		case MsgCommit:
			if x.commitVotes == nil {
				return fmt.Errorf("%s: MsgCommit to %s before a synced RecCommit", id, m.To)
			}
			if v := x.commitVotes[m.To]; v != concord.VoteYes {
				return fmt.Errorf("%s: MsgCommit to %s, which voted %s", id, m.To, v)
			}
			if got[MsgAbort] {
				return fmt.Errorf("%s: MsgCommit to %s after MsgAbort", id, m.To)
			}
		case MsgAbort:
			if x.decided == concord.OutcomeCommitted {
				return fmt.Errorf("%s: MsgAbort to %s after commit", id, m.To)
			}
			if got[MsgCommit] {
				return fmt.Errorf("%s: MsgAbort to %s after MsgCommit", id, m.To)
			}
		case MsgPrepare:
			if !x.began {
				return fmt.Errorf("%s: MsgPrepare before RecBegin", id)
			}
		default:
			return fmt.Errorf("%s: message kind %d", id, m.Kind)
		}
		got[m.Kind] = true
	}
	switch rd.Outcome {
	case concord.OutcomeCommitted:
		if x.decided != concord.OutcomeCommitted {
			return fmt.Errorf("%s: committed reported with no commit on record", id)
		}
		if x.reported == concord.OutcomeAborted {
			return fmt.Errorf("%s: committed reported after aborted", id)
		}
		x.reported = rd.Outcome
	case concord.OutcomeAborted:
		if x.began && x.decided != concord.OutcomeAborted {
			return fmt.Errorf("%s: aborted reported with no abort on record", id)
		}
		if x.reported == concord.OutcomeCommitted && !x.effectless {
			return fmt.Errorf("%s: aborted reported after committed", id)
		}
		x.reported = rd.Outcome
	}
	if rd.Done {
		if x.began && !x.ended {
			return fmt.Errorf("%s: Done with no RecEnd or RecAbort", id)
		}
		x.done = true
	}
	return nil
}

// crash forgets what the coordinator forgot: record knowledge is rebuilt
// from the records the log kept. What participants were sent and what the
// client heard stay.
func (c *checker) crash(kept []Record) {
	for _, x := range c.txs {
		x.began, x.onePhase, x.commitVotes, x.decided, x.ended, x.done = false, false, nil, concord.OutcomePending, false, false
	}
	for _, r := range kept {
		x := c.tx(r.TxID)
		switch r.Type {
		case RecBegin:
			x.began, x.onePhase = true, r.OnePhase
		case RecCommit:
			if x.decided == concord.OutcomePending {
				x.decided = concord.OutcomeCommitted
				x.commitVotes = map[string]concord.Vote{}
				for i, p := range r.Participants {
					x.commitVotes[p] = r.Votes[i]
				}
			}
		case RecAbort:
			if x.decided == concord.OutcomePending {
				x.decided = concord.OutcomeAborted
			}
			x.ended = true
		case RecEnd:
			x.decided, x.ended = r.Outcome, true
		}
	}
	for _, x := range c.txs {
		// A finished transaction comes back only as a status.
		x.done = x.ended
	}
}
