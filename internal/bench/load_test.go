package bench

import (
	"encoding/json"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/wire"
)

// outcomeFast reads what encoding/json reads from the coordinator's answers,
// and declines what it cannot read the same way.
func TestOutcomeFast(t *testing.T) {
	answer, _ := json.Marshal(wire.SubmitResponse{ID: "0123456789abcdef", Outcome: concord.OutcomeCommitted,
		Branches: []wire.BranchResult{{Participant: "flights", Vote: concord.VoteYes}, {Participant: "hotels", Vote: concord.VoteNo, Reason: "sold out"}}})
	for _, tc := range []struct {
		in   string
		want string // "" means declined
	}{
		{string(answer) + "\n", "committed"},
		{`{"outcome":"aborted","reason":"a \"quoted\" reason","branches":null}`, ""}, // null: declined
		{`{"outcome":"aborted","reason":"sold out","branches":[]}`, "aborted"},
		{`{"outcome":"committed","outcome":"aborted"}`, ""}, // repeated
		{`{"outcome":"comm\u0069tted"}`, ""},                // escape
		{`{"id":"x"}`, ""},                                  // no outcome
		{`{"outcome":"committed"} x`, ""},                   // trailing text
		{`{"outcome":"committed"`, ""},                      // cut short
		{`[]`, ""},
	} {
		got, ok := outcomeFast([]byte(tc.in))
		if !ok {
			got = ""
		}
		if got != tc.want {
			t.Errorf("outcomeFast(%s) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
		if ok {
			var out struct {
				Outcome string `json:"outcome"`
			}
			if err := json.Unmarshal([]byte(tc.in), &out); err != nil || out.Outcome != got {
				t.Errorf("outcomeFast(%s) = %q; encoding/json says %q, %v", tc.in, got, out.Outcome, err)
			}
		}
	}
}

func FuzzOutcomeFast(f *testing.F) {
	f.Add([]byte(`{"id":"a","outcome":"committed","branches":[{"participant":"f","vote":"yes"}]}`))
	f.Add([]byte(`{"outcome":"aborted","reason":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := outcomeFast(b)
		if !ok {
			return
		}
		var out struct {
			Outcome *string `json:"outcome"`
		}
		if err := json.Unmarshal(b, &out); err != nil || out.Outcome == nil || *out.Outcome != got {
			t.Fatalf("outcomeFast(%q) = %q; encoding/json: %v, %v", b, got, out.Outcome, err)
		}
	})
}
