package participant

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/concordtx/concord/tpc"
)

// Metrics. Every Server has its own registry (several servers run in one
// process in the demo and in tests). Counters the server keeps anyway
// (Status) are read when scraped; the hot path only observes histograms
// and adds to counters, each one atomic operation, never a lock or an
// allocation.

var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

var batchBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}

// Request kinds, indexes of the per-kind observers.
const (
	reqPrepare = iota
	reqCommit
	reqAbort
	numReqKinds
)

var reqKindNames = [numReqKinds]string{"prepare", "commit", "abort"}

type metrics struct {
	reg          *prometheus.Registry
	reqSeconds   [numReqKinds]prometheus.Observer
	batch        [numReqKinds]prometheus.Observer
	callSeconds  [tpc.ActQuery + 1]prometheus.Observer // by action kind
	callFailures [tpc.ActQuery + 1]prometheus.Counter
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	req := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "concord_participant_request_seconds", Buckets: latencyBuckets,
		Help: "Time to answer one protocol request (a batch) from the coordinator, by kind.",
	}, []string{"kind"})
	batch := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "concord_participant_batch_size", Buckets: batchBuckets,
		Help: "Transactions in one protocol request, by kind.",
	}, []string{"kind"})
	call := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "concord_participant_resource_call_seconds", Buckets: latencyBuckets,
		Help: "Duration of one resource call (prepare, commit, abort, one-phase commit) or outcome query.",
	}, []string{"call"})
	fail := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "concord_participant_errors_total",
		Help: "Resource calls and outcome queries that failed, by call.",
	}, []string{"call"})
	for k := range numReqKinds {
		m.reqSeconds[k] = req.WithLabelValues(reqKindNames[k])
		m.batch[k] = batch.WithLabelValues(reqKindNames[k])
	}
	for k := tpc.ActPrepare; k <= tpc.ActQuery; k++ {
		m.callSeconds[k] = call.WithLabelValues(k.String())
		m.callFailures[k] = fail.WithLabelValues(k.String())
	}
	m.reg.MustRegister(req, batch, call, fail, &statusCollector{s: s},
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// request records one protocol request of kind answered after start.
func (m *metrics) request(kind int, start time.Time, n int) {
	m.reqSeconds[kind].Observe(time.Since(start).Seconds())
	m.batch[kind].Observe(float64(n))
}

// call records one resource call or query, started at start.
func (m *metrics) call(k tpc.ParticipantActionKind, start time.Time, failed bool) {
	m.callTook(k, time.Since(start), failed)
}

// callTook records one resource call or query that took d.
func (m *metrics) callTook(k tpc.ParticipantActionKind, d time.Duration, failed bool) {
	if int(k) >= len(m.callSeconds) || m.callSeconds[k] == nil {
		return
	}
	m.callSeconds[k].Observe(d.Seconds())
	if failed {
		m.callFailures[k].Inc()
	}
}

// Registry returns the server's metrics registry, so that a service can add
// its own collectors (its store's log, say) and serve them together.
func (s *Server) Registry() *prometheus.Registry { return s.metrics.reg }

// MetricsHandler serves the server's registry in the Prometheus text
// format.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
}

// statusCollector exports Status when scraped.
type statusCollector struct{ s *Server }

var (
	descTx       = prometheus.NewDesc("concord_participant_transactions_total", "Transactions received in protocol requests, by kind (one per transaction of a batch).", []string{"kind"}, nil)
	descRequests = prometheus.NewDesc("concord_participant_requests_total", "Protocol requests (batches) received, by kind.", []string{"kind"}, nil)
	descInDoubt  = prometheus.NewDesc("concord_participant_in_doubt", "Prepared transactions waiting for a decision.", nil, nil)
	descRemember = prometheus.NewDesc("concord_participant_transactions_remembered", "Transactions held in memory, decided ones included.", nil, nil)
	descQueries  = prometheus.NewDesc("concord_participant_outcome_queries_total", "Outcome queries sent to the coordinator about transactions in doubt.", nil, nil)
	descQFail    = prometheus.NewDesc("concord_participant_outcome_query_failures_total", "Outcome queries that failed.", nil, nil)
	descCallFail = prometheus.NewDesc("concord_participant_call_failures_total", "Resource calls that returned an unexpected error.", nil, nil)
	descResolved = prometheus.NewDesc("concord_participant_resolved_total", "In-doubt transactions settled after asking the coordinator, by outcome.", []string{"outcome"}, nil)
	descStarted  = prometheus.NewDesc("concord_participant_started", "1 once the server has recovered and takes requests.", nil, nil)
)

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTx, descRequests, descInDoubt, descRemember, descQueries, descQFail, descCallFail, descResolved, descStarted} {
		ch <- d
	}
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Status()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter(descTx, st.Prepares, "prepare")
	counter(descTx, st.Commits, "commit")
	counter(descTx, st.Aborts, "abort")
	counter(descRequests, st.PrepareRequests, "prepare")
	counter(descRequests, st.CommitRequests, "commit")
	counter(descRequests, st.AbortRequests, "abort")
	gauge(descInDoubt, st.InDoubt)
	gauge(descRemember, st.Remembered)
	counter(descQueries, st.Queries)
	counter(descQFail, st.QueryFailures)
	counter(descCallFail, st.CallFailures)
	counter(descResolved, st.ResolvedCommitted, "committed")
	counter(descResolved, st.ResolvedAborted, "aborted")
	started := 0
	if st.Started {
		started = 1
	}
	gauge(descStarted, started)
}
