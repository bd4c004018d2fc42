package concord

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestValidateTxID(t *testing.T) {
	good := []TxID{"a", "trip-42", "A.b_c:d-9", TxID(strings.Repeat("x", MaxTxIDLen))}
	for _, id := range good {
		if err := ValidateTxID(id); err != nil {
			t.Errorf("ValidateTxID(%q) = %v, want nil", id, err)
		}
	}
	bad := []TxID{"", "a b", "a/b", "é", "x'y", TxID(strings.Repeat("x", MaxTxIDLen+1))}
	for _, id := range bad {
		if err := ValidateTxID(id); !errors.Is(err, ErrBadTxID) {
			t.Errorf("ValidateTxID(%q) = %v, want ErrBadTxID", id, err)
		}
	}
}

func TestVoteAndOutcomeJSON(t *testing.T) {
	type doc struct {
		V Vote    `json:"v"`
		O Outcome `json:"o"`
	}
	for v := VoteNone; v <= VoteUnreachable; v++ {
		for o := OutcomePending; o <= OutcomeAborted; o++ {
			b, err := json.Marshal(doc{v, o})
			if err != nil {
				t.Fatal(err)
			}
			var back doc
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if back.V != v || back.O != o {
				t.Fatalf("round trip of %s: got %+v", b, back)
			}
		}
	}
	var d doc
	if err := json.Unmarshal([]byte(`{"v":"maybe"}`), &d); err == nil || !strings.Contains(err.Error(), `"maybe"`) {
		t.Fatalf("unknown vote: err = %v", err)
	}
	if _, err := json.Marshal(doc{V: 99}); err == nil {
		t.Fatal("marshalling an unknown vote succeeded")
	}
}
