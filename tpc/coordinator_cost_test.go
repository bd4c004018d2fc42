package tpc

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/concordtx/concord"
)

// costs counts what one transaction spends. Messages are counted one way
// each, as in the literature: a coordinator request (PREPARE, COMMIT, ABORT)
// and a participant answer the coordinator needs (a vote, an
// acknowledgement of COMMIT). Under presumed abort nothing waits for an
// answer to ABORT, so it is not counted (over HTTP it is the empty response
// of the same round trip).
type costs struct {
	CoordMsgs     int // requests the coordinator sends
	PartMsgs      int // votes and commit acknowledgements participants send
	CoordForced   int // coordinator log syncs (Ready.MustSync)
	CoordUnforced int // coordinator records appended without a sync
	// PartForced counts participant durable writes as the Resource contract
	// requires them: a prepare that votes yes, a commit, a one-phase commit.
	// An abort under presumed abort need not be forced.
	PartForced int
}

func (c costs) String() string {
	return fmt.Sprintf("coordinator msgs %d, participant msgs %d (total %d), coordinator forced %d + unforced %d, participant forced %d",
		c.CoordMsgs, c.PartMsgs, c.CoordMsgs+c.PartMsgs, c.CoordForced, c.CoordUnforced, c.PartForced)
}

// runCosted runs one transaction to its end through the coordinator machine
// and one participant machine per branch, with resources that vote as
// votes says (a one-phase branch commits), on a lossless network, and
// counts.
func runCosted(t *testing.T, votes []struct {
	name string
	vote concord.Vote
}) costs {
	t.Helper()
	var c costs
	now := scenarioEpoch
	parts := map[string]*Participant{}
	vote := map[string]concord.Vote{}
	var branches []Branch
	for _, v := range votes {
		parts[v.name] = NewParticipant(ParticipantConfig{OnePhase: true})
		vote[v.name] = v.vote
		branches = append(branches, Branch{Participant: v.name, Payload: json.RawMessage(`{}`)})
	}
	chk := newChecker()
	type envelope struct {
		msg   *Message
		from  string
		reply *ParticipantReply
	}
	var queue []envelope
	tx, rd := Begin(Config{}, "tx1", branches, now, now.Add(time.Minute))
	done := false
	apply := func(rd Ready) {
		if err := chk.step("tx1", rd); err != nil {
			t.Fatal(err)
		}
		if rd.MustSync {
			c.CoordForced++
		} else {
			c.CoordUnforced += len(rd.Records)
		}
		for i := range rd.Messages {
			c.CoordMsgs++
			queue = append(queue, envelope{msg: &rd.Messages[i]})
		}
		done = done || rd.Done
	}
	// participantStep runs a participant machine's actions against a
	// resource that answers at once, and queues its replies.
	var participantStep func(name string, prd ParticipantReady)
	participantStep = func(name string, prd ParticipantReady) {
		for _, r := range prd.Replies {
			queue = append(queue, envelope{from: name, reply: &r})
		}
		for _, a := range prd.Actions {
			res := ParticipantResult{Kind: a.Kind, ID: a.ID}
			switch a.Kind {
			case ActPrepare:
				res.Vote = vote[name]
				if res.Vote == concord.VoteYes {
					c.PartForced++
				}
			case ActCommitOnePhase:
				res.Outcome = concord.OutcomeCommitted
				c.PartForced++
			case ActCommit:
				c.PartForced++
			case ActAbort:
			default:
				t.Fatalf("unexpected participant action %s", a.Kind)
			}
			participantStep(name, parts[name].Done(res, now))
		}
	}
	apply(rd)
	var req uint64
	for len(queue) > 0 {
		e := queue[0]
		queue = queue[1:]
		if e.msg != nil {
			m := e.msg
			req++
			p := parts[m.To]
			switch m.Kind {
			case MsgPrepare:
				participantStep(m.To, p.Prepare(req, m.TxID, m.Payload, m.OnePhase, "http://127.0.0.1:1", now))
			case MsgCommit:
				participantStep(m.To, p.Commit(req, m.TxID, now))
			case MsgAbort:
				participantStep(m.To, p.Abort(req, m.TxID, now))
			}
			continue
		}
		r := e.reply
		switch r.Kind {
		case ReplyVote:
			c.PartMsgs++
			apply(tx.Vote(VoteEvent{Participant: e.from, Vote: r.Vote, Reason: r.Reason, Outcome: r.Outcome}, now))
		case ReplyAck:
			if tx.Status().Outcome == concord.OutcomeCommitted {
				c.PartMsgs++
				apply(tx.Ack(e.from, now))
			}
		default:
			t.Fatalf("unexpected reply %+v", r)
		}
	}
	if !done {
		t.Fatalf("transaction not done: %+v", tx.Status())
	}
	return c
}

// TestCoordinatorCosts checks the messages and forced writes of each case
// against the table in docs/protocol.md ("Cost per transaction"). A change
// here is a change to that table.
func TestCoordinatorCosts(t *testing.T) {
	type pv = struct {
		name string
		vote concord.Vote
	}
	yes, no, ro := concord.VoteYes, concord.VoteNo, concord.VoteReadOnly
	cases := []struct {
		name  string
		votes []pv
		want  costs
	}{
		{"commit, 3 participants", []pv{{"flights", yes}, {"hotels", yes}, {"cars", yes}},
			costs{CoordMsgs: 6, PartMsgs: 6, CoordForced: 1, CoordUnforced: 2, PartForced: 6}},
		{"abort by one no vote, 3 participants", []pv{{"flights", yes}, {"hotels", no}, {"cars", yes}},
			costs{CoordMsgs: 5, PartMsgs: 3, CoordForced: 0, CoordUnforced: 2, PartForced: 2}},
		{"commit with one read-only participant of 3", []pv{{"flights", yes}, {"hotels", ro}, {"cars", yes}},
			costs{CoordMsgs: 5, PartMsgs: 5, CoordForced: 1, CoordUnforced: 2, PartForced: 4}},
		{"all 3 read-only", []pv{{"flights", ro}, {"hotels", ro}, {"cars", ro}},
			costs{CoordMsgs: 3, PartMsgs: 3, CoordForced: 0, CoordUnforced: 2, PartForced: 0}},
		{"one participant", []pv{{"flights", yes}},
			costs{CoordMsgs: 1, PartMsgs: 1, CoordForced: 0, CoordUnforced: 2, PartForced: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := runCosted(t, tc.votes)
			if got != tc.want {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}
