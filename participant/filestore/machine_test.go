package filestore_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
)

// counter is a deterministic Machine for tests: a stock of units that a
// payload {"take": n} holds n of; a payload with take <= 0, or more than is
// available, votes no.
type counter struct {
	Capacity  int                  `json:"capacity"`
	Available int                  `json:"available"`
	Confirmed int                  `json:"confirmed"`
	Holds     map[concord.TxID]int `json:"holds"`
}

func newCounter(capacity int) *counter {
	return &counter{Capacity: capacity, Available: capacity, Holds: map[concord.TxID]int{}}
}

func takePayload(n int) json.RawMessage { return json.RawMessage(fmt.Sprintf(`{"take":%d}`, n)) }

func (c *counter) Prepare(id concord.TxID, payload json.RawMessage) participant.PrepareResult {
	var p struct {
		Take int `json:"take"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return participant.PrepareResult{Vote: concord.VoteNo, Reason: "malformed payload: " + err.Error()}
	}
	switch {
	case p.Take <= 0:
		return participant.PrepareResult{Vote: concord.VoteNo, Reason: fmt.Sprintf("bad quantity %d", p.Take)}
	case p.Take > c.Available:
		return participant.PrepareResult{Vote: concord.VoteNo, Reason: fmt.Sprintf("only %d left", c.Available)}
	}
	c.Available -= p.Take
	c.Holds[id] = p.Take
	return participant.PrepareResult{Vote: concord.VoteYes}
}

func (c *counter) Commit(id concord.TxID) {
	c.Confirmed += c.Holds[id]
	delete(c.Holds, id)
}

func (c *counter) Abort(id concord.TxID) {
	c.Available += c.Holds[id]
	delete(c.Holds, id)
}

func (c *counter) Snapshot() ([]byte, error) { return json.Marshal(c) }

func (c *counter) Restore(b []byte) error {
	var n counter
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	if n.Holds == nil {
		n.Holds = map[concord.TxID]int{}
	}
	*c = n
	return nil
}

// held sums the holds.
func (c *counter) held() int {
	n := 0
	for _, k := range slices.Sorted(maps.Keys(c.Holds)) {
		n += c.Holds[k]
	}
	return n
}
