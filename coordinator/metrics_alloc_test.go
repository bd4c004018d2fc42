package coordinator

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/tpc"
)

// The instrumentation on the hot path allocates nothing: a request's
// latency and batch size, a vote, and the events of a step (within the
// history's first allocation) are atomic adds and stores.
func TestHotPathInstrumentationAllocatesNothing(t *testing.T) {
	m := &metrics{}
	m.prepareSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "p", Buckets: latencyBuckets}, []string{"participant"})
	m.batchSize = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "b", Buckets: batchBuckets}, []string{"participant", "kind"})
	m.votes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "v"}, []string{"participant", "vote"})
	p := &participantMetrics{prepare: m.prepareSeconds.WithLabelValues("hotels"), prepareBatch: m.batchSize.WithLabelValues("hotels", "prepare")}
	for v := concord.VoteYes; v <= concord.VoteUnreachable; v++ {
		p.votes[v] = m.votes.WithLabelValues("hotels", v.String())
	}
	start := time.Now()
	if n := testing.AllocsPerRun(1000, func() {
		p.request(p.prepare, p.prepareBatch, start, start.Add(time.Millisecond), 12, nil)
		p.vote(concord.VoteYes)
	}); n != 0 {
		t.Errorf("request and vote: %v allocations, want 0", n)
	}

	rd := tpc.Ready{
		Records:  []tpc.Record{{Type: tpc.RecCommit}},
		Messages: []tpc.Message{{Kind: tpc.MsgCommit, To: "flights"}, {Kind: tpc.MsgCommit, To: "hotels"}},
	}
	var tx txState
	tx.noteLocked(start, evSubmitted, "", "", "") // the one allocation of a transaction's history
	if n := testing.AllocsPerRun(1, func() {
		tx.noteReadyLocked(start, rd)
		tx.noteLocked(start, evAck, "hotels", "", "")
	}); n != 0 {
		t.Errorf("events of a step: %v allocations, want 0", n)
	}
}
