package filestore

import (
	"testing"
	"time"

	"github.com/concordtx/concord"
)

// TestForgetQueue: entries come out once the clock is past their forget
// time rounded up to the second, never before, whatever order they were
// added in.
func TestForgetQueue(t *testing.T) {
	base := time.Unix(1_796_688_000, 0)
	var q forgetQueue
	add := func(id string, at time.Duration) {
		q.add(&txEntry{id: concord.TxID(id)}, base.Add(at))
	}
	add("b", 2*time.Second+time.Millisecond) // bucket 3
	add("c", 3*time.Second)                  // bucket 3
	add("a", time.Second)                    // bucket 1, before every other
	add("d", 10*time.Second)                 // bucket 10
	add("e", 5*time.Second)                  // bucket 5, between
	due := func(at time.Duration) []string {
		var got []string
		q.due(base.Add(at), func(e *txEntry) { got = append(got, string(e.id)) })
		return got
	}
	for _, c := range []struct {
		at   time.Duration
		want string
	}{
		{time.Second, "[]"}, {time.Second + time.Nanosecond, "[a]"}, {3 * time.Second, "[]"},
		{3*time.Second + time.Millisecond, "[b c]"}, {9 * time.Second, "[e]"}, {10 * time.Second, "[]"}, {time.Hour, "[d]"},
	} {
		if got := due(c.at); fmtList(got) != c.want {
			t.Fatalf("at +%v: %v, want %s", c.at, got, c.want)
		}
	}
	if q.n != 0 || q.anyDue(base.Add(24*time.Hour)) {
		t.Fatalf("queue not empty: %+v", q)
	}
}

func fmtList(s []string) string {
	out := "["
	for i, v := range s {
		if i > 0 {
			out += " "
		}
		out += v
	}
	return out + "]"
}
