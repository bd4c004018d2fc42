package tpc

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/concordtx/concord"
)

// recoverSummary prints what Recover returned, one line per transaction.
func recoverSummary(records []Record) string {
	live, finished := Recover(Config{}, records, scenarioEpoch)
	var b strings.Builder
	for _, l := range live {
		fmt.Fprintf(&b, "live %s:\n%s", l.Tx.ID(), fmtReady(l.Tx.ID(), l.Ready))
	}
	for _, st := range finished {
		fmt.Fprintf(&b, "finished %s %s done=%t\n", st.TxID, st.Outcome, st.Done)
	}
	return b.String()
}

func TestRecoverEdgeCases(t *testing.T) {
	yes, ro := concord.VoteYes, concord.VoteReadOnly
	begin := func(id concord.TxID, ps ...string) Record {
		return Record{Type: RecBegin, TxID: id, Participants: ps}
	}
	commit := Record{Type: RecCommit, TxID: "tx1", Participants: []string{"a", "b", "c"},
		Votes: []concord.Vote{yes, ro, yes}, Outcome: concord.OutcomeCommitted}
	abort := Record{Type: RecAbort, TxID: "tx1", Participants: []string{"a", "b", "c"},
		Votes: []concord.Vote{yes, concord.VoteNo, 0}, Outcome: concord.OutcomeAborted, Reason: "b voted no"}
	end := func(id concord.TxID, o concord.Outcome) Record { return Record{Type: RecEnd, TxID: id, Outcome: o} }
	cases := []struct {
		name    string
		records []Record
		want    string
	}{
		{"nothing", nil, ""},
		{"commit kept after compaction dropped begin", []Record{commit},
			"live tx1:\n  send commit tx1 -> a\n  send commit tx1 -> c\n  outcome tx1 committed\n"},
		{"first decision wins: commit", []Record{begin("tx1", "a", "b", "c"), commit, abort},
			"live tx1:\n  send commit tx1 -> a\n  send commit tx1 -> c\n  outcome tx1 committed\n"},
		{"first decision wins: abort", []Record{begin("tx1", "a", "b", "c"), abort, commit},
			"finished tx1 aborted done=true\n"},
		{"end alone", []Record{end("tx1", concord.OutcomeCommitted)}, "finished tx1 committed done=true\n"},
		{"a begin after a finished episode starts a new one",
			[]Record{begin("tx1", "a"), end("tx1", concord.OutcomeCommitted), begin("tx1", "a", "b")},
			"live tx1:\n  append abort tx1 a=none b=none outcome=aborted reason=\"coordinator restarted before deciding\"\n" +
				"  send abort tx1 -> a\n  send abort tx1 -> b\n  outcome tx1 aborted (coordinator restarted before deciding)\n  done tx1\n"},
		{"unknown record types are ignored", []Record{{Type: 77, TxID: "tx9"}, begin("tx2", "a", "b"), end("tx2", concord.OutcomeAborted)},
			"finished tx2 aborted done=true\n"},
		{"live in order of first record", []Record{begin("tx2", "a", "b"), begin("tx1", "a", "b")},
			"live tx2:\n  append abort tx2 a=none b=none outcome=aborted reason=\"coordinator restarted before deciding\"\n" +
				"  send abort tx2 -> a\n  send abort tx2 -> b\n  outcome tx2 aborted (coordinator restarted before deciding)\n  done tx2\n" +
				"live tx1:\n  append abort tx1 a=none b=none outcome=aborted reason=\"coordinator restarted before deciding\"\n" +
				"  send abort tx1 -> a\n  send abort tx1 -> b\n  outcome tx1 aborted (coordinator restarted before deciding)\n  done tx1\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := recoverSummary(c.records); got != c.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}

// TestRecoverThroughTheCodec recovers from records that went through
// MarshalBinary and UnmarshalBinary, as the driver's log does, and gets the
// same result as from the records themselves.
func TestRecoverThroughTheCodec(t *testing.T) {
	s := &scenario{now: scenarioEpoch, txs: map[concord.TxID]*CoordinatorTx{}, check: newChecker()}
	for _, cmd := range []string{"begin tx1 flights hotels cars", "vote tx1 flights yes", "vote tx1 hotels read-only",
		"vote tx1 cars yes", "begin tx2 flights", "begin tx3 flights hotels", "vote tx3 hotels no", "begin tx4 cars hotels"} {
		if err := s.run(strings.Fields(cmd)); err != nil {
			t.Fatal(err)
		}
	}
	var decoded []Record
	for _, r := range s.log {
		b, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var d Record
		if err := d.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		decoded = append(decoded, d)
	}
	if !reflect.DeepEqual(decoded, s.log) {
		t.Fatalf("log changed through the codec")
	}
	want, got := recoverSummary(s.log), recoverSummary(decoded)
	if got != want || !strings.Contains(got, "live tx1:\n  send commit tx1 -> flights\n  send commit tx1 -> cars\n") ||
		!strings.Contains(got, "live tx2:\n  send abort tx2 -> flights\n") || !strings.Contains(got, "finished tx3 aborted") ||
		!strings.Contains(got, "live tx4:\n  append abort tx4") {
		t.Fatalf("recovered:\n%s\nwant:\n%s", got, want)
	}
}

// TestRecoverNeverPanics recovers from random, even inconsistent, record
// sequences (unknown types, misaligned votes, no participants): Recover must
// not panic, and every transaction it returns is accounted for once.
func TestRecoverNeverPanics(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for range 2000 {
		var recs []Record
		for range rng.IntN(12) {
			r := randomRecord(rng)
			r.TxID = concord.TxID(fmt.Sprintf("tx%d", rng.IntN(4)))
			r.Type = RecordType(rng.IntN(7))
			if rng.IntN(4) == 0 && len(r.Votes) > 0 {
				r.Votes = r.Votes[1:]
			}
			recs = append(recs, r)
		}
		live, finished := Recover(Config{}, recs, scenarioEpoch)
		seen := map[concord.TxID]bool{}
		for _, l := range live {
			seen[l.Tx.ID()] = true
			_ = l.Tx.Status()
			_ = l.Tx.Tick(scenarioEpoch.Add(time.Hour))
		}
		for _, st := range finished {
			if seen[st.TxID] {
				t.Fatalf("%s both live and finished", st.TxID)
			}
			seen[st.TxID] = true
		}
	}
}
