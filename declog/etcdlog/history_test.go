package etcdlog

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concordtx/concord/wal"
)

// TestHistoryBounded: a log that appends and compacts for a long run does
// not grow etcd's database without bound when CompactHistory runs: a second
// run as long as the first leaves the space in use about where the first
// left it, and the first run's revisions are compacted away. (Without
// history compaction, every deleted chunk stays in the history, and the
// space in use grows with each run.)
func TestHistoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("long run")
	}
	cli := newClient(t)
	s := newSession(t, cli, "a", 30*time.Second)
	l := mustOpenLog(t, Options{Claim: mustClaim(t, s, newClusterName(t), 0)})
	defer l.Close()
	ctx := context.Background()
	entries := make([]wal.Entry, 100)
	for i := range entries {
		entries[i] = wal.Entry{Type: 1, Payload: make([]byte, 100)}
	}
	var firstRev int64
	run := func() int64 {
		t.Helper()
		for i := range 400 {
			if _, err := l.AppendBatch(entries, true); err != nil {
				t.Fatal(err)
			}
			if i%20 == 19 {
				if err := l.Compact(l.LastSeq() + 1); err != nil {
					t.Fatal(err)
				}
				if _, err := CompactHistory(ctx, cli, 100); err != nil {
					t.Fatal(err)
				}
			}
		}
		st, err := cli.Status(ctx, cluster.Members[0].ClientURL)
		if err != nil {
			t.Fatal(err)
		}
		if firstRev == 0 {
			firstRev = st.Header.Revision
		}
		return st.DbSizeInUse
	}
	used1 := run()
	used2 := run()
	used3 := run()
	t.Logf("database in use after three runs of 400 chunks of 12 KB: %d, %d, %d bytes", used1, used2, used3)
	// Each run writes 4.8 MB of chunks; the database in use must not grow
	// by as much as one run's worth.
	if grow := used3 - used1; grow > 2<<20 {
		t.Fatalf("database in use grew by %d bytes over two runs", grow)
	}
	if _, err := cli.Get(ctx, "/concord/", clientv3.WithRev(firstRev)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("read at revision %d of the first run: %v, want compacted", firstRev, err)
	}
}
