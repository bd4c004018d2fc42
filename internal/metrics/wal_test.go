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
	st := wal.Stats{Appends: 7, Writes: 3, Syncs: 2, SyncTime: 250 * time.Millisecond, Bytes: 900, Segments: 4, Compactions: 1, SegmentsRemoved: 5}
	c := NewWALCollector(func() (wal.Stats, bool) { return st, true })
	want := `
# HELP concord_wal_fsync_seconds Fsyncs of the log's segment files: count and total time.
# TYPE concord_wal_fsync_seconds summary
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
