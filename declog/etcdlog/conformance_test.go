package etcdlog

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/concordtx/concord/declog"
	"github.com/concordtx/concord/declog/declogtest"
)

// TestConformance runs the decision log's conformance suite against etcd,
// with one chunk Txn in flight at a time (the default) and with 8.
func TestConformance(t *testing.T) {
	for _, inFlight := range []int{1, 8} {
		t.Run(fmt.Sprintf("InFlight%d", inFlight), func(t *testing.T) { conformance(t, inFlight) })
	}
}

func conformance(t *testing.T, inFlight int) {
	const maxChunk = 64 << 10
	declogtest.Run(t, declogtest.Impl{
		New: func(t *testing.T) declogtest.Store {
			cli := newClient(t)
			sess := newSession(t, cli, "owner-a", 10*time.Second)
			name := newClusterName(t)
			claim := mustClaim(t, sess, name, 0)
			var cur *Log
			var crashed []*Log // closed when the test ends, not before
			return declogtest.Store{
				Open: func() (declog.Log, error) {
					l, err := Open(context.Background(), Options{Claim: claim, MaxChunkBytes: maxChunk, MaxInFlight: inFlight})
					cur = l
					return l, err
				},
				// The process is gone: another claims the shard (here the
				// same session, after the key is deleted, as the lease's
				// lapse would), which fences every write of the old Log
				// still under way. What it had not written is lost.
				Crash: func(t *testing.T) {
					crashed = append(crashed, cur)
					t.Cleanup(func() {
						for _, l := range crashed {
							l.Close()
						}
					})
					if _, err := cli.Delete(context.Background(), claim.Keys().Owner); err != nil {
						t.Fatal(err)
					}
					claim = mustClaim(t, sess, name, 0)
				},
				// Another writer put a valid chunk where this log's next
				// record goes: the log cannot go on.
				Poison: func(t *testing.T) {
					seq := cur.LastSeq() + 1
					rogue := appendFrame(nil, seq, 99, []byte("rogue"))
					if _, err := cli.Put(context.Background(), claim.Keys().chunkKey(seq), string(rogue)); err != nil {
						t.Fatal(err)
					}
				},
				// The owner key goes (as when the lease lapses) and
				// another session claims the shard.
				Fence: func(t *testing.T) {
					if _, err := cli.Delete(context.Background(), claim.Keys().Owner); err != nil {
						t.Fatal(err)
					}
					other := newSession(t, cli, "owner-b", 10*time.Second)
					mustClaim(t, other, name, 0)
				},
			}
		},
		MaxRecordSize: maxChunk - frameHeaderSize,
		CompactUnit:   4, // every sequential Append is a chunk
	})
}
