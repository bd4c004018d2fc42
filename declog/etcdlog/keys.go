package etcdlog

import (
	"fmt"
	"strconv"
	"strings"
)

// Keys are the etcd keys of one shard's log.
type Keys struct {
	Prefix string // /concord/<cluster>/shards/<n>/
	Owner  string // the owner key, put with the owner's lease
	Low    string // the lowest sequence number a chunk may start at
	Log    string // prefix of the chunk keys
}

// ShardKeys returns the keys of shard shard of cluster cluster. The
// cluster name must be non-empty and hold no '/'.
func ShardKeys(cluster string, shard int) (Keys, error) {
	if cluster == "" || strings.ContainsAny(cluster, "/\x00") {
		return Keys{}, fmt.Errorf("etcdlog: cluster name %q: want a non-empty name without '/'", cluster)
	}
	if shard < 0 {
		return Keys{}, fmt.Errorf("etcdlog: shard %d: want 0 or more", shard)
	}
	p := "/concord/" + cluster + "/shards/" + strconv.Itoa(shard) + "/"
	return Keys{Prefix: p, Owner: p + "owner", Low: p + "low", Log: p + "log/"}, nil
}

// seqDigits pads sequence numbers so that keys and the low key's value
// sort as the numbers do.
const seqDigits = 20

func padSeq(seq uint64) string {
	return fmt.Sprintf("%0*d", seqDigits, seq)
}

// chunkKey is the key of the chunk whose first record is first.
func (k Keys) chunkKey(first uint64) string {
	return k.Log + padSeq(first)
}

// parseChunkKey returns the first sequence number of the chunk at key.
func (k Keys) parseChunkKey(key string) (uint64, error) {
	s, ok := strings.CutPrefix(key, k.Log)
	if !ok || len(s) != seqDigits {
		return 0, fmt.Errorf("etcdlog: %q is not a chunk key of %s", key, k.Log)
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil || seq == 0 {
		return 0, fmt.Errorf("etcdlog: %q is not a chunk key of %s", key, k.Log)
	}
	return seq, nil
}

func parseSeq(what, s string) (uint64, error) {
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("etcdlog: %s: %q is not a sequence number", what, s)
	}
	return seq, nil
}
