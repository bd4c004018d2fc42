package coordinator

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/concordtx/concord"
	walmetrics "github.com/concordtx/concord/internal/metrics"
	"github.com/concordtx/concord/wire"
)

// Metrics. Every coordinator has its own registry, so several in one
// process (the demo, tests) do not collide. Totals the coordinator counts
// anyway (Stats, wal.Stats) are read when scraped; on the hot path there
// are only histogram observations and counter increments, each an atomic
// add, once per request to a participant and once per transaction (never a
// lock, never an allocation).

// Latency buckets, in seconds: from a loopback round trip to a slow disk.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Batch size buckets, in transactions per request.
var batchBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}

// Participant error kinds, the values of the kind label.
const (
	errKindTimeout    = "timeout"     // the request's deadline passed
	errKindConnection = "connection"  // no connection, or it broke
	errKindStatus     = "http_status" // the participant answered an HTTP error
	errKindRefused    = "refused"     // it answered, refusing a transaction of the batch
	errKindMissing    = "missing"     // its answer left a transaction out
	errKindOther      = "other"
)

var errKinds = []string{errKindTimeout, errKindConnection, errKindStatus, errKindRefused, errKindMissing, errKindOther}

type metrics struct {
	reg *prometheus.Registry

	prepareSeconds  *prometheus.HistogramVec // participant
	decisionSeconds *prometheus.HistogramVec // participant, kind: commit or abort request round trip
	batchSize       *prometheus.HistogramVec // participant, kind
	retries         *prometheus.CounterVec   // participant
	votes           *prometheus.CounterVec   // participant, vote
	errors          *prometheus.CounterVec   // participant, kind
	txSeconds       *prometheus.HistogramVec // outcome: submit to reportable decision
	actions         *prometheus.CounterVec   // action, result

	committedObs, abortedObs prometheus.Observer
}

// participantMetrics are one participant's observers, resolved once so
// that the hot path does no label lookup, and its health for the overview.
type participantMetrics struct {
	prepare, commit, abort                prometheus.Observer
	prepareBatch, commitBatch, abortBatch prometheus.Observer
	retries                               prometheus.Counter
	votes                                 [concord.VoteUnreachable + 1]prometheus.Counter
	errs                                  map[string]prometheus.Counter // fixed at creation, read only
	requests, failures, consecutive       atomic.Int64
	lastOK, lastErrAt                     atomic.Int64 // Unix nanoseconds
	lastErr                               atomic.Pointer[string]

	// What the health probes saw (Options.ProbeInterval), apart from
	// traffic: Unix nanoseconds, and failures in a row.
	probeOK, probeErrAt, probeNext, probeFailures atomic.Int64
	probeErr                                      atomic.Pointer[string]

	name   string
	logger *slog.Logger
}

func newMetrics(c *Coordinator) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.prepareSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "concord_coordinator_prepare_request_seconds", Buckets: latencyBuckets,
		Help: "Round trip of one PREPARE request (a batch) to a participant, answered or failed.",
	}, []string{"participant"})
	m.decisionSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "concord_coordinator_decision_request_seconds", Buckets: latencyBuckets,
		Help: "Round trip of one COMMIT or ABORT request (a batch) to a participant, answered or failed.",
	}, []string{"participant", "kind"})
	m.batchSize = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "concord_coordinator_batch_size", Buckets: batchBuckets,
		Help: "Transactions carried by one request to a participant.",
	}, []string{"participant", "kind"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "concord_coordinator_retries_total",
		Help: "Decisions sent again to a participant that had not acknowledged (backoff expiries and operator retries).",
	}, []string{"participant"})
	m.votes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "concord_coordinator_votes_total",
		Help: "Votes per participant: yes, no, read-only, or unreachable when the PREPARE request failed.",
	}, []string{"participant", "vote"})
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "concord_coordinator_participant_errors_total",
		Help: "Failed requests to participants by kind (timeout, connection, http_status, other), and transactions refused or left out of an answer (refused, missing).",
	}, []string{"participant", "kind"})
	m.txSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "concord_coordinator_transaction_seconds", Buckets: latencyBuckets,
		Help: "From admission to the decision a client is answered with (durable for commits).",
	}, []string{"outcome"})
	m.actions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "concord_coordinator_operator_actions_total",
		Help: "Operator actions (retry, abort) by result: done, refused (409) or not_found.",
	}, []string{"action", "result"})
	m.committedObs = m.txSeconds.WithLabelValues("committed")
	m.abortedObs = m.txSeconds.WithLabelValues("aborted")
	m.reg.MustRegister(m.prepareSeconds, m.decisionSeconds, m.batchSize, m.retries, m.votes, m.errors,
		m.txSeconds, m.actions, &statsCollector{c: c},
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// participantMetrics returns name's metrics, making them on first use.
func (c *Coordinator) participantMetrics(name string) *participantMetrics {
	if p, ok := c.pmetrics.Load(name); ok {
		return p.(*participantMetrics)
	}
	m := c.metrics
	p := &participantMetrics{
		prepare:      m.prepareSeconds.WithLabelValues(name),
		commit:       m.decisionSeconds.WithLabelValues(name, "commit"),
		abort:        m.decisionSeconds.WithLabelValues(name, "abort"),
		prepareBatch: m.batchSize.WithLabelValues(name, "prepare"),
		commitBatch:  m.batchSize.WithLabelValues(name, "commit"),
		abortBatch:   m.batchSize.WithLabelValues(name, "abort"),
		retries:      m.retries.WithLabelValues(name),
		errs:         make(map[string]prometheus.Counter, len(errKinds)),
		name:         name,
		logger:       c.logger,
	}
	for v := concord.VoteYes; v <= concord.VoteUnreachable; v++ {
		p.votes[v] = m.votes.WithLabelValues(name, v.String())
	}
	for _, k := range errKinds {
		p.errs[k] = m.errors.WithLabelValues(name, k)
	}
	got, _ := c.pmetrics.LoadOrStore(name, p)
	return got.(*participantMetrics)
}

// request records one request's round trip and batch size, and the
// participant's health.
func (p *participantMetrics) request(lat, batch prometheus.Observer, start, end time.Time, n int, err error) {
	lat.Observe(end.Sub(start).Seconds())
	batch.Observe(float64(n))
	p.requests.Add(1)
	if err == nil {
		if before := p.consecutive.Swap(0); before > 0 {
			p.health(before, nil)
		}
		p.lastOK.Store(end.UnixNano())
		return
	}
	p.failures.Add(1)
	if p.consecutive.Add(1) == 1 {
		p.health(0, err)
	}
	p.lastErrAt.Store(end.UnixNano())
	msg := err.Error()
	p.lastErr.Store(&msg)
	p.errs[errKind(err)].Inc()
}

func (p *participantMetrics) vote(v concord.Vote) {
	if v >= concord.VoteYes && int(v) < len(p.votes) {
		p.votes[v].Inc()
	}
}

// errKind classifies a failed request for the kind label.
func errKind(err error) string {
	var se *wire.StatusError
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return errKindTimeout
	case errors.As(err, &se):
		return errKindStatus
	case errors.As(err, &ne) && ne.Timeout():
		return errKindTimeout
	case errors.As(err, &ne), errors.Is(err, net.ErrClosed):
		return errKindConnection
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return errKindConnection
	}
	return errKindOther
}

// observeOutcome records how long t took to a reportable decision.
func (c *Coordinator) observeOutcome(t *txState, o concord.Outcome) {
	if t.admitted == 0 {
		return // recovered: its admission was before a restart
	}
	d := time.Duration(c.clock.Now().UnixNano() - t.admitted).Seconds()
	switch o {
	case concord.OutcomeCommitted:
		c.metrics.committedObs.Observe(d)
	case concord.OutcomeAborted:
		c.metrics.abortedObs.Observe(d)
	}
}

// Registry returns the coordinator's metrics registry, for callers that
// serve or gather metrics their own way.
func (c *Coordinator) Registry() *prometheus.Registry { return c.metrics.reg }

// MetricsHandler serves the coordinator's metrics in the Prometheus text
// format.
func (c *Coordinator) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(c.metrics.reg, promhttp.HandlerOpts{})
}

// statsCollector exports the counters the coordinator keeps anyway (Stats,
// the log's wal.Stats) when scraped.
type statsCollector struct{ c *Coordinator }

var (
	descSubmitted   = prometheus.NewDesc("concord_coordinator_transactions_submitted_total", "Transactions admitted.", nil, nil)
	descOutcomes    = prometheus.NewDesc("concord_coordinator_transactions_total", "Transactions whose outcome was reported, by outcome.", []string{"outcome"}, nil)
	descFinished    = prometheus.NewDesc("concord_coordinator_transactions_finished_total", "Transactions that needed nothing more and left the table.", nil, nil)
	descInFlight    = prometheus.NewDesc("concord_coordinator_transactions_in_flight", "Transactions in the table: preparing, or decided and awaiting acknowledgements.", nil, nil)
	descAwaiting    = prometheus.NewDesc("concord_coordinator_transactions_awaiting_ack", "Decided transactions still waiting for a participant's acknowledgement.", nil, nil)
	descRemembered  = prometheus.NewDesc("concord_coordinator_transactions_remembered", "Finished transactions remembered for idempotent resubmission.", nil, nil)
	descMessages    = prometheus.NewDesc("concord_coordinator_messages_total", "Protocol messages sent, one per transaction however batched.", []string{"kind"}, nil)
	descRequests    = prometheus.NewDesc("concord_coordinator_requests_total", "HTTP requests (batches) sent to participants.", nil, nil)
	descAcks        = prometheus.NewDesc("concord_coordinator_acks_total", "Acknowledgements received.", nil, nil)
	descDelivFail   = prometheus.NewDesc("concord_coordinator_delivery_failures_total", "Decision deliveries that failed and will be retried.", nil, nil)
	descAppends     = prometheus.NewDesc("concord_coordinator_log_appends_total", "Log entries appended.", nil, nil)
	descForced      = prometheus.NewDesc("concord_coordinator_log_forced_appends_total", "Appends that waited for the log to be synced.", nil, nil)
	descRefreshed   = prometheus.NewDesc("concord_coordinator_log_refreshed_total", "Long-lived transactions rewritten to the log so that older segments can go.", nil, nil)
	descCompactions = prometheus.NewDesc("concord_coordinator_compactions_total", "Compaction passes that found log records no live transaction needs; the log deletes whole segments only, so most delete none (concord_wal_segments_removed_total counts the deletions).", nil, nil)
	descWalBytes    = prometheus.NewDesc("concord_wal_written_bytes_total", "Bytes of records written to the log (not the zeros written ahead of them).", nil, nil)
	descWalWrites   = prometheus.NewDesc("concord_wal_writes_total", "Write calls (group-commit batches) to the log.", nil, nil)
	descSegments    = prometheus.NewDesc("concord_wal_segments", "Segment files the log holds now.", nil, nil)
	descRemoved     = prometheus.NewDesc("concord_wal_segments_removed_total", "Segment files deleted by compaction.", nil, nil)
	descHalted      = prometheus.NewDesc("concord_coordinator_halted", "1 once the coordinator has stopped working (closed, or a log failure).", nil, nil)
)

func (s *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSubmitted, descOutcomes, descFinished, descInFlight, descAwaiting,
		descRemembered, descMessages, descRequests, descAcks, descDelivFail, descAppends, descForced, descRefreshed,
		descCompactions, walmetrics.FsyncDesc, descWalBytes, descWalWrites, descSegments, descRemoved, descHalted} {
		ch <- d
	}
}

func (s *statsCollector) Collect(ch chan<- prometheus.Metric) {
	st := s.c.Stats()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter(descSubmitted, st.Submitted)
	counter(descOutcomes, st.Committed, "committed")
	counter(descOutcomes, st.Aborted, "aborted")
	counter(descFinished, st.Finished)
	gauge(descInFlight, int64(st.Live))
	gauge(descAwaiting, int64(s.c.awaitingAck()))
	gauge(descRemembered, int64(st.Remembered))
	counter(descMessages, st.PrepareMessages, "prepare")
	counter(descMessages, st.CommitMessages, "commit")
	counter(descMessages, st.AbortMessages, "abort")
	counter(descRequests, st.Requests)
	counter(descAcks, st.Acks)
	counter(descDelivFail, st.DeliveryFailures)
	counter(descAppends, st.LogAppends)
	counter(descForced, st.ForcedAppends)
	counter(descRefreshed, st.Refreshed)
	counter(descCompactions, st.Compactions)
	ch <- walmetrics.FsyncHistogram(st.Log)
	counter(descWalBytes, st.Log.Bytes)
	counter(descWalWrites, st.Log.Writes)
	gauge(descSegments, int64(st.Log.Segments))
	counter(descRemoved, st.Log.SegmentsRemoved)
	halted := int64(0)
	if s.c.stopped() {
		halted = 1
	}
	gauge(descHalted, halted)
}

// awaitingAck counts live transactions whose outcome was reported but
// which are not done: each waits for an acknowledgement. It reads one atomic
// per transaction, taking no transaction lock.
func (c *Coordinator) awaitingAck() int {
	n := 0
	c.table.forEachLive(func(t *txState) {
		if t.result.Load() != nil {
			n++
		}
	})
	return n
}
