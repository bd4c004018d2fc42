package tpc

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/concordtx/concord"
)

// BenchmarkCoordinatorCommit3 runs one three-participant transaction
// through the coordinator machine: begin, three yes votes (the last one
// decides commit), three acknowledgements.
func BenchmarkCoordinatorCommit3(b *testing.B) {
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	payload := json.RawMessage(`{"sku":"F-1","quantity":1}`)
	branches := []Branch{{Participant: "flights", Payload: payload}, {Participant: "hotels", Payload: payload}, {Participant: "cars", Payload: payload}}
	ids := make([]concord.TxID, 1024)
	for i := range ids {
		ids[i] = concord.TxID(fmt.Sprintf("tx-%d", i))
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		t, rd := Begin(DefaultConfig, ids[i%len(ids)], branches, now, now.Add(5*time.Second))
		if len(rd.Messages) != 3 {
			b.Fatalf("begin sent %d messages", len(rd.Messages))
		}
		for _, br := range branches {
			rd = t.Vote(VoteEvent{Participant: br.Participant, Vote: concord.VoteYes}, now)
		}
		if !rd.MustSync {
			b.Fatal("the commit decision is not forced")
		}
		for _, br := range branches {
			rd = t.Ack(br.Participant, now)
		}
		if !rd.Done {
			b.Fatal("not done after every acknowledgement")
		}
	}
}

// BenchmarkParticipantPrepareCommit runs one transaction through the
// participant machine: PREPARE, the resource's yes, COMMIT, the resource's
// success.
func BenchmarkParticipantPrepareCommit(b *testing.B) {
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	p := NewParticipant(ParticipantConfig{InDoubtAfter: time.Minute, QueryMin: time.Second, QueryMax: time.Minute, Retain: 1024})
	payload := json.RawMessage(`{"sku":"F-1","quantity":1}`)
	ids := make([]concord.TxID, 4096)
	for i := range ids {
		ids[i] = concord.TxID(fmt.Sprintf("tx-%d", i))
	}
	b.ReportAllocs()
	var req uint64
	for i := 0; b.Loop(); i++ {
		id := ids[i%len(ids)]
		if i >= len(ids) && i%len(ids) == 0 {
			p = NewParticipant(ParticipantConfig{InDoubtAfter: time.Minute, QueryMin: time.Second, QueryMax: time.Minute, Retain: 1024})
		}
		req++
		rd := p.Prepare(req, id, payload, false, "http://127.0.0.1:1", now)
		if len(rd.Actions) != 1 {
			b.Fatalf("prepare: %d actions", len(rd.Actions))
		}
		rd = p.Done(ParticipantResult{Kind: ActPrepare, ID: id, Vote: concord.VoteYes}, now)
		if len(rd.Replies) != 1 {
			b.Fatalf("prepare done: %d replies", len(rd.Replies))
		}
		req++
		rd = p.Commit(req, id, now)
		rd = p.Done(ParticipantResult{Kind: ActCommit, ID: id}, now)
		if len(rd.Replies) != 1 {
			b.Fatalf("commit done: %d replies", len(rd.Replies))
		}
	}
}

// BenchmarkRecordMarshal encodes and decodes a three-participant commit
// record, as the coordinator's log holds it.
func BenchmarkRecordMarshal(b *testing.B) {
	r := Record{Type: RecCommit, TxID: "tx-0123456789abcdef01234567", Participants: []string{"flights", "hotels", "cars"},
		Votes: []concord.Vote{concord.VoteYes, concord.VoteYes, concord.VoteYes}, Outcome: concord.OutcomeCommitted}
	b.ReportAllocs()
	for b.Loop() {
		buf, err := r.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		var back Record
		if err := back.UnmarshalBinary(buf); err != nil {
			b.Fatal(err)
		}
	}
}
