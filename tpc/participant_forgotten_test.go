package tpc

import (
	"testing"
	"time"

	"github.com/concordtx/concord"
)

// TestCommitByForgotten: a COMMIT the resource holds no record of is
// acknowledged, marked Forgotten, only when its call ends after the
// forget time the COMMIT gave; before it, without one, or for a
// transaction the machine knows was prepared, it stays a failure.
func TestCommitByForgotten(t *testing.T) {
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	unknown := func(p *Participant, id concord.TxID, forgetAt, at time.Time) ParticipantReply {
		t.Helper()
		rd := p.CommitBy(1, id, forgetAt, now)
		if len(rd.Actions) != 1 || rd.Actions[0].Kind != ActCommit {
			t.Fatalf("%s: %+v", id, rd)
		}
		res := rd.Actions[0].Result()
		res.Err = PErrUnknownTx
		rd = p.Done(res, at)
		if len(rd.Replies) != 1 {
			t.Fatalf("%s: replies %+v", id, rd.Replies)
		}
		return rd.Replies[0]
	}
	p := NewParticipant(ParticipantConfig{})
	if r := unknown(p, "past", now.Add(-time.Second), now); r.Kind != ReplyAck || !r.Forgotten || r.Reason == "" {
		t.Fatalf("past its forget time: %+v; want a forgotten acknowledgement", r)
	}
	if _, ok := p.Lookup("past"); ok {
		t.Fatal("a forgotten commit is remembered: the resource holds nothing")
	}
	if r := unknown(p, "early", now.Add(time.Second), now); r.Kind != ReplyFailure || r.Forgotten {
		t.Fatalf("before its forget time: %+v; want a failure", r)
	}
	if r := unknown(p, "at", now, now); r.Kind != ReplyFailure {
		t.Fatalf("at its forget time: %+v; want a failure", r)
	}
	if r := unknown(p, "none", time.Time{}, now); r.Kind != ReplyFailure {
		t.Fatalf("without a forget time: %+v; want a failure", r)
	}

	// Recovered as prepared, then the resource says unknown: an anomaly,
	// whatever the time.
	p.RecoveredFrom([]RecoveredTx{{ID: "held"}}, now)
	if r := unknown(p, "held", now.Add(-time.Hour), now); r.Kind != ReplyFailure {
		t.Fatalf("a transaction known prepared: %+v; want a failure", r)
	}
}
