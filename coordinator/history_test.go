package coordinator

import (
	"fmt"
	"testing"
	"unsafe"

	"github.com/concordtx/concord"
)

// A history keeps its first keepFirst events and the newest ones, counting
// what it dropped between them.
func TestHistoryIsBounded(t *testing.T) {
	var h history
	const n = 200
	for i := range n {
		h.add(event{at: int64(i), kind: evCommitSent, participant: "hotels", detail: fmt.Sprint(i)})
	}
	if len(h.events) != maxEvents || h.dropped != n-maxEvents {
		t.Fatalf("%d events kept, %d dropped; want %d and %d", len(h.events), h.dropped, maxEvents, n-maxEvents)
	}
	for i := range keepFirst {
		if h.events[i].at != int64(i) {
			t.Fatalf("event %d is #%d, want the first ones kept", i, h.events[i].at)
		}
	}
	for i := keepFirst; i < maxEvents; i++ {
		if want := int64(n - maxEvents + i); h.events[i].at != want {
			t.Fatalf("event %d is #%d, want #%d (the newest kept)", i, h.events[i].at, want)
		}
	}
	evs, dropped := h.wire()
	if dropped != n-maxEvents || evs[len(evs)-1].Attempt != maxEvents || evs[0].Kind != "commit-sent" {
		t.Fatalf("wire: dropped %d, last %+v", dropped, evs[len(evs)-1])
	}
}

// Finished timelines are kept up to the bound, oldest evicted first.
func TestTimelinesEvictOldest(t *testing.T) {
	tl := newTimelines(numShards) // one per shard
	ids := []string{}
	for i := range 5 * numShards {
		id := fmt.Sprintf("tx-%d", i)
		ids = append(ids, id)
		tl.keep(txid(id), &finishedTimeline{})
	}
	kept := 0
	for _, id := range ids {
		if tl.get(txid(id)) != nil {
			kept++
		}
	}
	if kept > numShards || kept == 0 {
		t.Fatalf("%d timelines kept, want between 1 and %d", kept, numShards)
	}
	if tl.get(txid(ids[len(ids)-1])) == nil {
		t.Fatalf("the newest timeline was evicted")
	}
}

func txid(s string) concord.TxID { return concord.TxID(s) }

// An event is 48 bytes, and its value reads as the name of its vote or
// outcome.
func TestEventValue(t *testing.T) {
	if n := unsafe.Sizeof(event{}); n != 48 {
		t.Errorf("an event is %d bytes, want 48", n)
	}
	var h history
	h.add(event{kind: evVote, participant: "hotels", value: voteValue(concord.VoteNo)})
	h.add(event{kind: evDecision, value: outcomeValue(concord.OutcomeAborted)})
	h.add(event{kind: evAck, participant: "hotels", value: noValue})
	evs, _ := h.wire()
	if evs[0].Value != "no" || evs[1].Value != "aborted" || evs[2].Value != "" {
		t.Errorf("values %q, %q, %q; want no, aborted and none", evs[0].Value, evs[1].Value, evs[2].Value)
	}
}
