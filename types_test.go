package concord

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestValidateTxID(t *testing.T) {
	good := []TxID{"a", "trip-42", "A.b_c:d-9", TxID(strings.Repeat("x", MaxTxIDLen)), ".a", "a..", "..:", "-"}
	for _, id := range good {
		if err := ValidateTxID(id); err != nil {
			t.Errorf("ValidateTxID(%q) = %v, want nil", id, err)
		}
	}
	bad := []TxID{"", "a b", "a/b", "é", "x'y", TxID(strings.Repeat("x", MaxTxIDLen+1)), ".", "..", "...", TxID(strings.Repeat(".", MaxTxIDLen))}
	for _, id := range bad {
		if err := ValidateTxID(id); !errors.Is(err, ErrBadTxID) {
			t.Errorf("ValidateTxID(%q) = %v, want ErrBadTxID", id, err)
		}
	}
	// Records written before dot-only ids were refused can still be read.
	for _, id := range []TxID{".", ".."} {
		if err := ValidateStoredTxID(id); err != nil {
			t.Errorf("ValidateStoredTxID(%q) = %v, want nil", id, err)
		}
	}
}

// TestValidateTxIDEveryByte tries every byte value, alone and inside an
// id: exactly letters, digits and . _ : - are allowed.
func TestValidateTxIDEveryByte(t *testing.T) {
	const allowed = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-"
	for c := range 256 {
		want := strings.IndexByte(allowed, byte(c)) >= 0
		for i, id := range []TxID{TxID([]byte{byte(c)}), TxID("tx-" + string([]byte{byte(c)}) + "-1")} {
			want := want && (i == 1 || c != '.') // "." alone is a dot segment
			if err := ValidateTxID(id); (err == nil) != want {
				t.Errorf("ValidateTxID(%q) = %v, want allowed %v", id, err, want)
			}
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

// BenchmarkValidateTxID checks ids of the form the coordinator makes
// ("tx-" and 24 random hex digits), many different ones as in a service.
func BenchmarkValidateTxID(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]TxID, 4096)
	for i := range ids {
		var raw [12]byte
		for j := range raw {
			raw[j] = byte(rng.Uint32())
		}
		ids[i] = TxID("tx-" + hex.EncodeToString(raw[:]))
	}
	for i := 0; b.Loop(); i++ {
		if err := ValidateTxID(ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
	}
}
