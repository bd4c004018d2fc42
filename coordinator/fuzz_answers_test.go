package coordinator

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/wal/memfs"
	"github.com/concordtx/concord/wire"
)

// answerTransport answers every request with bytes decoded the way
// wire.Do decodes a participant's answer.
type answerTransport struct {
	prepare map[string][]byte
	decide  []byte
}

func (a *answerTransport) Prepare(_ context.Context, participant string, _ wire.PrepareRequest) (wire.PrepareResponse, error) {
	var resp wire.PrepareResponse
	if err := json.Unmarshal(a.prepare[participant], &resp); err != nil {
		return resp, fmt.Errorf("%w: %v", wire.ErrBadJSON, err)
	}
	return resp, nil
}

func (a *answerTransport) decision() (wire.DecisionResponse, error) {
	var resp wire.DecisionResponse
	if err := json.Unmarshal(a.decide, &resp); err != nil {
		return resp, fmt.Errorf("%w: %v", wire.ErrBadJSON, err)
	}
	return resp, nil
}

func (a *answerTransport) Commit(context.Context, string, wire.DecisionRequest) (wire.DecisionResponse, error) {
	return a.decision()
}

func (a *answerTransport) Abort(context.Context, string, wire.DecisionRequest) (wire.DecisionResponse, error) {
	return a.decision()
}

// Whatever two participants answer (votes for other ids, duplicates,
// conflicting votes, unknown vote names, outcomes, garbage), the
// coordinator never panics, answers the submit, and commits only when
// every branch's recorded vote is yes or read-only.
func FuzzParticipantAnswers(f *testing.F) {
	f.Add([]byte(`{"votes":[{"id":"t","vote":"yes"}]}`), []byte(`{"votes":[{"id":"t","vote":"yes"}]}`), []byte(`{"acknowledged":["t"]}`))
	f.Add([]byte(`{"votes":[{"id":"t","vote":"yes"},{"id":"t","vote":"no"}]}`), []byte(`{"votes":[{"id":"t","vote":"read-only"}]}`), []byte(`{"failed":[{"id":"t","reason":"x","outcome":"aborted"}]}`))
	f.Add([]byte(`{"votes":[{"id":"other","vote":"yes"}]}`), []byte(`{"votes":[]}`), []byte(`{}`))
	f.Add([]byte(`{"votes":[{"id":"t","vote":"yes","outcome":"committed"}]}`), []byte(`{"votes":[{"id":"t","vote":"timeout"}]}`), []byte(`[`))
	f.Add([]byte(`{"votes":[{"id":"t","vote":"maybe"}]}`), []byte(`null`), []byte(`{"acknowledged":["t","t","u"]}`))
	f.Fuzz(func(t *testing.T, flights, hotels, decide []byte) {
		tr := &answerTransport{prepare: map[string][]byte{"flights": flights, "hotels": hotels}, decide: decide}
		c, err := New(Options{Dir: "/c", FS: memfs.New(), Transport: tr,
			Participants: map[string]string{"flights": "http://127.0.0.1:1", "hotels": "http://127.0.0.1:2"},
			AnswerGrace:  time.Second, RetryMin: time.Hour, RetryMax: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := c.Submit(ctx, wire.SubmitRequest{ID: "t", TimeoutMS: 1000,
			Branches: []wire.Branch{{Participant: "flights"}, {Participant: "hotels"}}})
		if err != nil {
			t.Fatalf("submit: %v", err)
		}
		if resp.Outcome == concord.OutcomeCommitted {
			for _, b := range resp.Branches {
				if b.Vote != concord.VoteYes && b.Vote != concord.VoteReadOnly {
					t.Fatalf("committed with %s voting %v: %+v", b.Participant, b.Vote, resp)
				}
			}
		}
		if _, err := c.Status("t"); err != nil {
			t.Fatalf("status: %v", err)
		}
	})
}

// An answer that votes twice on one transaction is malformed: whatever
// the two votes are, the transaction aborts, as with no answer. Taking the
// first vote committed a transaction whose participant had said no.
func TestDoubleVoteAborts(t *testing.T) {
	for _, hotels := range []string{
		`{"votes":[{"id":"t","vote":"yes"},{"id":"t","vote":"no"}]}`,
		`{"votes":[{"id":"t","vote":"no"},{"id":"t","vote":"yes"}]}`,
		`{"votes":[{"id":"t","vote":"yes"},{"id":"t","vote":"yes"}]}`,
		`{"votes":[{"id":"t","vote":"yes"},{"id":"t","vote":"read-only"}]}`,
	} {
		tr := &answerTransport{prepare: map[string][]byte{"flights": []byte(`{"votes":[{"id":"t","vote":"yes"}]}`), "hotels": []byte(hotels)},
			decide: []byte(`{"acknowledged":["t"]}`)}
		c, err := New(Options{Dir: "/c", FS: memfs.New(), Transport: tr,
			Participants: map[string]string{"flights": "http://127.0.0.1:1", "hotels": "http://127.0.0.1:2"}})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Submit(context.Background(), wire.SubmitRequest{ID: "t", TimeoutMS: 1000,
			Branches: []wire.Branch{{Participant: "flights"}, {Participant: "hotels"}}})
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.Outcome != concord.OutcomeAborted || resp.Branches[1].Vote != concord.VoteUnreachable {
			t.Errorf("hotels answering %s: %v, hotels %v (%s); want aborted, hotels unreachable", hotels, resp.Outcome, resp.Branches[1].Vote, resp.Branches[1].Reason)
		}
	}
}
