package cluster

import (
	"hash/fnv"
	"strconv"
)

// ShardOf returns the shard of transaction id in a cluster of n shards
// (n > 0): FNV-1a 64 (hash/fnv's New64a) of the id's bytes, modulo n. The
// function is part of the cluster's persistent format: every coordinator
// of every version must map an id to the same shard, so it never changes.
func ShardOf(id string, n int) int {
	h := fnv.New64a()
	h.Write([]byte(id))
	return int(h.Sum64() % uint64(n))
}

// weight is member's rendezvous weight for shard: FNV-1a 64 of
// "<member>/<shard>", mixed by SplitMix64's finalizer (FNV alone spreads
// keys that differ only in their last bytes poorly). The shard goes to the
// live member of highest weight (ties to the smaller id), so a member's
// joining or leaving moves only the shards it gains or held. Unlike
// ShardOf, this may change between versions at the cost of a one-time
// rebalance, as long as all members of a cluster run the same.
func weight(member string, shard int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(member))
	h.Write([]byte{'/'})
	h.Write([]byte(strconv.Itoa(shard)))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Assign returns the member each shard of n goes to among members (ids,
// any order) by rendezvous hashing: result[shard] is a member id, or ""
// if members is empty.
func Assign(members []string, n int) []string {
	out := make([]string, n)
	for s := range n {
		var best string
		var bw uint64
		for _, m := range members {
			w := weight(m, s)
			if best == "" || w > bw || (w == bw && m < best) {
				best, bw = m, w
			}
		}
		out[s] = best
	}
	return out
}
