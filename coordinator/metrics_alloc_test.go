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
	tx.noteLocked(start, evSubmitted, "", noValue, "") // the one allocation of a transaction's history
	if n := testing.AllocsPerRun(1, func() {
		tx.noteReadyLocked(start, rd)
		tx.noteLocked(start, evAck, "hotels", noValue, "")
	}); n != 0 {
		t.Errorf("events of a step: %v allocations, want 0", n)
	}
}

// BenchmarkInstrumentation measures what one three-participant commit adds
// on the hot path: three PREPARE and three COMMIT request observations,
// three votes, and the transaction's twelve events.
func BenchmarkInstrumentation(b *testing.B) {
	m := &metrics{}
	m.prepareSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "p", Buckets: latencyBuckets}, []string{"participant"})
	m.batchSize = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "b", Buckets: batchBuckets}, []string{"participant", "kind"})
	m.votes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "v"}, []string{"participant", "vote"})
	p := &participantMetrics{prepare: m.prepareSeconds.WithLabelValues("hotels"), prepareBatch: m.batchSize.WithLabelValues("hotels", "prepare")}
	for v := concord.VoteYes; v <= concord.VoteUnreachable; v++ {
		p.votes[v] = m.votes.WithLabelValues("hotels", v.String())
	}
	start := time.Now()
	prep := tpc.Ready{Messages: []tpc.Message{{Kind: tpc.MsgPrepare, To: "a"}, {Kind: tpc.MsgPrepare, To: "b"}, {Kind: tpc.MsgPrepare, To: "c"}}}
	commit := tpc.Ready{Records: []tpc.Record{{Type: tpc.RecCommit}},
		Messages: []tpc.Message{{Kind: tpc.MsgCommit, To: "a"}, {Kind: tpc.MsgCommit, To: "b"}, {Kind: tpc.MsgCommit, To: "c"}}}
	end := tpc.Ready{Records: []tpc.Record{{Type: tpc.RecEnd}}, Done: true}
	b.ReportAllocs()
	for b.Loop() {
		var tx txState
		tx.noteLocked(start, evSubmitted, "", noValue, "")
		tx.noteReadyLocked(start, prep)
		for range 3 {
			p.request(p.prepare, p.prepareBatch, start, start, 1, nil)
			p.vote(concord.VoteYes)
			tx.noteLocked(start, evVote, "a", voteValue(concord.VoteYes), "")
		}
		tx.noteReadyLocked(start, commit)
		for range 3 {
			p.request(p.prepare, p.prepareBatch, start, start, 1, nil)
			tx.noteLocked(start, evAck, "a", noValue, "")
		}
		tx.noteReadyLocked(start, end)
	}
}
