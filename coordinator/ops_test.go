package coordinator_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/coordinator"
	"github.com/concordtx/concord/internal/testutil"
	"github.com/concordtx/concord/openapi"
	"github.com/concordtx/concord/wire"
)

func (e *env) timeline(id concord.TxID) wire.TxTimeline {
	e.t.Helper()
	code, body := e.get(wire.TimelinePath(id))
	if code != http.StatusOK {
		e.t.Fatalf("GET timeline %s: %d %s", id, code, body)
	}
	var tl wire.TxTimeline
	if err := json.Unmarshal(body, &tl); err != nil {
		e.t.Fatalf("decode timeline %s: %v", body, err)
	}
	return tl
}

// kinds lists the events' kinds, each with its participant when it has one.
func kinds(tl wire.TxTimeline) []string {
	var out []string
	for _, ev := range tl.Events {
		k := ev.Kind
		if ev.Participant != "" {
			k += ":" + ev.Participant
		}
		if ev.Value != "" {
			k += "=" + ev.Value
		}
		out = append(out, k)
	}
	return out
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// A committed transaction's timeline holds every step in protocol order:
// submitted, each PREPARE sent, each vote, the durable decision, each COMMIT,
// each acknowledgement, END; and it stays readable once the transaction has
// left the table.
func TestTimelineOfACommit(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	e.start()
	e.submit(wire.SubmitRequest{ID: "trip-1", Branches: branches("flights", "hotels")})
	eventually(t, "trip-1 done", func() bool { return e.status("trip-1").Done })
	tl := e.timeline("trip-1")
	k := kinds(tl)
	if tl.Status.State != "committed" || !tl.Status.Done {
		t.Fatalf("status %+v", tl.Status)
	}
	order := [][]string{
		{"submitted"},
		{"prepare-sent:flights", "prepare-sent:hotels"},
		{"vote:flights=yes", "vote:hotels=yes"},
		{"decision=committed"},
		{"commit-sent:flights", "commit-sent:hotels"},
		{"acknowledged:flights", "acknowledged:hotels"},
		{"end"},
	}
	prev := -1 // the position of the previous step's last event
	for _, step := range order {
		last := prev
		for _, want := range step {
			i := indexOf(k, want)
			if i < 0 {
				t.Fatalf("timeline lacks %q: %v", want, k)
			}
			if i <= prev {
				t.Fatalf("%q at %d comes before the previous step ended (at %d): %v", want, i, prev, k)
			}
			last = max(last, i)
		}
		prev = last
	}
	if len(k) != 11 {
		t.Errorf("%d events, want 11: %v", len(k), k)
	}
	// An unknown transaction is 404, a bad id 400.
	if code, _ := e.get(wire.TimelinePath("nobody")); code != http.StatusNotFound {
		t.Errorf("unknown transaction: %d, want 404", code)
	}
	if code, _ := e.get(wire.PathTransactions + "/bad%20id/timeline"); code != http.StatusBadRequest {
		t.Errorf("bad id: %d, want 400", code)
	}
}

// An aborted transaction's timeline shows the no vote with its reason.
func TestTimelineOfANoVote(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	e.parts["hotels"].SetVote(func(concord.TxID, json.RawMessage) (concord.Vote, string) {
		return concord.VoteNo, "sold out"
	})
	e.start()
	e.submit(wire.SubmitRequest{ID: "trip-no", Branches: branches("flights", "hotels")})
	tl := e.timeline("trip-no")
	var vote *wire.TxEvent
	for i, ev := range tl.Events {
		if ev.Kind == "vote" && ev.Participant == "hotels" {
			vote = &tl.Events[i]
		}
	}
	if vote == nil || vote.Value != "no" || vote.Detail != "sold out" {
		t.Fatalf("hotels' vote event %+v in %v", vote, kinds(tl))
	}
	if indexOf(kinds(tl), "decision=aborted") < 0 {
		t.Fatalf("no abort decision in %v", kinds(tl))
	}
}

// A participant down at COMMIT: the timeline shows each failed delivery
// with its error, the overview marks it failing with a pending
// acknowledgement, an operator retry after it is back finishes the
// transaction, and the metrics count the retry and the errors.
func TestRetryNowThroughTheTimelineAndMetrics(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	e.opts.RetryMin, e.opts.RetryMax = time.Hour, time.Hour // only the operator retries
	var logs syncBuffer
	e.opts.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	e.parts["hotels"].SetPathMode(wire.PathCommit, testutil.Down)
	e.start()
	e.submit(wire.SubmitRequest{ID: "stuck", Branches: branches("flights", "hotels")})
	// Flights' acknowledgement travels apart from hotels' failure: wait for
	// both before reading what the overview says of each.
	eventually(t, "the failed COMMIT to hotels and flights' acknowledgement", func() bool {
		st := e.status("stuck")
		return st.Branches[1].LastError != "" && st.Branches[0].Acknowledged
	})

	tl := e.timeline("stuck")
	failed := false
	for _, ev := range tl.Events {
		if ev.Kind == "delivery-failed" && ev.Participant == "hotels" && strings.Contains(ev.Detail, "commit request failed") {
			failed = true
		}
	}
	if !failed {
		t.Fatalf("no delivery-failed event for hotels: %+v", tl.Events)
	}
	var o wire.Overview
	code, body := e.get(wire.PathOverview)
	if code != http.StatusOK || json.Unmarshal(body, &o) != nil {
		t.Fatalf("overview: %d %s", code, body)
	}
	if o.AwaitingAck != 1 || o.Committed != 1 || o.InFlight != 1 {
		t.Errorf("overview counters %+v", o)
	}
	health := map[string]wire.ParticipantHealth{}
	for _, p := range o.Participants {
		health[p.Name] = p
	}
	if h := health["hotels"]; h.State != "failing" || h.PendingAcks != 1 || h.LastError == "" || h.ConsecutiveErrors != 1 {
		t.Errorf("hotels' health %+v", h)
	}
	if h := health["flights"]; h.State != "ok" || h.PendingAcks != 0 {
		t.Errorf("flights' health %+v", h)
	}

	e.parts["hotels"].SetPathMode(wire.PathCommit, testutil.Normal)
	if code, body := e.post(wire.RetryPath("stuck"), ""); code != http.StatusOK {
		t.Fatalf("retry: %d %s", code, body)
	}
	eventually(t, "stuck done after the retry", func() bool { return e.status("stuck").Done })
	k := kinds(e.timeline("stuck"))
	r, ack := indexOf(k, "operator-retry"), indexOf(k, "acknowledged:hotels")
	if r < 0 || ack < r {
		t.Fatalf("want operator-retry then hotels' acknowledgement: %v", k)
	}
	var attempt int
	for _, ev := range e.timeline("stuck").Events {
		if ev.Kind == "commit-sent" && ev.Participant == "hotels" {
			attempt = ev.Attempt
		}
	}
	if attempt != 2 {
		t.Errorf("hotels' last COMMIT is attempt %d, want 2", attempt)
	}

	m := gather(t, e.c)
	if v := m.value("concord_coordinator_retries_total", "participant", "hotels"); v != 1 {
		t.Errorf("retries of hotels %v, want 1", v)
	}
	if v := m.value("concord_coordinator_participant_errors_total", "participant", "hotels", "kind", "connection"); v != 1 {
		t.Errorf("connection errors of hotels %v, want 1", v)
	}
	if v := m.value("concord_coordinator_operator_actions_total", "action", "retry", "result", "done"); v != 1 {
		t.Errorf("operator retries %v, want 1", v)
	}
	// The logs say it once each: the failure, the participant failing and
	// back, the operator's action, the finish after retries.
	out := logs.String()
	for _, want := range []string{`"msg":"decision not delivered; retrying with backoff until acknowledged","tx":"stuck","participant":"hotels"`,
		`"msg":"participant failing","participant":"hotels"`, `"msg":"participant answering again","participant":"hotels"`,
		`"msg":"operator retry","tx":"stuck"`, `"msg":"transaction finished after retries: every participant has the outcome","tx":"stuck"`} {
		if strings.Count(out, want) != 1 {
			t.Errorf("log has %d lines with %s; log:\n%s", strings.Count(out, want), want, out)
		}
	}
}

// The abort of a committed transaction is refused with 409 and a message
// that says so; the abort of an undecided one is in its timeline.
func TestAbortActionsInTheTimeline(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	e.opts.RetryMin, e.opts.RetryMax = time.Hour, time.Hour
	e.parts["hotels"].SetPathMode(wire.PathCommit, testutil.Down)
	e.start()
	e.submit(wire.SubmitRequest{ID: "kept", Branches: branches("flights", "hotels")})
	code, body := e.post(wire.AbortPath("kept"), `{"reason":"testing"}`)
	if code != http.StatusConflict || !strings.Contains(string(body), "committed transaction is never aborted") {
		t.Fatalf("abort of a committed transaction: %d %s", code, body)
	}
	if st := e.status("kept"); st.State != "committed" {
		t.Fatalf("state after a refused abort: %s", st.State)
	}
	if code, body := e.post(wire.AbortPath("kept"), `{"reason":`); code != http.StatusBadRequest {
		t.Fatalf("malformed body: %d %s", code, body)
	}

	seen := make(chan testutil.Seen, 16)
	e.parts["flights"].Notify(seen)
	e.parts["flights"].SetPathMode(wire.PathPrepare, testutil.Silent)
	res := e.submitAsync(wire.SubmitRequest{ID: "undecided", TimeoutMS: 60000, Branches: branches("flights", "hotels")})
	waitSeen(t, seen, wire.PathPrepare)
	defer drain(seen)() // only now: a drain started earlier could take the PREPARE from waitSeen
	if code, body := e.post(wire.AbortPath("undecided"), `{"reason":"customer called"}`); code != http.StatusOK {
		t.Fatalf("abort: %d %s", code, body)
	}
	if r := <-res; r.err != nil || r.resp.Outcome != concord.OutcomeAborted {
		t.Fatalf("client got %+v %v", r.resp, r.err)
	}
	var op *wire.TxEvent
	tl := e.timeline("undecided")
	for i, ev := range tl.Events {
		if ev.Kind == "operator-abort" {
			op = &tl.Events[i]
		}
	}
	if op == nil || !strings.Contains(op.Detail, "customer called") {
		t.Fatalf("no operator-abort event with the reason: %v", kinds(tl))
	}
	e.parts["flights"].Release()
}

// The client's traceparent goes with the requests to participants: PREPARE
// and COMMIT; a malformed one is not passed on.
func TestTraceparentPassedToParticipants(t *testing.T) {
	e := newEnv(t, "flights")
	var mu sync.Mutex
	got := map[string][]string{}
	target, _ := url.Parse(e.parts["flights"].URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.URL.Path] = append(got[r.URL.Path], r.Header.Get(wire.HeaderTraceparent))
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	e.opts.Participants = map[string]string{"flights": front.URL, "hotels": e.parts["flights"].URL}
	e.start()
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	submit := func(id, header string) {
		b, _ := json.Marshal(wire.SubmitRequest{ID: concord.TxID(id), Branches: []wire.Branch{
			{Participant: "flights", Payload: json.RawMessage(`{}`)}, {Participant: "hotels", Payload: json.RawMessage(`{}`)}}})
		req, _ := http.NewRequest(http.MethodPost, e.url+wire.PathTransactions, bytes.NewReader(b))
		req.Header.Set(wire.HeaderTraceparent, header)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("submit %s: %v %v", id, resp, err)
		}
		resp.Body.Close()
		eventually(t, id+" done", func() bool { return e.status(concord.TxID(id)).Done })
	}
	submit("traced", tp)
	if tl := e.timeline("traced"); tl.Traceparent != tp {
		t.Errorf("timeline traceparent %q", tl.Traceparent)
	}
	submit("untraced", "not-a-traceparent")
	mu.Lock()
	defer mu.Unlock()
	for _, path := range []string{wire.PathPrepare, wire.PathCommit} {
		if h := got[path]; len(h) != 2 || h[0] != tp || h[1] != "" {
			t.Errorf("%s headers %q, want [%q \"\"]", path, h, tp)
		}
	}
}

// /metrics serves this coordinator's own registry in the Prometheus text
// format, with counters that match what happened; two coordinators in one
// process do not share metrics.
func TestMetricsEndpoint(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	e.parts["hotels"].SetVote(func(id concord.TxID, _ json.RawMessage) (concord.Vote, string) {
		if strings.HasPrefix(string(id), "no-") {
			return concord.VoteNo, "no"
		}
		return concord.VoteYes, ""
	})
	e.start()
	ids := []concord.TxID{"a", "b", "c", "no-d"}
	for _, id := range ids {
		e.submit(wire.SubmitRequest{ID: id, Branches: branches("flights", "hotels")})
	}
	// The answer comes once the decision is durable; the COMMITs and their
	// acknowledgements follow over real sockets. Only once every one is
	// done must nothing be awaiting an acknowledgement.
	for _, id := range ids {
		eventually(t, string(id)+" done", func() bool { return e.status(id).Done })
	}
	other := newEnv(t, "flights")
	other.start()

	code, body := e.get(wire.PathMetrics)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", code)
	}
	text := string(body)
	for _, want := range []string{
		`concord_coordinator_transactions_total{outcome="committed"} 3`,
		`concord_coordinator_transactions_total{outcome="aborted"} 1`,
		`concord_coordinator_votes_total{participant="hotels",vote="no"} 1`,
		`concord_coordinator_votes_total{participant="hotels",vote="yes"} 3`,
		`concord_coordinator_transaction_seconds_count{outcome="committed"} 3`,
		`concord_coordinator_messages_total{kind="prepare"} 8`,
		"concord_wal_fsync_seconds_count ",
		"concord_coordinator_prepare_request_seconds_bucket{participant=\"flights\"",
		"concord_coordinator_batch_size_bucket{kind=\"commit\",participant=\"hotels\"",
		"concord_coordinator_transactions_in_flight ",
		"concord_coordinator_transactions_awaiting_ack 0",
		"concord_wal_segments ",
		"go_goroutines ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	m := gather(t, e.c)
	if n := m.value("concord_wal_fsync_seconds", ""); n < 3 {
		t.Errorf("fsync count %v, want at least one per commit decision (3)", n)
	}
	if v := gather(t, other.c).value("concord_coordinator_transactions_submitted_total", ""); v != 0 {
		t.Errorf("the other coordinator counts %v submitted, want 0", v)
	}
}

// The list filters by participant.
func TestListByParticipant(t *testing.T) {
	e := newEnv(t, "flights", "hotels", "cars")
	e.start()
	e.submit(wire.SubmitRequest{ID: "fh", Branches: branches("flights", "hotels")})
	e.submit(wire.SubmitRequest{ID: "hc", Branches: branches("hotels", "cars")})
	e.submit(wire.SubmitRequest{ID: "c", Branches: branches("cars")})
	for part, want := range map[string]string{"flights": "fh", "hotels": "fh hc", "cars": "c hc", "nobody": ""} {
		code, body := e.get(wire.PathTransactions + "?state=all&participant=" + part)
		var l wire.TxList
		if code != http.StatusOK || json.Unmarshal(body, &l) != nil {
			t.Fatalf("%s: %d %s", part, code, body)
		}
		var ids []string
		for _, tx := range l.Transactions {
			ids = append(ids, string(tx.ID))
		}
		if got := strings.Join(ids, " "); got != want {
			t.Errorf("participant %s: %q, want %q", part, got, want)
		}
	}
	if code, _ := e.get(wire.PathTransactions + "?state=all&participant=cars&limit=0"); code != http.StatusBadRequest {
		t.Errorf("limit 0: %d, want 400", code)
	}
}

// The console is served from the binary, with no reference to another
// origin.
func TestConsoleServed(t *testing.T) {
	e := newEnv(t, "flights")
	e.start()
	for _, p := range []string{"/ui/", "/ui/app.js", "/ui/style.css"} {
		code, body := e.get(p)
		if code != http.StatusOK || len(body) < 100 {
			t.Fatalf("GET %s: %d, %d bytes", p, code, len(body))
		}
		for _, bad := range []string{"http://", "https://", "//cdn"} {
			if strings.Contains(string(body), bad) {
				t.Errorf("%s refers to %q: the console must need nothing but the coordinator", p, bad)
			}
		}
	}
	resp, err := http.Post(e.url+"/ui/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /ui/: %d, want 405", resp.StatusCode)
	}
}

// metricSet is a gathered registry.
type metricSet map[string]*dto.MetricFamily

func gather(t *testing.T, c *coordinator.Coordinator) metricSet {
	t.Helper()
	fams, err := c.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	m := metricSet{}
	for _, f := range fams {
		m[f.GetName()] = f
	}
	return m
}

// value returns the metric of family name whose labels include the given
// name/value pairs (none: the first); a histogram or summary gives its
// count. -1 when absent.
func (m metricSet) value(name string, labels ...string) float64 {
	f := m[name]
	if f == nil {
		return -1
	}
next:
	for _, mt := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range mt.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case mt.Counter != nil:
			return mt.GetCounter().GetValue()
		case mt.Gauge != nil:
			return mt.GetGauge().GetValue()
		case mt.Histogram != nil:
			return float64(mt.GetHistogram().GetSampleCount())
		case mt.Summary != nil:
			return float64(mt.GetSummary().GetSampleCount())
		}
	}
	return -1
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// After a restart, a transaction recovered from the log has a timeline
// that starts with "recovered", and goes on from there.
func TestTimelineAfterRestart(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	e.opts.RetryMin, e.opts.RetryMax = time.Hour, time.Hour
	e.parts["hotels"].SetPathMode(wire.PathCommit, testutil.Down)
	e.start()
	e.submit(wire.SubmitRequest{ID: "survivor", Branches: branches("flights", "hotels")})
	e.restart()
	eventually(t, "the re-driven COMMIT to fail", func() bool {
		return indexOf(kinds(e.timeline("survivor")), "delivery-failed:hotels") >= 0
	})
	k := kinds(e.timeline("survivor"))
	if len(k) == 0 || k[0] != "recovered" || indexOf(k, "commit-sent:hotels") < 0 {
		t.Fatalf("timeline after restart: %v", k)
	}
	e.parts["hotels"].SetPathMode(wire.PathCommit, testutil.Normal)
	if code, body := e.post(wire.RetryPath("survivor"), ""); code != http.StatusOK {
		t.Fatalf("retry: %d %s", code, body)
	}
	eventually(t, "survivor done", func() bool { return e.status("survivor").Done })
	if k := kinds(e.timeline("survivor")); k[len(k)-1] != "end" {
		t.Fatalf("timeline does not end with END: %v", k)
	}
}

// A one-phase transaction's timeline shows its decision, which has no
// decision record of its own.
func TestTimelineOfAOnePhaseCommit(t *testing.T) {
	e := newEnv(t, "flights")
	e.start()
	e.submit(wire.SubmitRequest{ID: "solo", Branches: branches("flights")})
	eventually(t, "solo done", func() bool { return e.status("solo").Done })
	want := "submitted prepare-sent:flights vote:flights=yes decision=committed end"
	if got := strings.Join(kinds(e.timeline("solo")), " "); got != want {
		t.Fatalf("timeline %q, want %q", got, want)
	}
}

// The coordinator serves its OpenAPI document at /openapi.json, without
// credentials, as embedded; every path it names is served (none is
// answered "no such endpoint").
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t, "flights")
	e.start()
	code, body := e.get(openapi.Path)
	if code != http.StatusOK || !bytes.Equal(body, openapi.Coordinator()) {
		t.Fatalf("GET %s: %d, %d bytes; want the embedded document", openapi.Path, code, len(body))
	}
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	for p, ops := range doc.Paths {
		path := strings.NewReplacer("{id}", "some-id", "{file}", "app.js").Replace(p)
		for m := range ops {
			if m == "parameters" {
				continue
			}
			req, _ := http.NewRequest(strings.ToUpper(m), e.url+path, strings.NewReader("{}"))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", m, path, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if bytes.Contains(b, []byte(`"error":"no such endpoint`)) || resp.StatusCode == http.StatusMethodNotAllowed {
				t.Errorf("%s %s is in the document but not served: %d %s", m, path, resp.StatusCode, b)
			}
		}
	}
}
