package etcdlog

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// CompactHistory compacts etcd's key history (the maintenance Compact, for
// the whole cluster) up to keep revisions before the current one, and
// waits until the compaction is applied to the database, so that the space
// of deleted chunks and of replaced values can be reused. It returns the
// revision compacted to, or 0 if there was nothing to compact.
//
// Every chunk a log writes and every deletion by Compact leaves a
// revision, so a busy cluster makes thousands a second: etcd's own auto
// compaction (at best every few minutes) lets the history hold minutes of
// them. Calling this every few seconds from one process of the cluster
// keeps it to keep revisions. Calls from several processes are harmless:
// compacting to a revision already compacted does nothing.
func CompactHistory(ctx context.Context, client *clientv3.Client, keep int64) (int64, error) {
	if keep < 0 {
		return 0, fmt.Errorf("etcdlog: compact history: keep %d is negative", keep)
	}
	resp, err := client.Get(ctx, "/concord/", clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("etcdlog: compact history: %w", err)
	}
	rev := resp.Header.Revision - keep
	if rev <= 1 {
		return 0, nil
	}
	if _, err := client.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		if errors.Is(err, rpctypes.ErrCompacted) {
			return 0, nil
		}
		return 0, fmt.Errorf("etcdlog: compact history to revision %d: %w", rev, err)
	}
	return rev, nil
}
