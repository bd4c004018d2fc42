package travel

import (
	"github.com/concordtx/concord/internal/metrics"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/wal"
)

// registerStoreMetrics adds the store's log counters (fsyncs and their
// time, segments, compactions) to the participant server's metrics, served
// at GET /metrics. A store not on a log (memory, SQL) exports none.
func registerStoreMetrics(srv *participant.Server, store Store) {
	srv.Registry().MustRegister(metrics.NewWALCollector(func() (wal.Stats, bool) { return StoreLogStats(store) }))
}
