package coordinator

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/testutil/race"
	"github.com/concordtx/concord/tpc"
	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wire"
)

// usualRequest is a three-branch submit as clients send it.
func usualRequest() *wire.SubmitRequest {
	req := &wire.SubmitRequest{ID: "trip-1"}
	for _, p := range []string{"flights", "hotels", "cars"} {
		req.Branches = append(req.Branches, wire.Branch{Participant: p, Payload: json.RawMessage(`{"sku":"` + p + `-1","quantity":1}`)})
	}
	return req
}

// Checking a usual submit and hashing it allocate nothing: the branches
// for tpc and the bytes hashed are on the stack.
func TestSubmitChecksAllocateNothing(t *testing.T) {
	if race.Enabled {
		t.Skip("allocations are not counted under the race detector")
	}
	opts, err := Options{Dir: "/data", Participants: map[string]string{"flights": "http://f", "hotels": "http://h", "cars": "http://c"}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	c := &Coordinator{opts: opts, known: map[string]bool{"flights": true, "hotels": true, "cars": true}}
	req := usualRequest()
	if n := testing.AllocsPerRun(100, func() {
		var room [4]tpc.Branch
		if _, err := c.checkRequest(req, room[:0]); err != nil {
			t.Fatal(err)
		}
		requestDigest(req)
	}); n != 0 {
		t.Errorf("%v allocations, want 0", n)
	}
}

// The log entries of a step share one buffer: a submit's request and begin
// records are one allocation, and its entries are on the stack. What they
// hold reads back as written.
func TestStepEntriesAreOneAllocation(t *testing.T) {
	if race.Enabled {
		t.Skip("allocations are not counted under the race detector")
	}
	tx := &txState{id: "trip-1", digest: digest{1, 2, 3}, owner: "alice"}
	recs := []tpc.Record{
		{Type: tpc.RecBegin, TxID: "trip-1", Participants: []string{"flights", "hotels", "cars"}},
		{Type: tpc.RecAbort, TxID: "trip-1", Participants: []string{"flights", "hotels", "cars"},
			Votes: []concord.Vote{concord.VoteNo, concord.VoteTimeout, concord.VoteTimeout}, Outcome: concord.OutcomeAborted, Reason: "flights voted no"},
	}
	if n := testing.AllocsPerRun(100, func() {
		var room [3]wal.Entry
		if entries, err := encodeRecords(room[:0], tx, true, recs); err != nil || len(entries) != 3 {
			t.Fatal(err)
		}
	}); n != 1 {
		t.Errorf("%v allocations, want 1", n)
	}
	entries, err := encodeRecords(nil, tx, true, recs)
	if err != nil || len(entries) != 3 || entries[0].Type != entryRequest {
		t.Fatalf("entries %v, %v", entries, err)
	}
	id, d, owner, legacy, err := decodeRequest(entries[0].Payload)
	if err != nil || id != tx.id || d != tx.digest || owner != tx.owner || legacy {
		t.Errorf("request entry reads %q %x %q %v", id, d, owner, err)
	}
	for i, r := range recs {
		var got tpc.Record
		if err := got.UnmarshalBinary(entries[i+1].Payload); err != nil || entries[i+1].Type != uint8(r.Type) || !reflect.DeepEqual(got, r) {
			t.Errorf("entry %d reads %+v (%v), want %+v", i+1, got, err, r)
		}
	}
}

// The set of a batch's transactions is reused, given back emptied: its
// slice, and its map once a batch is too large to scan.
func TestTxSetIsReused(t *testing.T) {
	if race.Enabled {
		t.Skip("allocations are not counted under the race detector")
	}
	txs := make([]*txState, 2*txSetScan)
	for i := range txs {
		txs[i] = &txState{}
	}
	for _, n := range []int{3, len(txs)} {
		if allocs := testing.AllocsPerRun(100, func() {
			s := newTxSet(n)
			for _, tx := range txs[:n] {
				s.add(tx)
			}
			if len(s.txs) != n || s.add(txs[0]) {
				t.Fatalf("set %v", s.txs)
			}
			s.release()
		}); allocs != 0 {
			t.Errorf("a set of %d: %v allocations, want 0", n, allocs)
		}
	}
	s := newTxSet(1)
	if len(s.txs) != 0 || s.txs[:1][0] != nil || s.seen != nil || len(s.room) != 0 {
		t.Errorf("a set from the pool holds %v, first slot %v, seen %v, room %v: want it empty and cleared", s.txs, s.txs[:1][0], s.seen, s.room)
	}
	s.release()
}

// A transaction's state fits the 256-byte size class, not the next one up
// (288): its fields are laid out without a padding word.
func TestTxStateIsAtMost256Bytes(t *testing.T) {
	if n := unsafe.Sizeof(txState{}); n > 256 {
		t.Errorf("txState has %d bytes", n)
	}
}

// The events allocated up front for a history hold a 3-participant
// commit's, and fit the 768-byte size class with the runtime's 8-byte
// header for an object of more than 512 bytes with pointers.
func TestHistoryRoomFits768Bytes(t *testing.T) {
	if n := historyCap*unsafe.Sizeof(event{}) + 8; n > 768 {
		t.Errorf("the events of a history take %d bytes", n)
	}
	tx := &txState{}
	now := time.Now()
	tx.noteLocked(now, evSubmitted, "", noValue, "")
	for _, kind := range []eventKind{evPrepareSent, evVote, evCommitSent, evAck} {
		for _, p := range []string{"flights", "hotels", "cars"} {
			tx.noteLocked(now, kind, p, noValue, "")
		}
		if kind == evVote {
			tx.noteLocked(now, evDecision, "", outcomeValue(concord.OutcomeCommitted), "")
		}
	}
	tx.noteLocked(now, evEnd, "", noValue, "")
	if len(tx.hist.events) != 15 || cap(tx.hist.events) != historyCap {
		t.Errorf("a 3-participant commit: %d events in room for %d, want 15 in %d", len(tx.hist.events), cap(tx.hist.events), historyCap)
	}
}
