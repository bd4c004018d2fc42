package coordinator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sync"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/wire"
)

// Thousands of concurrent transactions over real HTTP participants, some
// refused by a no vote: every client gets an answer, each answer matches the
// votes, every participant ends in the state of the answer, nothing is left
// in doubt, and batching put many transactions in one request.
func TestThousandsConcurrent(t *testing.T) {
	const n = 3000
	e := newEnv(t, "flights", "hotels", "cars")
	refuses := func(name string, id concord.TxID) bool {
		h := fnv.New32a()
		h.Write([]byte(name + "/" + string(id)))
		return h.Sum32()%10 == 0
	}
	for name, p := range e.parts {
		name := name
		p.SetVote(func(id concord.TxID, _ json.RawMessage) (concord.Vote, string) {
			if refuses(name, id) {
				return concord.VoteNo, "refused"
			}
			return concord.VoteYes, ""
		})
	}
	e.start()
	all := []string{"flights", "hotels", "cars"}
	type result struct {
		req  wire.SubmitRequest
		resp wire.SubmitResponse
		err  error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			names := all[:1+i%3] // one, two or three participants
			req := wire.SubmitRequest{ID: concord.TxID(fmt.Sprintf("load-%05d", i)), Branches: branches(names...)}
			resp, err := e.c.Submit(context.Background(), req)
			results[i] = result{req, resp, err}
		}(i)
	}
	wg.Wait()
	eventually(t, "every transaction finished", func() bool { return e.c.Stats().Live == 0 })
	eventually(t, "every ABORT delivered", func() bool {
		for _, p := range e.parts {
			if len(p.InDoubt()) > 0 {
				return false
			}
		}
		return true
	})
	committed := 0
	for _, r := range results {
		if r.err != nil {
			t.Fatalf("%s: %v", r.req.ID, r.err)
		}
		want := concord.OutcomeCommitted
		for _, b := range r.req.Branches {
			if refuses(b.Participant, r.req.ID) {
				want = concord.OutcomeAborted
			}
		}
		if r.resp.Outcome != want {
			t.Fatalf("%s: outcome %v, votes say %v (%+v)", r.req.ID, r.resp.Outcome, want, r.resp)
		}
		if want == concord.OutcomeCommitted {
			committed++
		}
		for _, b := range r.req.Branches {
			s := e.parts[b.Participant].State(r.req.ID)
			if want == concord.OutcomeCommitted && s != "committed" || want == concord.OutcomeAborted && s != "aborted" {
				t.Fatalf("%s: %s holds %q, outcome %v", r.req.ID, b.Participant, s, want)
			}
		}
	}
	st := e.c.Stats()
	msgs := st.PrepareMessages + st.CommitMessages + st.AbortMessages
	t.Logf("%d transactions, %d committed; %d messages in %d requests; %d forced appends in %d log syncs",
		n, committed, msgs, st.Requests, st.ForcedAppends, st.Log.Syncs)
	if committed == 0 || committed == n {
		t.Fatalf("the workload should mix outcomes: %d of %d committed", committed, n)
	}
	if st.Requests >= msgs {
		t.Fatalf("no batching: %d requests for %d messages", st.Requests, msgs)
	}
}
