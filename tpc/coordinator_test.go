package tpc

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/testutil/race"
)

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{}, DefaultConfig, {RetryMin: time.Second}, {RetryMin: time.Millisecond, RetryMax: time.Millisecond}} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	for c, want := range map[Config]string{
		{RetryMin: -1}:           "RetryMin -1ns is negative",
		{RetryMax: -time.Second}: "RetryMax -1s is negative",
		{RetryMin: time.Minute}:  "RetryMax 5s is below RetryMin 1m0s",
		{RetryMin: time.Second, RetryMax: time.Millisecond}: "below RetryMin",
	} {
		err := c.Validate()
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: err %v, want ErrInvalid naming %q", c, err, want)
		}
	}
	// An invalid config still runs, with usable values.
	if d := (Config{RetryMin: time.Minute}).withDefaults(); d.RetryMax != time.Minute {
		t.Errorf("RetryMax below RetryMin not raised: %+v", d)
	}
}

func TestCheckBegin(t *testing.T) {
	b := func(names ...string) []Branch {
		var out []Branch
		for _, n := range names {
			out = append(out, Branch{Participant: n})
		}
		return out
	}
	many := make([]string, MaxBranches+1)
	for i := range many {
		many[i] = strings.Repeat("p", 1+i%100) + string(rune('a'+i%26)) + strings.Repeat("q", i/100)
	}
	cases := []struct {
		id       concord.TxID
		branches []Branch
		want     string
	}{
		{"", b("a"), "empty"},
		{"tx 1", b("a"), "byte 2"},
		{"tx1", nil, "no branches"},
		{"tx1", b("a", "b", "a"), `participant "a" twice`},
		{"tx1", b("a", ""), "branch 1 of tx1: empty participant name"},
		{"tx1", b(strings.Repeat("x", MaxParticipantLen+1)), "participant name of 129 bytes"},
		{"tx1", b("\xff"), "not UTF-8"},
		{"tx1", b(many...), "257 branches"},
	}
	for _, c := range cases {
		err := CheckBegin(c.id, c.branches)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("CheckBegin(%q, %d branches): err %v, want ErrInvalid naming %q", c.id, len(c.branches), err, c.want)
		}
		tx, rd := Begin(Config{}, c.id, c.branches, scenarioEpoch, scenarioEpoch.Add(time.Second))
		if len(rd.Records) > 0 || len(rd.Messages) > 0 || rd.Outcome != concord.OutcomeAborted || !rd.Done ||
			!strings.Contains(rd.Reason, c.want) {
			t.Errorf("Begin(%q): %+v, want an immediate abort naming %q with nothing logged or sent", c.id, rd, c.want)
		}
		if _, err := tx.Abort("x", scenarioEpoch); !errors.Is(err, ErrDecided) {
			t.Errorf("Abort after refused Begin: %v", err)
		}
	}
	if err := CheckBegin("tx1", b("flights", "hotels")); err != nil {
		t.Errorf("good input refused: %v", err)
	}
}

// TestStrangeEventsAreIgnored feeds events no honest driver sends: unknown
// votes and outcomes, empty and unknown names. Each returns an empty Ready
// and changes nothing.
func TestStrangeEventsAreIgnored(t *testing.T) {
	now := scenarioEpoch
	for _, n := range []int{1, 2} {
		names := []string{"flights", "hotels"}[:n]
		var branches []Branch
		for _, p := range names {
			branches = append(branches, Branch{Participant: p})
		}
		tx, _ := Begin(Config{}, "tx1", branches, now, now.Add(time.Second))
		before := tx.Status()
		for _, rd := range []Ready{
			tx.Vote(VoteEvent{Participant: "flights", Vote: 99}, now),
			tx.Vote(VoteEvent{Participant: "flights", Vote: concord.VoteNone}, now),
			tx.Vote(VoteEvent{Participant: "flights", Vote: concord.VoteNone, Outcome: 42}, now),
			tx.Vote(VoteEvent{Participant: "", Vote: concord.VoteYes}, now),
			tx.Ack("", now),
			tx.Resolved("flights", 42, now),
			tx.Resolved("flights", concord.OutcomePending, now),
			tx.DeliveryFailed("flights", "not in phase 2", now),
			tx.RetryNow(now),
			tx.Tick(now),
		} {
			if !isEmpty(rd) {
				t.Fatalf("%d branches: strange event gave %+v", n, rd)
			}
		}
		if after := tx.Status(); !statusEqual(before, after) {
			t.Fatalf("%d branches: status changed:\n%+v\n%+v", n, before, after)
		}
	}
}

func statusEqual(a, b Status) bool {
	if len(a.Branches) != len(b.Branches) {
		return false
	}
	for i := range a.Branches {
		if a.Branches[i] != b.Branches[i] {
			return false
		}
	}
	a.Branches, b.Branches = nil, nil
	return a.TxID == b.TxID && a.Outcome == b.Outcome && a.Reason == b.Reason && a.Done == b.Done
}

func TestNoDeadlineNeverTimesOut(t *testing.T) {
	tx, _ := Begin(Config{}, "tx1", []Branch{{Participant: "a"}, {Participant: "b"}}, scenarioEpoch, time.Time{})
	if w := tx.NextWake(); !w.IsZero() {
		t.Fatalf("NextWake %v with no deadline", w)
	}
	if rd := tx.Tick(scenarioEpoch.Add(1000 * time.Hour)); !isEmpty(rd) {
		t.Fatalf("Tick with no deadline: %+v", rd)
	}
}

// TestReasonsAreCleanedForTheLog sends a reason that is too long and not
// UTF-8: the abort record still encodes, and the reason is cut.
func TestReasonsAreCleanedForTheLog(t *testing.T) {
	tx, _ := Begin(Config{}, "tx1", []Branch{{Participant: "a"}, {Participant: "b"}}, scenarioEpoch, time.Time{})
	long := strings.Repeat("é", MaxReasonLen) + "\xff\xfe"
	rd := tx.Vote(VoteEvent{Participant: "a", Vote: concord.VoteNo, Reason: "\xff" + long}, scenarioEpoch)
	if len(rd.Records) != 1 || rd.Records[0].Type != RecAbort {
		t.Fatalf("want one abort record, got %+v", rd)
	}
	r := rd.Records[0]
	if len(r.Reason) > MaxReasonLen || !utf8.ValidString(r.Reason) || !strings.HasPrefix(r.Reason, "a voted no: \uFFFDé") {
		t.Fatalf("reason not cleaned: %d bytes, valid %t, %.40q", len(r.Reason), utf8.ValidString(r.Reason), r.Reason)
	}
	if _, err := r.MarshalBinary(); err != nil {
		t.Fatalf("abort record does not encode: %v", err)
	}
	if st := tx.Status(); len(st.Branches[0].Reason) > MaxReasonLen || !utf8.ValidString(st.Branches[0].Reason) {
		t.Fatalf("branch reason not cleaned")
	}
}

// BranchStatus(i) is Status().Branches[i], at every step.
func TestBranchStatusIsTheStatusBranch(t *testing.T) {
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	tx, _ := Begin(DefaultConfig, "tx-1", []Branch{{Participant: "a"}, {Participant: "b"}, {Participant: "c"}, {Participant: "d"}}, now, now.Add(time.Second))
	check := func(step string) {
		t.Helper()
		st := tx.Status()
		if tx.NumBranches() != len(st.Branches) {
			t.Fatalf("%s: NumBranches %d, Status has %d", step, tx.NumBranches(), len(st.Branches))
		}
		for i, want := range st.Branches {
			if got := tx.BranchStatus(i); got != want {
				t.Fatalf("%s: BranchStatus(%d) %+v, Status %+v", step, i, got, want)
			}
		}
	}
	check("begun")
	tx.Vote(VoteEvent{Participant: "a", Vote: concord.VoteYes, Reason: "ok"}, now)
	tx.Vote(VoteEvent{Participant: "b", Vote: concord.VoteReadOnly}, now)
	tx.Vote(VoteEvent{Participant: "c", Vote: concord.VoteYes}, now)
	check("voting")
	tx.Vote(VoteEvent{Participant: "d", Vote: concord.VoteYes}, now)
	tx.DeliveryFailed("c", "refused", now)
	tx.Ack("a", now)
	check("committing")
}

// A transaction of three branches is one allocation with its branches, and
// the Ready that begins it and the one that decides it one each, records,
// messages and votes together.
func TestSmallTransactionAllocations(t *testing.T) {
	if race.Enabled {
		t.Skip("allocations are not counted under the race detector")
	}
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	branches := []Branch{{Participant: "flights"}, {Participant: "hotels"}, {Participant: "cars"}}
	var tx *CoordinatorTx
	if n := testing.AllocsPerRun(100, func() {
		var rd Ready
		tx, rd = Begin(DefaultConfig, "tx-1", branches, now, now.Add(time.Second))
		if len(rd.Records) != 1 || len(rd.Messages) != 3 {
			t.Fatalf("begin: %+v", rd)
		}
	}); n != 2 {
		t.Errorf("begin: %v allocations, want 2", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		tx, _ = Begin(DefaultConfig, "tx-1", branches, now, now.Add(time.Second))
		tx.Vote(VoteEvent{Participant: "flights", Vote: concord.VoteYes}, now)
		tx.Vote(VoteEvent{Participant: "hotels", Vote: concord.VoteYes}, now)
		if rd := tx.Vote(VoteEvent{Participant: "cars", Vote: concord.VoteYes}, now); !rd.MustSync || len(rd.Records[0].Votes) != 3 || len(rd.Messages) != 3 {
			t.Fatalf("commit: %+v", rd)
		}
	}); n != 3 {
		t.Errorf("begin and commit: %v allocations, want 3", n)
	}
}

// A transaction of up to three branches, allocated with them, fits the
// 576-byte size class, not the next one up (640), with the 8-byte header
// the runtime adds to an object of more than 512 bytes with pointers.
func TestSmallTxFitsIn576Bytes(t *testing.T) {
	if n := unsafe.Sizeof(smallTx{}); n+8 > 576 {
		t.Errorf("smallTx has %d bytes", n)
	}
}
