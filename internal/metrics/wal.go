package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/concordtx/concord/wal"
)

// FsyncDesc describes concord_wal_fsync_seconds, the latency histogram of
// a log's fsyncs, which the coordinator exports too.
var FsyncDesc = prometheus.NewDesc("concord_wal_fsync_seconds",
	"Fsyncs of the log's segment files, by latency (a histogram; _count is the number of fsyncs).", nil, nil)

// FsyncHistogram is the log's fsync latency histogram as of st, over
// wal.SyncBuckets.
func FsyncHistogram(st wal.Stats) prometheus.Metric {
	buckets := make(map[float64]uint64, len(wal.SyncBuckets))
	for i, b := range wal.SyncBuckets {
		buckets[b.Seconds()] = uint64(st.SyncsWithin[i])
	}
	return prometheus.MustNewConstHistogram(FsyncDesc, uint64(st.Syncs), st.SyncTime.Seconds(), buckets)
}

// WALCollector exports a log's wal.Stats, read from stats at each scrape;
// stats reports false when there is no log (a store that is not on wal).
// The hot path pays nothing: wal counts these anyway.
type WALCollector struct {
	stats func() (wal.Stats, bool)
}

var _ prometheus.Collector = (*WALCollector)(nil)

// NewWALCollector returns a collector over stats.
func NewWALCollector(stats func() (wal.Stats, bool)) *WALCollector {
	return &WALCollector{stats: stats}
}

var (
	descAppends  = prometheus.NewDesc("concord_wal_appends_total", "Records appended to the log.", nil, nil)
	descWrites   = prometheus.NewDesc("concord_wal_writes_total", "Write calls (group-commit batches) to the log.", nil, nil)
	descBytes    = prometheus.NewDesc("concord_wal_written_bytes_total", "Bytes of records written to the log (not the zeros written ahead of them).", nil, nil)
	descSegments = prometheus.NewDesc("concord_wal_segments", "Segment files the log holds now.", nil, nil)
	descCompact  = prometheus.NewDesc("concord_wal_compactions_total", "Compactions that removed at least one segment.", nil, nil)
	descRemoved  = prometheus.NewDesc("concord_wal_segments_removed_total", "Segment files deleted by compaction.", nil, nil)
)

// Describe sends the descriptions of every metric.
func (c *WALCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{FsyncDesc, descAppends, descWrites, descBytes, descSegments, descCompact, descRemoved} {
		ch <- d
	}
}

// Collect reads the log's counters.
func (c *WALCollector) Collect(ch chan<- prometheus.Metric) {
	st, ok := c.stats()
	if !ok {
		return
	}
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	ch <- FsyncHistogram(st)
	counter(descAppends, st.Appends)
	counter(descWrites, st.Writes)
	counter(descBytes, st.Bytes)
	ch <- prometheus.MustNewConstMetric(descSegments, prometheus.GaugeValue, float64(st.Segments))
	counter(descCompact, st.Compactions)
	counter(descRemoved, st.SegmentsRemoved)
}
