package cluster

import (
	"fmt"
	"testing"
)

// TestShardOfStable pins ShardOf to FNV-1a 64: a change would move every
// transaction of every cluster to another shard.
func TestShardOfStable(t *testing.T) {
	for _, c := range []struct {
		id   string
		n    int
		want int
	}{
		{"", 1 << 30, int(0xcbf29ce484222325 % (1 << 30))}, // FNV-1a 64 offset basis
		{"a", 1 << 30, int(0xaf63dc4c8601ec8c % (1 << 30))},
		{"foobar", 1 << 30, int(0x85944171f73967e8 % (1 << 30))},
		{"foobar", 7, int(0x85944171f73967e8 % 7)},
	} {
		if got := ShardOf(c.id, c.n); got != c.want {
			t.Errorf("ShardOf(%q, %d) = %d, want %d", c.id, c.n, got, c.want)
		}
	}
}

// TestAssignMovesLittle: rendezvous hashing gives each of 3 members a
// share of 256 shards near a third, and a fourth member's joining moves
// only shards to it.
func TestAssignMovesLittle(t *testing.T) {
	const n = 256
	three := Assign([]string{"a", "b", "c"}, n)
	count := map[string]int{}
	for _, m := range three {
		count[m]++
	}
	for _, m := range []string{"a", "b", "c"} {
		if count[m] < n/3-30 || count[m] > n/3+30 {
			t.Errorf("member %s has %d of %d shards", m, count[m], n)
		}
	}
	four := Assign([]string{"d", "c", "b", "a"}, n)
	moved := 0
	for s := range n {
		if three[s] != four[s] {
			if four[s] != "d" {
				t.Errorf("shard %d moved from %s to %s, not to the new member", s, three[s], four[s])
			}
			moved++
		}
	}
	if moved < n/4-30 || moved > n/4+30 {
		t.Errorf("%d shards moved to the fourth member, want about %d", moved, n/4)
	}
	if got := Assign(nil, 2); got[0] != "" || got[1] != "" {
		t.Errorf("Assign(nil) = %q", got)
	}
	_ = fmt.Sprint()
}
