package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/concordtx/concord/wal"
)

func TestWALCollector(t *testing.T) {
	// Two fsyncs: one of 1ms, one of 249ms.
	st := wal.Stats{Appends: 7, Writes: 3, Syncs: 2, SyncTime: 250 * time.Millisecond, Bytes: 900, Segments: 4, Compactions: 1, SegmentsRemoved: 5,
		SyncsWithin: [len(wal.SyncBuckets)]int64{0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2}}
	c := NewWALCollector(func() (wal.Stats, bool) { return st, true })
	want := `
# HELP concord_wal_fsync_seconds Fsyncs of the log's segment files, by latency (a histogram; _count is the number of fsyncs).
# TYPE concord_wal_fsync_seconds histogram
concord_wal_fsync_seconds_bucket{le="5e-05"} 0
concord_wal_fsync_seconds_bucket{le="0.0001"} 0
concord_wal_fsync_seconds_bucket{le="0.00025"} 0
concord_wal_fsync_seconds_bucket{le="0.0005"} 0
concord_wal_fsync_seconds_bucket{le="0.001"} 1
concord_wal_fsync_seconds_bucket{le="0.0025"} 1
concord_wal_fsync_seconds_bucket{le="0.005"} 1
concord_wal_fsync_seconds_bucket{le="0.01"} 1
concord_wal_fsync_seconds_bucket{le="0.025"} 1
concord_wal_fsync_seconds_bucket{le="0.05"} 1
concord_wal_fsync_seconds_bucket{le="0.1"} 1
concord_wal_fsync_seconds_bucket{le="0.25"} 2
concord_wal_fsync_seconds_bucket{le="0.5"} 2
concord_wal_fsync_seconds_bucket{le="1"} 2
concord_wal_fsync_seconds_bucket{le="+Inf"} 2
concord_wal_fsync_seconds_sum 0.25
concord_wal_fsync_seconds_count 2
# HELP concord_wal_segments Segment files the log holds now.
# TYPE concord_wal_segments gauge
concord_wal_segments 4
# HELP concord_wal_appends_total Records appended to the log.
# TYPE concord_wal_appends_total counter
concord_wal_appends_total 7
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "concord_wal_fsync_seconds", "concord_wal_segments", "concord_wal_appends_total"); err != nil {
		t.Fatal(err)
	}
	none := NewWALCollector(func() (wal.Stats, bool) { return wal.Stats{}, false })
	reg := prometheus.NewRegistry()
	reg.MustRegister(none)
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 0 {
		t.Fatalf("no log: %d metrics, %v", n, err)
	}
}
