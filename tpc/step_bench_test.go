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

// BenchmarkParticipantSteadyState is the participant machine under load: it
// retains 100,000 decided transactions (the default Retain) and takes
// batches of 256 transactions in flight at once, each batch prepared, voted,
// committed and acknowledged as a service sees them at 256 clients. One op
// is one transaction.
func BenchmarkParticipantSteadyState(b *testing.B) {
	const inFlight = 256
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	p := NewParticipant(ParticipantConfig{InDoubtAfter: time.Minute, QueryMin: time.Second, QueryMax: time.Minute})
	payload := json.RawMessage(`{"sku":"F-1","quantity":1}`)
	// Fresh ids for the warm-up and every op, as real traffic has.
	n := DefaultParticipantConfig.Retain + inFlight
	next := 0
	newID := func() concord.TxID {
		next++
		return concord.TxID(fmt.Sprintf("tx-%026d", next))
	}
	var req uint64
	batch := make([]concord.TxID, inFlight)
	run := func(ids []concord.TxID) {
		for _, id := range ids {
			req++
			if rd := p.Prepare(req, id, payload, false, "http://127.0.0.1:1", now); len(rd.Actions) != 1 {
				b.Fatalf("prepare: %d actions", len(rd.Actions))
			}
		}
		for _, id := range ids {
			if rd := p.Done(ParticipantResult{Kind: ActPrepare, ID: id, Vote: concord.VoteYes}, now); len(rd.Replies) != 1 {
				b.Fatalf("prepare done: %d replies", len(rd.Replies))
			}
		}
		for _, id := range ids {
			req++
			if rd := p.Commit(req, id, now); len(rd.Actions) != 1 {
				b.Fatalf("commit: %d actions", len(rd.Actions))
			}
		}
		for _, id := range ids {
			if rd := p.Done(ParticipantResult{Kind: ActCommit, ID: id}, now); len(rd.Replies) != 1 {
				b.Fatalf("commit done: %d replies", len(rd.Replies))
			}
		}
	}
	for i := 0; i < n; i += inFlight {
		for j := range batch {
			batch[j] = newID()
		}
		run(batch)
	}
	// Ids are made ahead so that formatting them is not measured.
	ids := make([]concord.TxID, 64*inFlight)
	for i := range ids {
		ids[i] = newID()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += inFlight {
		k := i % len(ids)
		if k == 0 && i > 0 {
			b.StopTimer()
			for j := range ids {
				ids[j] = newID()
			}
			b.StartTimer()
		}
		run(ids[k : k+inFlight])
	}
	if p.Len() > DefaultParticipantConfig.Retain+inFlight {
		b.Fatalf("%d transactions retained", p.Len())
	}
}

// BenchmarkCoordinatorInFlight steps 256 three-participant transactions at
// once, as the coordinator driver sees them at 256 clients: every begin,
// then the votes participant by participant (as batched replies arrive),
// then the acknowledgements. One op is one transaction.
func BenchmarkCoordinatorInFlight(b *testing.B) {
	const inFlight = 256
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	payload := json.RawMessage(`{"sku":"F-1","quantity":1}`)
	branches := []Branch{{Participant: "flights", Payload: payload}, {Participant: "hotels", Payload: payload}, {Participant: "cars", Payload: payload}}
	ids := make([]concord.TxID, 16*inFlight)
	for i := range ids {
		ids[i] = concord.TxID(fmt.Sprintf("tx-%026d", i))
	}
	txs := make([]*CoordinatorTx, inFlight)
	b.ReportAllocs()
	for i := 0; i < b.N; i += inFlight {
		k := i % len(ids)
		for j := range txs {
			txs[j], _ = Begin(DefaultConfig, ids[k+j], branches, now, now.Add(5*time.Second))
		}
		for _, br := range branches {
			for _, t := range txs {
				t.Vote(VoteEvent{Participant: br.Participant, Vote: concord.VoteYes}, now)
			}
		}
		for _, br := range branches {
			for _, t := range txs {
				if rd := t.Ack(br.Participant, now); br.Participant == "cars" && !rd.Done {
					b.Fatal("not done after every acknowledgement")
				}
			}
		}
	}
}
