package coordinator

import (
	"encoding/json"
	"testing"

	"github.com/concordtx/concord/tpc"
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
